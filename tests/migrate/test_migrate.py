#!/usr/bin/env python3
"""A domain's store state follows it (issue 5), end to end on a 3-member
cluster from deploy/cluster.sh with sim rings: migration between live
hosts, adoption of a dead host's domain, and a migration racing with the
guest's own writes; and how adoption is guarded (issue 14): a host that
does not answer but may be partitioned (here: SIGSTOPped, so that its
member was heard a moment ago) is adopted only with the admin's --fenced
or after adopt-after seconds in which no member heard from it. Every
process started is stopped by PID (cluster.sh down, after a SIGCONT),
every wait is bounded, only 127.0.0.1 and Unix sockets are used.

    python3 tests/migrate/test_migrate.py [-v]      (XSR_BIN, XSR_KEEP=1)
"""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import daemon as daemonlib  # noqa: E402
import simguest as sg  # noqa: E402
import xsproto  # noqa: E402
from simguest import XsError  # noqa: E402
from xsproto import args  # noqa: E402

CLUSTER_SH = os.path.join(daemonlib.REPO, "deploy", "cluster.sh")
XSADM = os.path.join(daemonlib.BIN, "xsadm")


class Cluster:
    def __init__(self, adopt_after=None):
        self.adopt_after = adopt_after
        self.base = tempfile.mkdtemp(prefix="xsr-migrate-")
        self.sh("up", "3", self.base)

    def sh(self, *a):
        env = dict(os.environ, XSR_SIM_RINGS="1", XSR_BIN=daemonlib.BIN)
        env.pop("XENSTORED_PATH", None)
        env.pop("XSR_ADOPT_AFTER", None)
        if self.adopt_after is not None:
            env["XSR_ADOPT_AFTER"] = str(self.adopt_after)
        return subprocess.run([CLUSTER_SH] + list(a), env=env, check=True,
                              capture_output=True, text=True, timeout=90)

    def socket(self, i):
        return os.path.join(self.base, "host%d" % i, "run", "socket")

    def shim(self, i):
        return os.path.join(self.base, "host%d" % i, "shim")

    def conn(self, i):
        return xsproto.Conn(self.socket(i))

    def xsadm(self, i, *a):
        r = subprocess.run([XSADM, "--socket", self.socket(i)] + list(a),
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def pid(self, i):
        with open(os.path.join(self.base, "host%d" % i,
                               "xenstored.pid")) as f:
            return int(f.read())

    def log(self, i):
        with open(os.path.join(self.base, "host%d" % i, "xenstored.log"),
                  errors="replace") as f:
            return f.read()

    def down(self):
        try:
            self.sh("down", self.base)
        finally:
            if os.environ.get("XSR_KEEP") != "1":
                shutil.rmtree(self.base, ignore_errors=True)


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def introduce_existing(conn, sim, domid, remote_port=None):
    """INTRODUCE a domain whose home is already in the store (after a
    migration), without libxl's wipe of /local/domain/<domid>."""
    g = sg.Guest(sim, domid)
    conn.call("INTRODUCE", args(str(domid), str(0xFEFFF - domid),
                                str(remote_port or 1000 + domid)))
    return g


def events_until(conn, pred, timeout=10.0):
    """Watch events on a socket connection until pred(events) holds."""
    got = []
    for m in conn.events:  # put aside while waiting for replies
        p = m.payload.split(b"\0")
        got.append((p[0].decode(), p[1].decode()))
    conn.events.clear()
    end = time.monotonic() + timeout
    while time.monotonic() < end and not pred(got):
        for m in conn.pending(0.05):
            if m.type == xsproto.T["WATCH_EVENT"]:
                p = m.payload.split(b"\0")
                got.append((p[0].decode(), p[1].decode()))
    return got


class TestMigrate(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.sims = []

    def tearDown(self):
        for s in self.sims:
            s.close()
        self.c.down()

    def sim(self, i):
        s = sg.SimDir(self.c.shim(i))
        self.sims.append(s)
        return s

    def test_migrate_between_live_hosts(self):
        c = self.c
        a = c.conn(1)
        b = c.conn(2)
        g = sg.introduce(a, self.sim(1), 5)
        a.write("/local/domain/5/vm", "/vm/uuid-5")
        a.write("/vm/uuid-5/name", "guest5")
        a.write("/libxl/5/type", "pv")
        g.write("data/x", "from-the-guest")
        g.write("data/y", "/local/domain/5/data/x")
        g.watch("data", "gt")
        self.assertEqual(g.events_n(1, quiet=0), [("data", "gt")])
        # watchers on both hosts
        a.watch("/local/domain/5/data", "wa")
        a.watch("@releaseDomain", "rel")
        b.watch("/local/domain", "wb")
        events_until(a, lambda ev: len(ev) >= 2)
        events_until(b, lambda ev: len(ev) >= 1)

        # the receiving host's toolstack moves it (then B reads its own
        # write at once; A applies it a heartbeat later at most)
        rc, out, err = c.xsadm(2, "domain", "migrate", "host1:5", "host2:7")
        self.assertEqual(rc, 0, out + err)

        # A: gone, released; its watchers saw both
        wait_for(lambda: a.call("IS_DOMAIN_INTRODUCED", args("5")) == b"F\0",
                 5, "host1 to apply the move")
        self.assertRaises(OSError, a.read, "/local/domain/5")
        self.assertRaises(OSError, a.read, "/vm/uuid-5")
        self.assertEqual(a.call("IS_DOMAIN_INTRODUCED", args("5")), b"F\0")
        ev = events_until(a, lambda ev: ("@releaseDomain", "rel") in ev and
                          ("/local/domain/5/data", "wa") in ev)
        self.assertIn(("/local/domain/5/data", "wa"), ev)
        self.assertIn(("@releaseDomain", "rel"), ev)
        # B: the new nodes, their watchers saw them
        ev = events_until(b, lambda ev: ("/local/domain/7/data/x", "wb") in ev)
        self.assertIn(("/local/domain/7", "wb"), ev)
        self.assertIn(("/local/domain/7/data/x", "wb"), ev)
        self.assertEqual(b.read("/local/domain/7/data/x"), b"from-the-guest")
        # self-references and companions followed
        self.assertEqual(b.read("/local/domain/7/data/y"), b"/local/domain/7/data/x")
        self.assertEqual(b.read("/vm/uuid-5/name"), b"guest5")
        self.assertEqual(b.read("/libxl/7/type"), b"pv")
        self.assertEqual(b.get_perms("/local/domain/7/data/x")[0], "n7")
        # the guest, introduced on B as domid 7, finds its state
        g7 = introduce_existing(b, self.sim(2), 7)
        self.assertEqual(g7.read("data/x"), b"from-the-guest")
        g7.write("data/z", "on-b")
        self.assertEqual(b.read("/local/domain/7/data/z"), b"on-b")
        # xsadm domain list and every replica agree
        rc, out, _ = c.xsadm(1, "--json", "domain", "list")
        doms = {(d["host"], d["domid"]) for d in json.loads(out)["domains"]}
        self.assertIn(("host2", 7), doms)
        self.assertNotIn(("host1", 5), doms)
        rc, out, err = c.xsadm(2, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)
        # refusals: the source is gone now, the destination exists
        rc, out, err = c.xsadm(1, "domain", "migrate", "host1:5", "host2:9")
        self.assertEqual(rc, 1)
        a.close()
        b.close()
        a = c.conn(1)
        b = c.conn(2)
        self.assertIn("does not exist", err)
        a.write("/local/domain/8/data/q", "1")
        rc, out, err = c.xsadm(1, "domain", "migrate", "host1:8", "host2:7")
        self.assertEqual(rc, 1)
        self.assertIn("already exists", err)
        rc, out, err = c.xsadm(2, "domain", "migrate", "host1:8", "host2:7", "--merge")
        self.assertEqual(rc, 0, err)
        self.assertEqual(b.read("/local/domain/7/data/q"), b"1")
        self.assertEqual(b.read("/local/domain/7/data/x"), b"from-the-guest")
        # bad usage
        rc, _, _ = c.xsadm(1, "domain", "migrate", "host1", "host2:7")
        self.assertEqual(rc, 2)
        rc, _, err = c.xsadm(1, "domain", "adopt", "host1:8", "host2:7")
        self.assertEqual(rc, 1)
        g.close()
        g7.close()
        a.close()
        b.close()

    def test_destination_has_applied_when_the_answer_comes(self):
        """A toolstack unpauses the guest on the destination as soon as
        the command returns: a read on the destination's socket right
        after it must find the moved home, every time (issue 16: before,
        3 of 15 such reads on host2 failed with ENOENT)."""
        c = self.c
        a = c.conn(1)
        for n in range(25):
            src, dst = 100 + n, 200 + n
            a.write("/local/domain/%d/data/agent" % src, "ready-%d" % n)
            rc, out, err = c.xsadm(1, "domain", "migrate", "host1:%d" % src,
                                   "host%d:%d" % (2 + n % 2, dst))
            self.assertEqual(rc, 0, out + err)
            self.assertRegex(out, r"done \(applied by host%d's member at log "
                             r"index \d+\)" % (2 + n % 2))
            with c.conn(2 + n % 2) as b:
                self.assertEqual(b.read("/local/domain/%d/data/agent" % dst),
                                 b"ready-%d" % n, "move %d" % n)
        a.close()
        rc, out, err = c.xsadm(3, "--json", "domain", "migrate", "host2:200",
                               "host3:300")
        self.assertEqual(rc, 0, out + err)
        doc = json.loads(out)
        self.assertEqual(doc["applied_on"], "host3")
        self.assertGreater(doc["index"], 0)

    def test_adopt_after_host_failure(self):
        c = self.c
        a = c.conn(1)
        g = sg.introduce(a, self.sim(1), 6)
        for i in range(20):
            g.write("data/k%d" % i, "v%d" % i)
        g.close()
        a.close()
        # adopt is refused while host1 is alive (host3 acts: it is where
        # the domain is restarted), even if the admin says it is fenced
        rc, _, err = c.xsadm(3, "domain", "adopt", "host1:6", "host3:9")
        self.assertEqual(rc, 1)
        self.assertIn("alive", err)
        rc, _, err = c.xsadm(3, "domain", "adopt", "host1:6", "host3:9",
                             "--fenced")
        self.assertEqual(rc, 1)
        self.assertIn("alive", err)
        c.sh("kill", c.base, "1")
        rc, _, err = c.xsadm(3, "domain", "migrate", "host1:6", "host3:9")
        self.assertEqual(rc, 1)
        self.assertIn("adopt", err)
        # dead to us, but nothing says it is fenced (adopt-after is 0)
        rc, _, err = c.xsadm(3, "domain", "adopt", "host1:6", "host3:9")
        self.assertEqual(rc, 1)
        self.assertIn("fence it", err)
        rc, _, err = c.xsadm(3, "domain", "migrate", "host1:6", "host3:9",
                             "--fenced")
        self.assertEqual(rc, 2)     # not an option of migrate
        rc, out, err = c.xsadm(3, "domain", "adopt", "host1:6", "host3:9",
                               "--fenced")
        self.assertEqual(rc, 0, out + err)
        with c.conn(3) as h3:
            for i in range(20):
                self.assertEqual(h3.read("/local/domain/9/data/k%d" % i),
                                 b"v%d" % i)
            self.assertEqual(h3.get_perms("/local/domain/9/data")[0], "n9")
        # host1 comes back and learns that its domain left
        with open(os.path.join(c.base, "host1", "xenstored.pid")) as f:
            pid1 = int(f.read())
        wait_for(lambda: not daemonlib.pid_alive(pid1), 10,
                 "host1's daemon to be gone")
        c.sh("start", c.base, "1")
        with c.conn(1) as h1:
            self.assertRaises(OSError, h1.read, "/local/domain/6")
            self.assertEqual(h1.call("IS_DOMAIN_INTRODUCED", args("6")), b"F\0")
        rc, out, err = c.xsadm(1, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)

    def status_leader(self, via):
        rc, out, err = self.c.xsadm(via, "--json", "cluster", "status")
        self.assertEqual(rc, 0, out + err)
        return json.loads(out).get("leader")

    def restart(self, i):
        c = self.c
        with open(os.path.join(c.base, "host%d" % i, "xenstored.pid")) as f:
            pid = int(f.read())
        c.sh("kill", c.base, str(i))
        wait_for(lambda: not daemonlib.pid_alive(pid), 10,
                 "host%d's daemon to be gone" % i)
        c.sh("start", c.base, str(i))

    def test_quota_settings_are_replicated(self):
        """Quota settings (SET_QUOTA, CONTROL quota set) are replicated
        state: they survive a failover and restarts, and a migrated
        domain's own settings follow it and are enforced there."""
        c = self.c
        a = c.conn(1)
        g = sg.introduce(a, self.sim(1), 5)
        g.write("data/x", "1")
        a.call("SET_QUOTA", args("5", "nodes", "6"))
        a.call("SET_QUOTA", args("watches", "42"))
        a.control("quota", "set", "transactions", "33")
        self.assertEqual(a.call("GET_QUOTA", args("5", "nodes")), b"6\0")
        self.assertEqual(a.call("GET_QUOTA", args("watches")), b"42\0")
        self.assertEqual(a.call("GET_QUOTA", args("5", "watches")), b"42\0")
        self.assertEqual(a.call("GET_QUOTA", args("transactions")), b"33\0")
        # refused before the log: path-max above Xen's limit, 0, a
        # reserved domid
        for bad in (args("path-max", "4000"), args("nodes", "0"),
                    args("32752", "nodes", "5")):
            with self.assertRaises(OSError) as cm:
                a.call("SET_QUOTA", bad)
            self.assertEqual(cm.exception.errno, errno.EINVAL, bad)
        a.close()
        g.close()
        # failover: the leader dies and comes back; host1 restarts too
        leader = self.status_leader(1)
        self.assertIn(leader, (1, 2, 3))
        self.restart(leader)
        if leader != 1:
            self.restart(1)
        with c.conn(1) as a:
            self.assertEqual(a.call("GET_QUOTA", args("5", "nodes")), b"6\0")
            self.assertEqual(a.call("GET_QUOTA", args("watches")), b"42\0")
            self.assertEqual(a.call("GET_QUOTA", args("transactions")),
                             b"33\0")
            self.assertIn("transactions     :       33",
                          a.control("quota").decode())
        # host2's own settings are its own
        with c.conn(2) as b:
            self.assertEqual(b.call("GET_QUOTA", args("watches")), b"128\0")
        # the domain moves: its settings with it, the host's stay
        rc, out, err = c.xsadm(2, "domain", "migrate", "host1:5", "host2:7")
        self.assertEqual(rc, 0, out + err)
        b = c.conn(2)
        self.assertEqual(b.call("GET_QUOTA", args("7", "nodes")), b"6\0")
        self.assertEqual(b.call("GET_QUOTA", args("7", "watches")), b"128\0")
        with c.conn(1) as a:
            wait_for(lambda: a.call("IS_DOMAIN_INTRODUCED", args("5")) ==
                     b"F\0", 5, "host1 to apply the move")
            self.assertEqual(a.call("GET_QUOTA", args("5", "nodes")),
                             b"1000\0")
        # and host2 enforces them: domain 7 owns at most 6 nodes
        g7 = introduce_existing(b, self.sim(2), 7)
        refused = None
        for i in range(10):
            try:
                g7.write("data/k%d" % i, "v")
            except XsError as e:
                refused = e.name
                break
        self.assertEqual(refused, "ENOSPC")
        g7.close()
        b.close()
        rc, out, err = c.xsadm(3, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)

    def test_migration_racing_with_the_guest(self):
        c = self.c
        a = c.conn(1)
        g = sg.introduce(a, self.sim(1), 10)
        g.timeout = 2.0
        acked = []
        failed = []
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set() and i < 100000:
                i += 1
                try:
                    g.write("data/seq", str(i))
                    acked.append(i)
                except (XsError, sg.RingError, TimeoutError, OSError) as e:
                    failed.append((i, repr(e)))
                    return  # the ring is gone: the guest migrated

        t = threading.Thread(target=writer)
        t.start()
        wait_for(lambda: len(acked) >= 50, 20, "the guest's first writes")
        rc, out, err = c.xsadm(2, "domain", "migrate", "host1:10", "host2:11")
        wait_for(lambda: a.call("IS_DOMAIN_INTRODUCED", args("10")) == b"F\0",
                 5, "host1 to apply the move")
        self.assertEqual(rc, 0, out + err)
        time.sleep(1.0)
        stop.set()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertTrue(acked)
        with c.conn(2) as b:
            final = int(b.read("/local/domain/11/data/seq"))
        # every acknowledged write is on the destination
        self.assertGreaterEqual(final, acked[-1])
        # nothing arrived on the source after the move
        time.sleep(0.5)
        self.assertRaises(OSError, a.read, "/local/domain/10")
        rc, out, err = c.xsadm(3, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)
        g.close()
        a.close()



class TestXlMigrate(unittest.TestCase):
    """Issue 16: what `xl migrate` does to the store, played by socket
    clients as libxl plays it (the real thing runs in the Xen lab,
    deploy/xenlab/test.sh): the source toolstack asks the guest to
    suspend (a transaction writing control/shutdown), the guest
    acknowledges, the destination toolstack creates the new domain's home
    with the same vm and INTRODUCEs it. The new domain must find the old
    one's keys when INTRODUCE is answered, and only when the old one is
    the one suspending domain with that vm."""

    def setUp(self):
        self.c = Cluster()
        self.sims = {}
        self.guests = []

    def tearDown(self):
        for g in self.guests:
            g.close()
        for s in self.sims.values():
            s.close()
        self.c.down()

    def create(self, conn, i, domid, vm, name="guest"):
        if i not in self.sims:
            self.sims[i] = sg.SimDir(self.c.shim(i))
        g = sg.introduce(conn, self.sims[i], domid,
                         keys={"vm": vm, "name": name,
                               "control/shutdown": ""})
        self.guests.append(g)
        return g

    @staticmethod
    def suspend(conn, domid):
        """libxl's request, in a transaction as libxl makes it."""
        tx = conn.start()
        conn.write("/local/domain/%d/control/shutdown" % domid, "suspend", tx)
        conn.end(tx)

    def assert_fresh(self, g):
        with self.assertRaises(XsError) as e:
            g.read("data/x")
        self.assertEqual(e.exception.name, "ENOENT")

    def test_new_domain_inherits_a_suspended_ones_state(self):
        c = self.c
        a, b, h3 = c.conn(1), c.conn(2), c.conn(3)
        g5 = self.create(a, 1, 5, "/vm/uuid-5")
        g5.write("data/x", "from-the-guest")
        g5.write("data/self", "/local/domain/5/data/x")
        g5.write("attr/os", "linux")
        g5.write("control/feature-suspend", "1")
        g5.write("device/vbd", "")
        g5.write("device/vbd/768", "")
        g5.write("device/vbd/768/ring-ref", "8")

        # the same config started on another host while 5 runs: no theft
        g9 = self.create(h3, 3, 9, "/vm/uuid-5")
        self.assert_fresh(g9)
        # the guest asking itself to suspend is not its toolstack
        g5.write("control/shutdown", "suspend")
        g5.write("control/shutdown", "")
        g10 = self.create(b, 2, 10, "/vm/uuid-5")
        self.assert_fresh(g10)

        # xl migrate: suspend request, the guest's acknowledgement
        self.suspend(a, 5)
        g5.write("control/shutdown", "")
        g7 = self.create(b, 2, 7, "/vm/uuid-5", name="guest--incoming")
        # as soon as INTRODUCE is answered, on the destination's socket
        self.assertEqual(g7.read("data/x"), b"from-the-guest")
        self.assertEqual(b.read("/local/domain/7/data/x"), b"from-the-guest")
        self.assertEqual(b.read("/local/domain/7/data/self"),
                         b"/local/domain/7/data/x")
        self.assertEqual(b.read("/local/domain/7/attr/os"), b"linux")
        self.assertEqual(b.read("/local/domain/7/control/feature-suspend"),
                         b"1")
        self.assertEqual(b.get_perms("/local/domain/7/data/x")[0], "n7")
        # the destination toolstack's keys won; the frontends start over
        self.assertEqual(b.read("/local/domain/7/name"), b"guest--incoming")
        self.assertEqual(b.read("/local/domain/7/control/shutdown"), b"")
        self.assertRaises(OSError, b.read, "/local/domain/7/device/vbd")
        g7.write("data/x", "on-host2")
        # the source is untouched until its toolstack destroys it
        self.assertEqual(a.read("/local/domain/5/data/x"), b"from-the-guest")
        self.assertIn("domain 7 of host host2 inherits the store state of "
                      "domain 5 of host host1", c.log(2))
        a.call("RELEASE", args("5"))
        a.rm("/local/domain/5")

        # resumed (a failed migration): no longer a source
        g11 = self.create(a, 1, 11, "/vm/uuid-11")
        g11.write("data/x", "eleven")
        self.suspend(a, 11)
        a.call("RESUME", args("11"))
        g12 = self.create(b, 2, 12, "/vm/uuid-11")
        self.assert_fresh(g12)

        # xl migrate <guest> localhost: the same host
        g13 = self.create(a, 1, 13, "/vm/uuid-13")
        g13.write("data/x", "thirteen")
        self.suspend(a, 13)
        g14 = self.create(a, 1, 14, "/vm/uuid-13")
        self.assertEqual(g14.read("data/x"), b"thirteen")

        # two suspending domains name one vm: ambiguous, nothing taken
        g15 = self.create(a, 1, 15, "/vm/uuid-15")
        g15.write("data/x", "fifteen")
        g16 = self.create(h3, 3, 16, "/vm/uuid-15")
        g16.write("data/x", "sixteen")
        self.suspend(a, 15)
        self.suspend(h3, 16)
        g17 = self.create(b, 2, 17, "/vm/uuid-15")
        self.assert_fresh(g17)
        wait_for(lambda: "more than one suspending domain" in c.log(2), 5,
                 "the refusal in host2's log")

        rc, out, err = c.xsadm(2, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)
        for x in (a, b, h3):
            x.close()


class TestFence(unittest.TestCase):
    """Adopting from a host that does not answer but may be partitioned,
    not dead: two live copies of a domain are split brain. SIGSTOP makes
    a host that no longer answers while its member was heard a moment
    ago, exactly what a partition looks like from the others."""
    ADOPT_AFTER = 3   # s; an adoption right after the stop comes ~1 s in

    def setUp(self):
        self.c = None
        self.stopped = []
        self.sims = []

    def tearDown(self):
        for pid in self.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for s in self.sims:
            s.close()
        if self.c:
            self.c.down()

    def start(self, adopt_after=None):
        self.c = Cluster(adopt_after)
        return self.c

    def guests_on_host1(self, *domids):
        c = self.c
        sim = sg.SimDir(c.shim(1))
        self.sims.append(sim)
        with c.conn(1) as a:
            for domid in domids:
                g = sg.introduce(a, sim, domid)
                g.write("data/k", "v%d" % domid)
                g.close()

    def stop(self, i):
        pid = self.c.pid(i)
        os.kill(pid, signal.SIGSTOP)
        self.stopped.append(pid)
        return time.monotonic()

    def cont(self, i):
        pid = self.c.pid(i)
        os.kill(pid, signal.SIGCONT)
        self.stopped.remove(pid)

    def adopt(self, *a):
        return self.c.xsadm(3, "domain", "adopt", *a)

    def assert_not_adopted(self, domid, to):
        rc, out, err = self.c.xsadm(3, "read", "host1:/local/domain/%d/data/k"
                                    % domid)
        self.assertEqual((rc, out.strip()), (0, "v%d" % domid), err)
        rc, _, _ = self.c.xsadm(3, "read", "host3:/local/domain/%d" % to)
        self.assertEqual(rc, 1)

    def test_partitioned_host_needs_the_admins_word(self):
        c = self.start()            # adopt-after: the default, 0 (never)
        self.guests_on_host1(6)
        # a host that answers is refused even with --fenced: it hands its
        # domains over with migrate
        rc, _, err = self.adopt("host1:6", "host3:9", "--fenced")
        self.assertEqual(rc, 1)
        self.assertIn("alive", err)
        self.stop(1)
        rc, _, err = self.adopt("host1:6", "host3:9")
        self.assertEqual(rc, 1, err)
        self.assertIn("host1 was in contact", err)
        self.assertIn("may be partitioned, not dead", err)
        self.assertIn("--fenced", err)
        self.assertIn("adopt-after is 0", err)
        rc, out, _ = c.xsadm(3, "--json", "domain", "adopt", "host1:6",
                             "host3:9")
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(out)["errno"], "EPERM")
        self.assert_not_adopted(6, 9)
        self.assertIn("refused: host1 was in contact", c.log(3))
        # the admin asserts it is fenced
        rc, out, err = self.adopt("host1:6", "host3:9", "--fenced")
        self.assertEqual(rc, 0, out + err)
        with c.conn(3) as h3:
            self.assertEqual(h3.read("/local/domain/9/data/k"), b"v6")
        self.assertRegex(c.log(3), r"domain adopt host1:6 -> host3:9 FORCED "
                         r"by pid \d+ \(uid \d+\) on the socket")
        # host1 was not dead after all: it learns that its domain left
        self.cont(1)
        with c.conn(1) as h1:
            wait_for(lambda: h1.call("IS_DOMAIN_INTRODUCED",
                                     args("6")) == b"F\0",
                     20, "host1 to apply the adoption")
            self.assertRaises(OSError, h1.read, "/local/domain/6")
        rc, out, err = c.xsadm(3, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)

    def test_adopt_after_a_silence(self):
        c = self.start(self.ADOPT_AFTER)
        self.guests_on_host1(6, 7)
        t0 = self.stop(1)
        # heard from a moment ago
        rc, _, err = self.adopt("host1:6", "host3:9")
        self.assertLess(time.monotonic() - t0, self.ADOPT_AFTER,
                        "too slow to test the refusal")
        self.assertEqual(rc, 1, err)
        self.assertIn("host1 was in contact", err)
        self.assertIn("or wait for adopt-after (%d s)" % self.ADOPT_AFTER,
                      err)
        self.assert_not_adopted(6, 9)
        # no member heard from it for adopt-after: taken as fenced
        time.sleep(max(0.0, t0 + self.ADOPT_AFTER + 0.5 - time.monotonic()))
        rc, out, err = self.adopt("host1:6", "host3:9")
        self.assertEqual(rc, 0, out + err)
        with c.conn(3) as h3:
            self.assertEqual(h3.read("/local/domain/9/data/k"), b"v6")
        self.assertIn("no member heard from host1 for", c.log(3))
        # a witness that does not answer may be cut off with host1 (and
        # hear from it): nothing is assumed then. With two of three
        # stopped, host3 has no quorum either: once in standalone mode
        # (standalone-after) it refuses any move for that reason first
        t1 = self.stop(2)
        time.sleep(max(0.0, t1 + self.ADOPT_AFTER + 0.5 - time.monotonic()))
        rc, _, err = self.adopt("host1:7", "host3:10")
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"member host2 did not answer|"
                              r"refused in standalone mode")
        self.cont(2)
        # host3 leaves standalone mode (it refuses reads of other hosts'
        # trees while in it) before it can say that nothing moved
        wait_for(lambda: self.c.xsadm(3, "read", "host1:/local/domain/7/data/k")[0] == 0,
                 20, "host3 to serve host1's tree again")
        self.assert_not_adopted(7, 10)
        self.cont(1)
        rc, out, err = c.xsadm(3, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)


if __name__ == "__main__":
    unittest.main()
