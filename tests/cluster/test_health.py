#!/usr/bin/python3
"""cluster_health: `xsadm cluster health` and what `xsadm cluster status`
tells a monitor, on a 3-member cluster of deploy/cluster.sh.

TestHealth: health exits 0 on a healthy cluster (--json parses), 1 with
"did not answer" while a follower is SIGSTOPped (3 asked of that member:
xsadm gives up after the timeout + 5 s), 1 with "no leader" once
two of three members are stopped (and status exits 1 with NO LEADER); a
second start of a running member exits 0 at once ("already running"); a
refused `cluster add` leaves no entry in status, a removed member is not
listed any more. TestStatusFields: every member's version, data directory
bytes, last snapshot index and last error (an insecure cluster: each
member logs one error at start, "INSECURE: ...").

    /usr/bin/python3 tests/cluster/test_health.py -v
    ctest -R cluster_health
"""
import json
import os
import re
import signal
import subprocess
import time
import unittest

import clusterlib
from clusterlib import BIN, CLUSTER_SH, ClusterCase, wait_for


def health(c, i, *args, timeout=30):
    return c.xsadm(i, "cluster", "health", *args, timeout=timeout)


def status_ids(c, i):
    return sorted(m["id"] for m in c.status(i)["members"])


class TestHealth(ClusterCase):

    def test_1_healthy(self):
        c = self.c
        for i in c.members:
            p = health(c, i)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertTrue(p.stdout.startswith("healthy:"), p.stdout)
        p = health(c, 1, "--timeout", "500", "--json")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        doc = json.loads(p.stdout)
        self.assertIs(doc["healthy"], True, doc)
        self.assertIsNone(doc["reason"], doc)
        self.assertEqual(doc["leader"], c.leader(), doc)
        self.assertEqual(sorted(m["id"] for m in doc["members"]), [1, 2, 3])
        self.assertTrue(all(m["answered"] for m in doc["members"]), doc)
        # usage and an unreachable daemon keep xsadm's exit codes
        for bad in (["--timeout"], ["--timeout", "0"], ["--timeout", "x"], ["extra"]):
            p = health(c, 1, *bad)
            self.assertEqual(p.returncode, 2, (bad, p.stdout, p.stderr))
        p = c.xsadm(1, "cluster", "health", socket=os.path.join(c.base, "no-such-socket"))
        self.assertEqual(p.returncode, 3, p.stderr)
        # a second start of a running member (Debian's init script does
        # not know us as running) exits 0 at once and changes nothing
        pid = c.pid(2)
        t = time.monotonic()
        p = subprocess.run([os.path.join(BIN, "xenstored"), "--config", c.conf(2)],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(time.monotonic() - t, 5)
        self.assertIn("already running (pid %d" % pid, p.stderr)
        self.assertEqual(c.pid(2), pid)
        self.assertEqual(health(c, 2).returncode, 0)

    def test_2_stopped_follower(self):
        """A SIGSTOPped voter does not answer: exit 1 naming it, then 0."""
        c = self.c
        leader = c.leader()
        f, g = c.followers(leader)
        c.signal(f, signal.SIGSTOP)
        try:
            t = time.monotonic()
            p = health(c, g, "--timeout", "700")
            took = time.monotonic() - t
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertEqual(p.stdout.strip(), "unhealthy: member %d (host%d) did not "
                             "answer within 700 ms" % (f, f))
            self.assertLess(took, 5, "health took %.1f s" % took)
            p = health(c, leader, "--json", "--timeout", "500")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertIs(doc["healthy"], False)
            self.assertIn("member %d" % f, doc["reason"])
            self.assertEqual([m["answered"] for m in doc["members"] if m["id"] == f], [False])
            # asked of the stopped member itself: xsadm gives up (exit 3)
            t = time.monotonic()
            p = health(c, f, "--timeout", "100")
            self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
            self.assertIn("did not answer in time", p.stderr)
            self.assertLess(time.monotonic() - t, 10)
        finally:
            c.signal(f, signal.SIGCONT)
        wait_for(lambda: health(c, f).returncode == 0, 15, "health again after SIGCONT")

    def test_3_refused_add_leaves_no_entry(self):
        c = self.c
        leader = c.leader()
        f = c.followers(leader)[0]
        taken = [m["raft"] for m in c.status(f)["members"] if m["id"] == leader][0]
        # libraft refuses a second server on an address: after the row was recorded
        for via in (f, leader):
            p = c.xsadm(via, "cluster", "add", 7, taken, "--name", "host7")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            # the member asked answers once its log has the row removed
            self.assertEqual(status_ids(c, via), [1, 2, 3])
            p = c.xsadm(via, "cluster", "add", leader, "127.0.0.1:9")   # duplicate id
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertEqual(status_ids(c, via), [1, 2, 3])
        for i in c.members:
            wait_for(lambda: status_ids(c, i) == [1, 2, 3], 5,
                     "host%d to have no member 7" % i)
            rc, hosts, _ = c.xsadm_json(i, "cluster", "hosts")
            self.assertNotIn(7, [h.get("member") for h in hosts["hosts"]])
        # and it stays so (the leader's reconciliation has nothing to undo)
        time.sleep(1.5)
        self.assertEqual(status_ids(c, f), [1, 2, 3])
        self.assertEqual(health(c, f).returncode, 0)

    def test_4_removed_member_is_not_listed(self):
        c = self.c
        rc, out, _ = c.sh("new", c.base, 4)
        m = re.match(r"^host4 raft (127\.0\.0\.1:\d+) peer (127\.0\.0\.1:\d+)$", out.strip())
        self.assertTrue(m, out)
        raft, peer = m.groups()
        env = dict(os.environ, XSR_BIN=BIN)
        env.pop("XENSTORED_PATH", None)
        with open(os.path.join(c.base, "start4.out"), "w+") as out4:
            launcher = subprocess.Popen(["bash", CLUSTER_SH, "start", c.base, "4"], env=env,
                                        stdin=subprocess.DEVNULL, stdout=out4,
                                        stderr=subprocess.STDOUT)
            try:
                time.sleep(0.5)
                p = c.xsadm(1, "cluster", "add", 4, raft, "--peer", peer, "--name", "host4")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertEqual(launcher.wait(60), 0)
            finally:
                if launcher.poll() is None:
                    launcher.kill()
                    launcher.wait(10)
        try:
            self.assertEqual(status_ids(c, 1), [1, 2, 3, 4])
            # a standby is not a voter: health does not wait for it
            self.assertEqual(health(c, 4).returncode, 0)
            via = c.followers()[0]
            p = c.xsadm(via, "cluster", "remove", 4)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            # at once, on the member asked, and everywhere soon
            self.assertEqual(status_ids(c, via), [1, 2, 3])
            for i in c.members:
                wait_for(lambda: status_ids(c, i) == [1, 2, 3], 5,
                         "host%d to forget member 4" % i)
                p = c.xsadm(i, "cluster", "status")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertNotIn("host4", p.stdout)
        finally:
            c.stop(4)
        self.assertEqual(status_ids(c, 1), [1, 2, 3])
        self.assertEqual(health(c, 1).returncode, 0)

    def test_5_no_leader(self):
        """Two of three stopped: no leader, exit 1 (health and status)."""
        c = self.c
        s = c.followers()[0]
        others = [i for i in c.members if i != s]
        for i in others:
            c.stop(i)
        try:
            last = [None]

            def no_leader():
                last[0] = health(c, s, "--timeout", "300")
                return last[0].returncode == 1 and "no leader" in last[0].stdout
            wait_for(no_leader, 20, "health to say no leader")
            self.assertEqual(last[0].stdout.strip(), "unhealthy: no leader")
            p = health(c, s, "--json", "--timeout", "300")
            self.assertEqual(p.returncode, 1)
            doc = json.loads(p.stdout)
            self.assertEqual((doc["healthy"], doc["reason"], doc["leader"]),
                             (False, "no leader", 0))
            p = c.xsadm(s, "cluster", "status")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("NO LEADER", p.stdout.splitlines()[0])
        finally:
            for i in others:
                c.start(i)
        c.wait_healthy()
        wait_for(lambda: health(c, s).returncode == 0, 15, "health after the restart")


class TestStatusFields(ClusterCase):
    """An insecure cluster, so that every member has logged an error."""

    @classmethod
    def setUpClass(cls):
        old = os.environ.get("XSR_INSECURE")
        os.environ["XSR_INSECURE"] = "1"
        try:
            super().setUpClass()
        finally:
            if old is None:
                del os.environ["XSR_INSECURE"]
            else:
                os.environ["XSR_INSECURE"] = old

    def test_fields(self):
        c = self.c
        version = subprocess.run([os.path.join(BIN, "xenstored"), "--version"],
                                 capture_output=True, text=True, timeout=10)
        self.assertEqual(version.returncode, 0, version.stderr)
        m = re.match(r"^xenstored \(xenstored-raft\) (\d+\.\d+\.\d+)$", version.stdout.strip())
        self.assertTrue(m, version.stdout)
        p = c.xsadm(1, "cluster", "snapshot")
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: [x["snapshot"] for x in c.status(1)["members"] if x["id"] == 1] != [0],
                 15, "member 1's snapshot")
        st = c.status(1)
        now = time.time()
        for x in st["members"]:
            self.assertEqual(x["version"], m.group(1), x)
            du = sum(os.path.getsize(os.path.join(d, f))
                     for d, _, fs in os.walk(os.path.join(c.dir(x["id"]), "data")) for f in fs)
            self.assertGreater(x["data_bytes"], 0, x)
            # the log grows meanwhile: the same order of size
            self.assertLess(abs(x["data_bytes"] - du), max(du // 2, 1 << 20), (x, du))
            self.assertIn("INSECURE", x["last_error"], x)
            self.assertLess(abs(x["last_error_time"] - now), 600, x)
            self.assertLessEqual(x["snapshot"], x["applied"], x)
        self.assertGreater([x["snapshot"] for x in st["members"] if x["id"] == 1][0], 0)
        p = c.xsadm(1, "cluster", "status")
        self.assertEqual(p.returncode, 0, p.stderr)
        head = p.stdout.splitlines()[2].split()
        for col in ("SNAPSHOT", "DATA", "VERSION"):
            self.assertIn(col, head)
        self.assertIn("Last error per member:", p.stdout)
        self.assertEqual(len(re.findall(r"^\d+ +host\d +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INSECURE",
                                        p.stdout, re.M)), 3, p.stdout)
        for tool in ("xsadm", "xsbench"):
            r = subprocess.run([os.path.join(BIN, tool), "--version"],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual((r.returncode, r.stdout.strip()),
                             (0, "%s (xenstored-raft) %s" % (tool, m.group(1))))


tearDownModule = clusterlib.tear_down_module

if __name__ == "__main__":
    unittest.main(verbosity=2)
