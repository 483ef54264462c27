#!/usr/bin/python3
"""Guests over sim rings: restarts and a cluster under the guests (ours only).

TestRestart (kill -9 and SIGTERM with guests attached and requests in
flight), TestCluster (a guest's writes in every member's replica).
test_guests.py runs this file with the others; alone:

    python3 tests/guest/test_guests_restart.py --daemon ours -v
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from guestlib import KIND, QUIET, GuestTest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import daemon as daemonlib  # noqa: E402
import simguest as sg  # noqa: E402
import xsproto  # noqa: E402
from xsproto import args, T  # noqa: E402


@unittest.skipUnless(KIND == "ours",
                     "a reference daemon loses its guests when restarted")
class TestRestart(GuestTest):
    """Restart with guests attached: the daemon must find its guests again
    (same data and shim dirs), and answer every request exactly once."""

    def restart(self, sig):
        self.d.stop(sig)
        self.d.start()
        self.c.close()
        self.c = xsproto.Conn(self.d.socket)
        if not os.path.exists(self.sim.file("notify")):
            self.sim.open_notify()

    def test_kill9_with_watches(self):
        gs = [self.guest(d) for d in (1, 2, 3)]
        for g in gs:
            g.watch("data", "t")
            g.watch("/local/domain/%d/device" % g.domid, "abs")
            self.assertEqual(sorted(g.events_n(2)),
                             [("/local/domain/%d/device" % g.domid, "abs"), ("data", "t")])
            g.write("data/before", "1")
            self.assertEqual(g.events_n(1), [("data/before", "t")])
        self.restart(signal.SIGKILL)
        for g in gs:
            self.assertEqual(g.read("data/before"), b"1")
            g.write("data/after", "2")
            self.c.write("/local/domain/%d/device/x" % g.domid, "")
            g.wait_event(pred=lambda ev: ev == ("/local/domain/%d/device/x" % g.domid, "abs"))
            self.c.write("/local/domain/%d/data/dom0" % g.domid, "")
            g.wait_event(pred=lambda ev: ev == ("data/dom0", "t"))
            self.assertEqual(g.error, 0)
        self.assertEqual(self.c.call("IS_DOMAIN_INTRODUCED", args("2")), b"T\0")

    def test_sigterm_with_requests_in_flight(self):
        gs = [self.guest(d) for d in (1, 2)]
        sent = {}
        for g in gs:
            g.watch("data", "t")
            self.assertEqual(g.events_n(1, quiet=0), [("data", "t")])
            sent[g.domid] = [g.send("WRITE", b"data/k%d\0%d" % (i, i)) for i in range(15)]
            sent[g.domid] += [g.send("READ", b"data/k%d\0" % i) for i in range(15)]
        self.restart(signal.SIGTERM)
        for g in gs:
            got = []
            end = time.monotonic() + 10
            while len(got) < len(sent[g.domid]) and time.monotonic() < end:
                for m in g.pending(0.05):
                    if m.type != T["WATCH_EVENT"]:
                        got.append(m)
            got += [m for m in g.pending(QUIET) if m.type != T["WATCH_EVENT"]]
            self.assertEqual([m.req_id for m in got], sent[g.domid])   # once each, in order
            self.assertEqual([m.payload for m in got],
                             [b"OK\0"] * 15 + [b"%d" % i for i in range(15)])
            self.c.write("/local/domain/%d/data/dom0" % g.domid, "")
            g.wait_event(pred=lambda ev: ev == ("data/dom0", "t"))


@unittest.skipUnless(KIND == "ours", "a cluster is ours only")
class TestCluster(unittest.TestCase):
    """Three members (deploy/cluster.sh, sim rings): a guest of host1
    writes through its ring; host2 and host3 hold the writes in their
    replicas, and the domain registry (with the guest's watch) too."""

    CLUSTER_SH = os.path.join(daemonlib.REPO, "deploy", "cluster.sh")

    def sh(self, *a, timeout=90):
        env = dict(os.environ, XSR_SIM_RINGS="1", XSR_BIN=daemonlib.BIN)
        env.pop("XENSTORED_PATH", None)
        return subprocess.run([self.CLUSTER_SH] + list(a), env=env,
                              capture_output=True, text=True, check=True,
                              timeout=timeout)

    def xsadm(self, host, *a):
        sock = os.path.join(self.base, "host%d" % host, "run", "socket")
        r = subprocess.run([os.path.join(daemonlib.BIN, "xsadm"), "--socket",
                            sock] + list(a), capture_output=True, text=True,
                           timeout=30)
        return r.returncode, r.stdout

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-guest-cluster-")
        self.sh("up", "3", self.base)

    def tearDown(self):
        try:
            self.sh("down", self.base)
        finally:
            if os.environ.get("XSR_KEEP") != "1":
                shutil.rmtree(self.base, ignore_errors=True)

    def test_guest_writes_replicated(self):
        shim = os.path.join(self.base, "host1", "shim")
        sim = sg.SimDir(shim)
        try:
            with xsproto.Conn(os.path.join(self.base, "host1", "run",
                                           "socket")) as c:
                g = sg.introduce(c, sim, 5)
                try:
                    g.watch("data", "tok")
                    self.assertEqual(g.events_n(1, quiet=0), [("data", "tok")])
                    g.write("data/x", b"from-the-guest")
                    self.assertEqual(g.events_n(1), [("data/x", "tok")])
                    self.assertEqual(c.read("/local/domain/5/data/x"),
                                     b"from-the-guest")
                finally:
                    g.close()
            for host in (2, 3):
                deadline = time.monotonic() + 10
                while True:
                    rc, out = self.xsadm(host, "read",
                                         "host1:/local/domain/5/data/x")
                    if rc == 0 or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                self.assertEqual((rc, out.strip()), (0, "from-the-guest"))
                # host2's own tree has no such guest
                rc, out = self.xsadm(host, "read", "host%d:/local/domain/5/data/x" % host)
                self.assertNotEqual(rc, 0)
            # every replica agrees, registry and watches included
            rc, out = self.xsadm(2, "cluster", "verify")
            self.assertEqual(rc, 0, out)
        finally:
            sim.close()


if __name__ == "__main__":
    print("daemon under test: %s" % KIND, file=sys.stderr)
    unittest.main()
