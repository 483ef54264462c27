#!/usr/bin/python3
"""cluster_e2e: the configuration changed and administered with xsadm.

TestMembership (add, promote, remove while clients write), TestRolesAndErrors
(transfer, demote/promote, xsadm's errors and exit codes), TestAdminOnLeader
(refused commands on the leader and without a leader). test_cluster.py runs
this file with the other cluster files; alone:

    /usr/bin/python3 tests/cluster/test_cluster_membership.py -v
"""
import os
import re
import subprocess
import time
import unittest

import clusterlib
from clusterlib import BIN, CLUSTER_SH, ClusterCase, XSADM_SANITIZED, note


class TestMembership(ClusterCase):
    """Adding, promoting, removing a member while clients write; transfer,
    demote/promote, and the errors of xsadm."""

    def test_1_add_promote_remove_while_writing(self):
        c = self.c
        leader = c.leader()
        f, g = c.followers(leader)
        wl = self.writer(leader, "/mem/w%d" % leader, pace=0.005)
        wf = self.writer(f, "/mem/w%d" % f, pace=0.005)
        rc, out, _ = c.sh("new", c.base, 4)
        m = re.match(r"^host4 raft (127\.0\.0\.1:\d+) peer (127\.0\.0\.1:\d+)$", out.strip())
        self.assertTrue(m, out)
        raft, peer = m.groups()
        env = dict(os.environ, XSR_BIN=BIN)
        env.pop("XENSTORED_PATH", None)
        launch_out = open(os.path.join(c.base, "start4.out"), "w+")
        launcher = subprocess.Popen(["bash", CLUSTER_SH, "start", c.base, "4"], env=env,
                                    stdin=subprocess.DEVNULL, stdout=launch_out,
                                    stderr=subprocess.STDOUT)
        try:
            time.sleep(1.0)
            self.assertIsNone(launcher.poll(), "host4 started without being added")
            p = c.xsadm(g, "cluster", "add", 4, raft, "--peer", peer, "--name", "host4")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("added", p.stdout)
            self.assertEqual(launcher.wait(60), 0)
        finally:
            if launcher.poll() is None:
                launcher.kill()
                launcher.wait(10)
            launch_out.seek(0)
            started = launch_out.read()
            launch_out.close()
        self.assertIn("host4 XENSTORED_PATH=%s" % c.sock(4), started)
        st = c.status(g)
        by = {m["id"]: m for m in st["members"]}
        self.assertIn(by[4]["role"], ("standby", "spare"), st)
        p = c.xsadm(f, "cluster", "promote", 4)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        c.members = [1, 2, 3, 4]
        c.wait_healthy()
        # host4's own tree appears everywhere; it holds everyone's
        r = c.xs(4, "xenstore-write", "/mem/own", "own-4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_serves(4, "/mem/own", "own-4")
        for i in c.members:
            c.wait_replica(i, "host4", "/mem/own", "own-4")
            rc, hosts, _ = c.xsadm_json(i, "cluster", "hosts")
            self.assertIn(("host4", 4), [(h["name"], h.get("member")) for h in hosts["hosts"]])
        c.wait_replica(4, "host%d" % leader, wl.acked[0][0], wl.acked[0][1])
        c.assert_agree(self, 4, c.members)
        c.assert_agree(self, leader, c.members)
        # remove it again, asked of a follower
        p = c.xsadm(f, "cluster", "remove", 4)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        c.members = [1, 2, 3]
        for i in c.members:
            st = c.status(i)
            gone = [m for m in st["members"] if m["id"] == 4 and
                    m["role"] in ("voter", "standby", "spare")]
            self.assertEqual(gone, [], st)
            self.assertEqual(sorted(m["id"] for m in st["members"]
                                    if m["role"] == "voter"), [1, 2, 3])
        c.stop(4)
        time.sleep(0.5)
        wl.finish()
        wf.finish()
        self.assertEqual(wl.errors + wf.errors, [])
        self.assert_acked_present(leader, wl)
        self.assert_acked_present(f, wf)
        self.assert_acked_replicated(g, leader, wl)
        self.assert_acked_replicated(g, f, wf)
        note("membership: %d writes acknowledged, none failed, while host4 was "
             "added, promoted and removed", len(wl.acked) + len(wf.acked))
        for i in c.members:
            with c.conn(i) as conn:
                conn.write("/mem/after-remove", str(i))

    def test_2_verify_after_remove(self):
        """After `cluster remove 4`, verify agrees among members 1-3."""
        c = self.c
        if 4 not in c.hosts_on_disk() or 4 in c.members:
            self.skipTest("needs test_1 (member 4 added, then removed)")
        c.assert_agree(self, 1, [1, 2, 3])



class TestRolesAndErrors(ClusterCase):
    """Leadership transfer, demote/promote round trips, and the errors of
    xsadm (every command asked of a follower, forwarded to the leader)."""

    def test_1_transfer(self):
        c = self.c
        leader = c.leader()
        if leader == 2:
            p = c.xsadm(1, "cluster", "transfer", 3)
            self.assertEqual(p.returncode, 0, p.stderr)
            c.wait_leader(1, lambda l: l == 3, what="leader 3")
        via = [i for i in c.followers() if i != 2][0]     # asked of a follower
        t = time.monotonic()
        p = c.xsadm(via, "cluster", "transfer", 2)
        took = time.monotonic() - t
        self.assertEqual((p.returncode, p.stdout), (0, "leadership transferred\n"), p.stderr)
        for i in c.members:
            c.wait_leader(i, lambda l: l == 2, what="leader 2")
        note("xsadm cluster transfer 2 (asked of host%d) returned after %.3f s", via, took)
        self.assertEqual({m["id"]: m["state"] for m in c.status(2)["members"]}[2], "leader")
        # transfer without an id: to any other voter
        p = c.xsadm(2, "cluster", "transfer")
        self.assertEqual(p.returncode, 0, p.stderr)
        c.wait_leader(2, lambda l: l not in (0, 2), what="another leader")
        for i in c.members:
            with c.conn(i) as conn:
                conn.write("/mem/after-transfer", str(i))

    def test_2_demote_promote_round_trip(self):
        c = self.c
        leader = c.leader()
        f, g = c.followers(leader)

        def role(i):
            return {m["id"]: m["role"] for m in c.status(g)["members"]}[i]
        p = c.xsadm(g, "cluster", "demote", f)
        self.assertEqual((p.returncode, p.stdout), (0, "done\n"), p.stderr)
        self.assertEqual(role(f), "standby")
        # a standby still replicates and serves its host
        with c.conn(f) as conn:
            conn.write("/mem/standby", "s")
            self.assertEqual(conn.read("/mem/standby"), b"s")
        c.wait_replica(leader, "host%d" % f, "/mem/standby", "s")
        c.assert_agree(self, g, c.members)
        p = c.xsadm(g, "cluster", "promote", f)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(role(f), "voter")
        # standby -> spare -> voter
        p = c.xsadm(g, "cluster", "demote", f)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = c.xsadm(g, "cluster", "demote", f)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(role(f), "spare")
        p = c.xsadm(g, "cluster", "demote", f)
        self.assertEqual(p.returncode, 1)
        self.assertIn("spare already", p.stderr)
        p = c.xsadm(g, "cluster", "promote", f)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(role(f), "voter")
        c.wait_healthy()
        with c.conn(f) as conn:
            conn.write("/mem/voter-again", "v")
        c.assert_agree(self, f, c.members)

    def test_3_errors(self):
        c = self.c
        f = c.followers()[0]       # refusals are asked of a follower (see TestAdminOnLeader)
        p = c.xsadm(f, "cluster", "add", 2, "127.0.0.1:9")
        self.assertEqual(p.returncode, 1)
        self.assertIn("already in the configuration", p.stderr)
        p = c.xsadm(f, "cluster", "remove", 99)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such member", p.stderr)
        p = c.xsadm(f, "cluster", "promote", c.leader())
        self.assertEqual(p.returncode, 1)
        self.assertIn("voter already", p.stderr)
        rc, doc, p = c.xsadm_json(f, "cluster", "remove", 99)
        self.assertEqual((rc, doc["ok"]), (1, False))
        self.assertIn("no such member", doc["error"])
        for args in (["cluster"], ["cluster", "add"], ["cluster", "add", "5"],
                     ["cluster", "add", "5", "nonsense"],
                     ["cluster", "add", "5", "127.0.0.1:1", "--bogus"],
                     ["cluster", "remove"], ["cluster", "remove", "1", "2"],
                     ["cluster", "frobnicate"], ["frobnicate"], ["read"],
                     ["read", "host1"], ["ls", "host1:relative"], ["--bogus-option"], []):
            p = c.xsadm(f, *args)
            self.assertEqual(p.returncode, 2, "xsadm %s: %s %s" % (args, p.stdout, p.stderr))
            self.assertTrue(p.stderr.strip(), args)
        nowhere = os.path.join(c.base, "no-such-socket")
        for args in (["cluster", "status"], ["cluster", "verify"], ["cluster", "remove", "3"],
                     ["read", "host1:/"], ["ls", "host1:/"]):
            p = c.xsadm(f, *args, socket=nowhere)
            self.assertEqual(p.returncode, 3, args)
            self.assertIn("cannot reach xenstored", p.stderr)
        # nothing broke
        c.wait_healthy(timeout=10)
        for i in c.members:
            self.assertTrue(c.alive(i))


    def test_4_xsadm_frees_what_it_allocates(self):
        """A sanitized xsadm exits 0 with leak detection on."""
        if not XSADM_SANITIZED:
            self.skipTest("xsadm is not built with AddressSanitizer")
        c = self.c
        for args in (["cluster", "status"], ["--json", "cluster", "status"],
                     ["--json", "cluster", "verify"], ["--json", "cluster", "hosts"],
                     ["--json", "ls", "host1:/"], ["read", "host1:/tool"]):
            p = c.xsadm(1, *args, leaks=True)
            self.assertEqual(p.returncode, 0, "xsadm %s: %s" % (" ".join(args), p.stderr[-2000:]))
            self.assertNotIn("LeakSanitizer", p.stderr)


class TestAdminOnLeader(ClusterCase):
    """Admin commands refused at once by the member that runs them: the
    member must answer and keep running."""

    def test_refused_on_the_leader(self):
        """Refused membership commands on the leader: exit 1, leader lives."""
        c = self.c
        leader = c.leader()
        p = c.xsadm(leader, "cluster", "promote", leader)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("voter already", p.stderr)
        p = c.xsadm(leader, "cluster", "add", 1, "127.0.0.1:9")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("already in the configuration", p.stderr)
        time.sleep(0.5)
        self.assertTrue(c.alive(leader), "the leader died")
        st = c.status(leader)
        self.assertEqual(st["leader"], leader)
        with c.conn(leader) as conn:
            conn.write("/adm/still-there", "yes")

    def test_refused_without_a_leader(self):
        """Membership commands without a leader: exit 1, member lives."""
        c = self.c
        leader = c.leader()
        s, o = c.followers(leader)
        c.kill9(leader)
        c.kill9(o)
        c.wait_leader(s, lambda l: l == 0, what="no leader")
        p = c.xsadm(s, "cluster", "transfer")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("no leader", p.stderr)
        p = c.xsadm(s, "cluster", "remove", o)
        self.assertEqual(p.returncode, 1, p.stderr)
        time.sleep(0.5)
        self.assertTrue(c.alive(s), "the member died")
        with c.conn(s) as conn:
            self.assertIn("tool", conn.directory("/"))
        c.status(s)


# unittest calls it after this file's classes: the reaper stops, the
# measurements are printed
tearDownModule = clusterlib.tear_down_module

if __name__ == "__main__":
    unittest.main(verbosity=2)
