#!/usr/bin/python3
"""cluster_e2e: a healthy cluster of three members and its clients.

TestThreeMembers: Xen's tools and the raw client on every member, replicas,
xsadm status and hosts, test-xenstore and admin commands on a follower, a
follower killed and restarted, the leader SIGSTOPped. test_cluster.py runs
this file with the other cluster files; alone:

    /usr/bin/python3 tests/cluster/test_cluster_basic.py -v
"""
import errno
import re
import signal
import threading
import time
import unittest

import clusterlib
from clusterlib import ClusterCase, FAILOVER_LIMIT_S, note
from xsproto import args


class TestThreeMembers(ClusterCase):
    """One cluster of three members, default settings."""

    def test_01_clients_write_read_and_replicate(self):
        c = self.c
        for i in c.members:
            base = "/e2e/from-host%d" % i
            r = c.xs(i, "xenstore-write", base + "/tool", "tool-%d" % i)
            self.assertEqual(r.returncode, 0, r.stderr)
            with c.conn(i) as conn:
                conn.write(base + "/raw", "raw-%d" % i)
                conn.write(base + "/gone", "soon removed")
                self.assertEqual(conn.read(base + "/tool"), b"tool-%d" % i)
                self.assertEqual(conn.read(base + "/raw"), b"raw-%d" % i)
                conn.rm(base + "/gone")
                with self.assertRaises(OSError) as cm:
                    conn.read(base + "/gone")
                self.assertEqual(cm.exception.errno, errno.ENOENT)
            r = c.xs(i, "xenstore-read", base + "/raw", base + "/tool")
            self.assertEqual((r.returncode, r.stdout), (0, "raw-%d\ntool-%d\n" % (i, i)))

        # a host's clients see their own host's tree only
        for i in c.members:
            r = c.xs(i, "xenstore-ls", "/e2e")
            self.assertEqual((r.returncode, r.stdout),
                             (0, 'from-host%d = ""\n tool = "tool-%d"\n raw = "raw-%d"\n'
                              % (i, i, i)), r.stderr)
            r = c.xs(i, "xenstore-list", "/e2e")
            self.assertEqual(r.stdout, "from-host%d\n" % i)
            for j in c.members:
                if j == i:
                    continue
                r = c.xs(i, "xenstore-read", "/e2e/from-host%d/tool" % j)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                with c.conn(i) as conn, self.assertRaises(OSError) as cm:
                    conn.read("/e2e/from-host%d/raw" % j)
                self.assertEqual(cm.exception.errno, errno.ENOENT)

        # every member holds every host's tree: xsadm read and ls
        for i in c.members:
            for j in c.members:
                host = "host%d" % i
                c.wait_replica(j, host, "/e2e/from-host%d/tool" % i, "tool-%d" % i)
                c.wait_replica(j, host, "/e2e/from-host%d/raw" % i, "raw-%d" % i)
                c.wait_replica(j, host, "/e2e/from-host%d/gone" % i, None)
                p = c.xsadm(j, "ls", "%s:/e2e" % host)
                self.assertEqual((p.returncode, p.stdout),
                                 (0, 'from-host%d = ""\n tool = "tool-%d"\n raw = "raw-%d"\n'
                                  % (i, i, i)), p.stderr)
                tree = c.ls_replica(j, host, "/e2e")
                self.assertEqual(tree, {"/e2e": "",
                                        "/e2e/from-host%d" % i: "",
                                        "/e2e/from-host%d/tool" % i: "tool-%d" % i,
                                        "/e2e/from-host%d/raw" % i: "raw-%d" % i})
        # a missing node or host is an error (exit 1 with a message)
        p = c.xsadm(2, "read", "host1:/e2e/from-host2")
        self.assertEqual(p.returncode, 1)
        self.assertIn("No such file", p.stderr)
        p = c.xsadm(2, "read", "nosuchhost:/")
        self.assertEqual(p.returncode, 1)
        self.assertIn("nosuchhost", p.stderr)

        # verify: exit 0, every member "ok", one digest
        for i in c.members:
            c.assert_agree(self, i, c.members)
        p = c.xsadm(1, "cluster", "verify")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(re.findall(r"^\d+ +host\d+ +ok +[0-9a-f]{32}$", p.stdout, re.M)), 3,
                         p.stdout)
        self.assertRegex(p.stdout, r"all members agree at log index \d+")

    def test_02_status_and_hosts(self):
        c = self.c
        leaders, terms = set(), set()
        for i in c.members:
            st = c.status(i)
            self.assertEqual(st["member"], i)
            leaders.add(st["leader"])
            terms.add(st["term"])
            ms = sorted(st["members"], key=lambda m: m["id"])
            self.assertEqual([m["id"] for m in ms], [1, 2, 3], st)
            self.assertEqual([m["name"] for m in ms], ["host1", "host2", "host3"])
            self.assertEqual({m["role"] for m in ms}, {"voter"}, st)
            self.assertTrue(all(m["reachable"] and m["serving"] for m in ms), st)
            self.assertEqual(sorted(m["state"] for m in ms),
                             ["follower", "follower", "leader"], st)
            self.assertEqual([m["id"] for m in ms if m["state"] == "leader"],
                             [st["leader"]])
            for m in ms:
                self.assertIsInstance(m["commit"], int)
                self.assertIsInstance(m["applied"], int)
                self.assertGreater(m["applied"], 0)
                self.assertLessEqual(m["applied"], m["commit"], m)
                self.assertEqual(m["term"], st["term"])
                self.assertRegex(m["raft"], r"^127\.0\.0\.1:\d+$")
                self.assertRegex(m["peer"], r"^127\.0\.0\.1:\d+$")
            p = c.xsadm(i, "cluster", "status")
            self.assertEqual(p.returncode, 0)
            self.assertRegex(p.stdout.splitlines()[0],
                             r"^3 members, leader %d \(host%d\), term \d+, as seen by member %d$"
                             % (st["leader"], st["leader"], i))
            rc, hosts, _ = c.xsadm_json(i, "cluster", "hosts")
            self.assertEqual(rc, 0)
            self.assertEqual(hosts["self"], "host%d" % i)
            self.assertEqual(sorted((h["name"], h["member"]) for h in hosts["hosts"]),
                             [("host1", 1), ("host2", 2), ("host3", 3)])
        self.assertEqual(len(leaders), 1, leaders)
        self.assertEqual(len(terms), 1, terms)

    def test_03_test_xenstore_on_a_follower(self):
        c = self.c
        f = c.followers()[0]
        r = c.xs(f, "test-xenstore", timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        names = ["read 1", "read 2000", "write 1", "write 2000", "dir", "rm node",
                 "rm dir", "ta empty", "ta empty x", "ta rmw", "ta rmw x", "ta err"]
        self.assertEqual(len(lines), 12, r.stdout)
        for name, line in zip(names, lines):
            self.assertRegex(line, r"^%s *: \d+ ns$" % re.escape(name))
        r = c.xs(f, "test-xenstore", "-t", "ta rmw", "-i", "50", timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with c.conn(f) as conn, self.assertRaises(OSError):
            conn.read("/local/domain/0/xenstore-test")
        c.assert_agree(self, f, c.members)

    def test_04_admin_commands_from_a_follower(self):
        c = self.c
        leader = c.leader()
        f, g = c.followers(leader)
        st = c.status(f)
        self.assertEqual((st["member"], st["leader"]), (f, leader))
        with c.conn(leader) as conn:
            conn.write("/adm/on-leader", "L")
        c.wait_replica(f, "host%d" % leader, "/adm/on-leader", "L")
        p = c.xsadm(f, "cluster", "hosts")
        self.assertEqual(p.returncode, 0)
        self.assertIn("(this host)", [l for l in p.stdout.splitlines()
                                      if l.startswith("host%d " % f)][0])
        p = c.xsadm(f, "cluster", "snapshot")
        self.assertEqual((p.returncode, p.stdout), (0, "snapshot requested\n"), p.stderr)
        c.assert_agree(self, f, c.members)
        # transfer, asked of a follower, to itself
        p = c.xsadm(f, "cluster", "transfer", f)
        self.assertEqual((p.returncode, p.stdout), (0, "leadership transferred\n"), p.stderr)
        for i in c.members:
            c.wait_leader(i, lambda l: l == f, what="leader %d" % f)
        # and back, asked of the old leader (a follower now)
        p = c.xsadm(leader, "cluster", "transfer", leader)
        self.assertEqual(p.returncode, 0, p.stderr)
        for i in c.members:
            c.wait_leader(i, lambda l: l == leader, what="leader %d" % leader)
        for i in c.members:
            with c.conn(i) as conn:
                conn.write("/adm/after-transfer", str(i))
                self.assertEqual(conn.read("/adm/after-transfer"), str(i).encode())

    def test_07_poison_pills_refused(self):
        """Limits are clamped where they are set and again where entries
        are applied: raising path-max past Xen's 2,048 is refused (it once
        let a 4,090-byte WRITE overflow a buffer while every member applied
        it, and again at every restart), and such a write is refused on
        every member alike, all of them staying up (issue 12)."""
        c = self.c
        leader = c.leader()
        f, g = c.followers(leader)
        with c.conn(f) as conn:
            for payload in (args("path-max", "4000"),
                            args("0", "path-max", "100000")):
                m = conn.request("SET_QUOTA", payload)
                self.assertEqual(m.payload, b"EINVAL\0", payload)
            m = conn.request("CONTROL", args("quota", "set", "path-max",
                                             "4000"))
            self.assertEqual(m.payload, b"EINVAL\0")
            self.assertEqual(conn.call("GET_QUOTA", args("path-max")),
                             b"2048\0")
            m = conn.request("WRITE", b"p" * 4090 + b"\0v")
            self.assertEqual(m.payload, b"EINVAL\0")
            conn.write("/pp/after", "ok")
        for i in c.members:
            self.assertTrue(c.alive(i), "member %d died" % i)
        c.wait_replica(leader, "host%d" % f, "/pp/after", "ok")
        c.assert_agree(self, f, c.members)

    def test_05_follower_killed_and_restarted(self):
        c = self.c
        leader = c.leader()
        f, g = c.followers(leader)
        r = c.xs(f, "xenstore-write", "/fk/own", "own-%d" % f, "/fk/two", "two")
        self.assertEqual(r.returncode, 0, r.stderr)
        wl = self.writer(leader, "/fk/w%d" % leader)
        wg = self.writer(g, "/fk/w%d" % g)
        time.sleep(0.5)
        tk = c.kill9(f)
        resumed = self.wait_resumed([wl, wg], tk)
        note("follower kill -9 (3 members): writes on the leader/other follower "
             "resumed %.3f/%.3f s after the kill", resumed[wl], resumed[wg])
        time.sleep(1.0)
        # snapshots on the survivors: the restarted member needs one to catch up
        for i in (leader, g):
            p = c.xsadm(i, "cluster", "snapshot")
            self.assertEqual(p.returncode, 0, p.stderr)
        time.sleep(0.3)
        wl.finish()
        wg.finish()
        self.assertEqual(wl.errors + wg.errors, [])
        self.assertLess(max(wl.longest_gap(), wg.longest_gap()), 1.0)
        t = c.start(f)
        note("follower restart after %d writes: serving %.2f s after cluster.sh start",
             len(wl.acked) + len(wg.acked), t)
        c.assert_agree(self, f, c.members)
        self.assert_serves(f, "/fk/own", "own-%d" % f)
        self.assert_serves(f, "/fk/two", "two")
        self.assert_acked_present(leader, wl)
        self.assert_acked_present(g, wg)
        self.assert_acked_replicated(f, leader, wl)
        self.assert_acked_replicated(f, g, wg)
        with c.conn(f) as conn:
            conn.write("/fk/after", "x")
        c.wait_replica(leader, "host%d" % f, "/fk/after", "x")

    def test_06_leader_partitioned_by_sigstop(self):
        c = self.c
        leader = c.leader()
        f, g = c.followers(leader)
        with c.conn(leader) as conn:
            conn.write("/stop/own", "before")
        wf = self.writer(f, "/stop/w%d" % f)
        wg = self.writer(g, "/stop/w%d" % g)
        time.sleep(0.5)
        ts = time.monotonic()
        c.signal(leader, signal.SIGSTOP)
        try:
            resumed = self.wait_resumed([wf, wg], ts)
            note("leader SIGSTOP (3 members): writes on the followers resumed "
                 "%.3f/%.3f s after the stop", resumed[wf], resumed[wg])
            self.assertLess(max(resumed.values()), FAILOVER_LIMIT_S + 1.0)
            # a client of the stopped member writes: it waits...
            stuck = {}

            def write_stopped():
                try:
                    with c.conn(leader, timeout=30) as conn:
                        conn.write("/stop/while-stopped", "queued")
                        stuck["ok"] = time.monotonic()
                except Exception as e:  # noqa: BLE001
                    stuck["error"] = repr(e)
            th = threading.Thread(target=write_stopped, daemon=True)
            th.start()
            time.sleep(max(0.0, 2.5 - (time.monotonic() - ts)))
            self.assertEqual(stuck, {})
        finally:
            tc = time.monotonic()
            c.signal(leader, signal.SIGCONT)
        # ... and is answered once the member is back (through the new leader)
        th.join(20)
        self.assertFalse(th.is_alive(), "the write on the resumed member hung")
        self.assertIn("ok", stuck, stuck)
        note("a write queued on the SIGSTOPped old leader was acknowledged %.3f s "
             "after SIGCONT", stuck["ok"] - tc)
        time.sleep(0.5)
        wf.finish()
        wg.finish()
        self.assertEqual(wf.errors + wg.errors, [])
        new_leader = c.leader(via=f)
        self.assertIn(new_leader, c.members)
        c.wait_healthy()
        c.assert_agree(self, leader, c.members)
        self.assert_serves(leader, "/stop/own", "before")
        self.assert_serves(leader, "/stop/while-stopped", "queued")
        self.assert_acked_present(f, wf)
        self.assert_acked_present(g, wg)
        self.assert_acked_replicated(leader, f, wf)
        self.assert_acked_replicated(leader, g, wg)


# unittest calls it after this file's classes: the reaper stops, the
# measurements are printed
tearDownModule = clusterlib.tear_down_module

if __name__ == "__main__":
    unittest.main(verbosity=2)
