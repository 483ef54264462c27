#!/usr/bin/env python3
"""A follower that catches up by snapshot at run time does what applying
the skipped entries would have done (issue 11, node/snapshot.c), end to
end on a 3-member cluster from deploy/cluster.sh with sim rings and small
snapshots.

One follower F is stopped (SIGSTOP) while the others: adopt a guest of F
away to another host, migrate a domain into F's tree (the command says F has
not applied it in time: it cannot), and write enough
entries that F's next entry is no longer in the leader's log. After SIGCONT
F installs the leader's snapshot (its log says so), and then: the adopted
guest's ring is detached (its requests get no reply), F's socket client
and a sim guest on F got their watch events for the paths that changed,
@releaseDomain fired, the staying guest's ring still works, a transaction
opened across the swap that read a changed node fails with EAGAIN, and the
cluster's replicas agree (xsadm cluster verify).

A second test cuts one follower's Raft traffic only (iptables on
loopback, keyed by the member's group id: its daemon runs under a group of
its own), so that its peer channel still forwards: a guest it introduces
then is committed without it, and the snapshot it installs after the cut
heals must attach that guest's ring, which it had only prepared. Every
process started is stopped by PID (cluster.sh down), the iptables chain is
removed, every wait is bounded, only 127.0.0.1 and Unix sockets are used.

    python3 tests/cluster/test_snapshot_install.py [-v]   (XSR_BIN, XSR_KEEP=1)
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import daemon as daemonlib  # noqa: E402
import simguest as sg  # noqa: E402
import xsproto  # noqa: E402
from xsproto import args  # noqa: E402

CLUSTER_SH = os.path.join(daemonlib.REPO, "deploy", "cluster.sh")
XSADM = os.path.join(daemonlib.BIN, "xsadm")
WRITES = 400  # while F is stopped: far more than threshold + trailing


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def socket_events(conn, wait):
    """Watch events (path, token) that arrive on conn within wait s."""
    got = []
    for m in conn.events:
        p = m.payload.split(b"\0")
        got.append((p[0].decode(), p[1].decode()))
    conn.events.clear()
    end = time.monotonic() + wait
    while time.monotonic() < end:
        for m in conn.pending(0.05):
            if m.type == xsproto.T["WATCH_EVENT"]:
                p = m.payload.split(b"\0")
                got.append((p[0].decode(), p[1].decode()))
    return got


GID_BASE = 60000  # cluster.sh: member i runs under group GID_BASE + i


class Cluster:
    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="xsr-snapinst-")
        self.sh("up", "3", self.base)

    def sh(self, *a):
        env = dict(os.environ, XSR_SIM_RINGS="1", XSR_BIN=daemonlib.BIN,
                   XSR_SNAPSHOT_THRESHOLD="16", XSR_SNAPSHOT_TRAILING="4",
                   XSR_LAUNCH_PREFIX="setpriv --regid={gid} --clear-groups")
        env.pop("XENSTORED_PATH", None)
        return subprocess.run([CLUSTER_SH] + list(a), env=env, check=True,
                              capture_output=True, text=True, timeout=90)

    def socket(self, i):
        return os.path.join(self.base, "host%d" % i, "run", "socket")

    def log(self, i):
        with open(os.path.join(self.base, "host%d" % i, "xenstored.log"),
                  errors="replace") as f:
            return f.read()

    def pid(self, i):
        with open(os.path.join(self.base, "host%d" % i, "xenstored.pid")) as f:
            return int(f.read())

    def xsadm(self, i, *a):
        r = subprocess.run([XSADM, "--socket", self.socket(i)] + list(a),
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def leader(self):
        for i in (1, 2, 3):
            rc, out, _ = self.xsadm(i, "--json", "cluster", "status")
            if rc == 0:
                try:
                    ld = json.loads(out).get("leader")
                except ValueError:
                    continue
                if ld:
                    return int(ld)
        return 0

    def raft_port(self, i):
        with open(os.path.join(self.base, "host%d" % i, "xenstored.conf")) as f:
            return int(re.search(r"^raft-address = \S+:(\d+)$", f.read(),
                                 re.M).group(1))

    def restart_with(self, i, conf_lines):
        """Stop member i, append conf_lines to its configuration (the
        [cluster] section is the file's last), start it again."""
        pid = self.pid(i)
        self.sh("stop", self.base, str(i))
        wait_for(lambda: not daemonlib.pid_alive(pid), 10,
                 "host%d to stop" % i)
        with open(os.path.join(self.base, "host%d" % i, "xenstored.conf"),
                  "a") as conf:
            conf.write(conf_lines)
        self.sh("start", self.base, str(i))

    def down(self):
        try:
            self.sh("down", self.base)
        finally:
            if os.environ.get("XSR_KEEP") != "1":
                shutil.rmtree(self.base, ignore_errors=True)


def introduced_on(c, via, host, domid):
    """Does member `via`'s replica have domid introduced on host?"""
    rc, out, _ = c.xsadm(via, "--json", "domain", "list", host)
    if rc != 0:
        return False
    return any(e.get("domid") == domid and e.get("introduced")
               for e in json.loads(out).get("domains", []))


class RaftCut:
    """iptables rules in a chain of our own, jumped to from OUTPUT on lo:
    member f's Raft traffic is dropped both ways, its peer channel not."""

    def __init__(self, c, f, reset=False):
        # reset: refuse with a TCP reset rather than drop, so that what
        # was sent into the cut is not delivered by a retransmission
        # after the heal (libraft keeps the entries of a message in
        # flight)
        self.target = ["REJECT", "--reject-with", "tcp-reset"] if reset \
            else ["DROP"]
        self.chain = "XSR_SNAPINST_%d" % os.getpid()
        self.ipt("-N", self.chain)
        self.ipt("-I", "OUTPUT", "1", "-o", "lo", "-j", self.chain)
        others = [i for i in (1, 2, 3) if i != f]
        self.drop(f, [c.raft_port(i) for i in others])
        for i in others:
            self.drop(i, [c.raft_port(f)])

    @staticmethod
    def ipt(*a, check=True):
        return subprocess.run(["iptables", "-w"] + list(a), check=check,
                              capture_output=True, text=True, timeout=30)

    def drop(self, member, ports):
        self.ipt("-A", self.chain, "-o", "lo", "-p", "tcp", "-m", "owner",
                 "--gid-owner", str(GID_BASE + member), "-m", "multiport",
                 "--dports", ",".join(str(p) for p in ports),
                 "-j", *self.target)

    def heal(self):
        self.ipt("-F", self.chain, check=False)

    def remove(self):
        while self.ipt("-D", "OUTPUT", "-o", "lo", "-j", self.chain,
                       check=False).returncode == 0:
            pass
        self.ipt("-F", self.chain, check=False)
        self.ipt("-X", self.chain, check=False)


class TestSnapshotInstall(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.sims = []
        self.stopped = None
        self.cut = None

    def tearDown(self):
        if self.stopped:
            os.kill(self.stopped, signal.SIGCONT)
        if self.cut:
            self.cut.remove()
        for s in self.sims:
            s.close()
        self.c.down()

    def test_follower_catches_up_by_snapshot(self):
        c = self.c
        leader = wait_for(c.leader, 15, "a leader")
        f = next(i for i in (1, 2, 3) if i != leader)   # the lagging one
        o = next(i for i in (1, 2, 3) if i not in (leader, f))
        fh, oh = "host%d" % f, "host%d" % o
        fc = xsproto.Conn(c.socket(f))
        oc = xsproto.Conn(c.socket(o))
        sim = sg.SimDir(os.path.join(c.base, fh, "shim"))
        self.sims.append(sim)

        # on F: guest 5 (to be adopted away), guest 6 (stays, watches)
        g5 = sg.introduce(fc, sim, 5)
        g6 = sg.introduce(fc, sim, 6)
        g5.write("data/k", "v")
        g6.write("data/mine", "1")
        g6.watch("/local/domain/8/data", "g6w")
        self.assertEqual(g6.events_n(1, quiet=0.2),
                         [("/local/domain/8/data", "g6w")])
        # F's socket client: a path that appears, a release, a quiet path
        fc.watch("/local/domain/8", "w8")
        fc.watch("@releaseDomain", "rel")
        fc.watch("/tool/quiet", "quiet")
        socket_events(fc, 0.3)  # the initial events
        # a transaction across the swap: it reads what will change
        tx = fc.start()
        with self.assertRaises(OSError):
            fc.read("/local/domain/8/data/x", tx)
        fc.write("/tool/txn", "t", tx)
        # on O: the domain that will move into F's tree, readable by 6
        oc.write("/local/domain/4/data/x", "moved")
        for path in ("/local/domain/4/data", "/local/domain/4/data/x"):
            oc.call("SET_PERMS", args(path, "n4", "r6"))

        # F stops; the others go on without it
        pid_f = c.pid(f)
        os.kill(pid_f, signal.SIGSTOP)
        self.stopped = pid_f
        # first far beyond F's last entry (what the leader had already
        # sent it waits in F's socket and is applied as entries)
        for i in range(WRITES):
            oc.write("/data/fill%d" % (i % 50), "%d" % i)
        # (F is stopped, not dead: the test asserts it is "fenced")
        rc, out, err = c.xsadm(o, "domain", "adopt", "%s:5" % fh,
                               "%s:9" % oh, "--fenced")
        self.assertEqual(rc, 0, out + err)
        # the move commits, but its destination (F) cannot apply it: the
        # command waits commit-timeout, then says so (destination first)
        rc, out, err = c.xsadm(o, "domain", "migrate", "%s:4" % oh,
                               "%s:8" % fh)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(err, r"the move is committed \(log index \d+\) but "
                         r"host %s has not applied it in time" % fh)
        for i in range(WRITES):
            oc.write("/data/fill%d" % (i % 50), "%d" % i)
        os.kill(pid_f, signal.SIGCONT)
        self.stopped = None

        # F catches up by snapshot, not by entries
        wait_for(lambda: re.search(r"snapshot at index \d+ replaces \d+: "
                                   r"[1-9]", c.log(f)),
                 20, "%s to install a snapshot with its changes" % fh)
        wait_for(lambda: fc.call("IS_DOMAIN_INTRODUCED", args("5")) == b"F\0",
                 10, "domain 5 to be gone from %s" % fh)

        # watches fired for what changed, not for what did not
        evs = socket_events(fc, 1.0)
        self.assertIn(("/local/domain/8", "w8"), evs)
        self.assertIn(("@releaseDomain", "rel"), evs)
        self.assertNotIn("quiet", [t for _, t in evs])
        self.assertEqual(g6.wait_event(5.0), ("/local/domain/8/data", "g6w"))
        # the staying guest's ring works and sees the moved state
        self.assertEqual(g6.read("/local/domain/8/data/x"), b"moved")
        g6.write("data/after", "2")
        self.assertEqual(fc.read("/local/domain/6/data/after"), b"2")
        # the adopted guest's ring is detached: nobody answers it
        g5.timeout = 1.5
        with self.assertRaises(TimeoutError):
            g5.write("data/k", "late")
        # the transaction read a node the skipped entries created
        with self.assertRaises(OSError) as cm:
            fc.end(tx)
        self.assertEqual(cm.exception.errno, errno.EAGAIN)
        self.assertTrue(re.search(r"domain 5 is no longer introduced here",
                                  c.log(f)), "detach not logged")
        rc, out, err = c.xsadm(f, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)
        fc.close()
        oc.close()

    def test_domain_introduced_during_the_gap_is_attached(self):
        c = self.c
        leader = wait_for(c.leader, 15, "a leader")
        f = next(i for i in (1, 2, 3) if i != leader)   # the cut-off one
        o = next(i for i in (1, 2, 3) if i not in (leader, f))
        fh = "host%d" % f
        oc = xsproto.Conn(c.socket(o))
        # F slow to notice a silent leader: cut off, it still forwards to
        # the leader it knows (a follower that knows none keeps its
        # entries until it learns one)
        c.restart_with(f, "election-timeout = 60000\n")
        fc = xsproto.Conn(c.socket(f))
        sim = sg.SimDir(os.path.join(c.base, fh, "shim"))
        self.sims.append(sim)
        fc.watch("@introduceDomain", "intro")
        socket_events(fc, 0.3)  # the initial event
        # the toolstack's part first: the home of domain 7, as libxl
        # writes it, then the page (the writes need F's log)
        home = "/local/domain/7"
        fc.write(home, b"")
        fc.set_perms(home, ["n0", "r7"])
        for d in ("data", "device"):
            fc.write(home + "/" + d, b"")
            fc.set_perms(home + "/" + d, ["n7"])
        g7 = sg.Guest(sim, 7)
        self.sims.append(g7)

        # F hears no Raft; its peer channel still forwards its entries
        self.cut = RaftCut(c, f)
        # the others go far past F's log, commit F's INTRODUCE, go on
        for i in range(WRITES):
            oc.write("/data/fill%d" % (i % 50), "%d" % i)
        fc.send("INTRODUCE", args("7", str(0xFEFFF - 7),
                                  str(sg.remote_port_for(7))))
        wait_for(lambda: introduced_on(c, o, fh, 7), 10,
                 "domain 7 of %s to be introduced on host%d" % (fh, o))
        for i in range(WRITES):
            oc.write("/data/fill%d" % (i % 50), "%d" % i)
        self.cut.heal()

        # F catches up by snapshot and serves the ring it had prepared
        wait_for(lambda: re.search(r"domain 7 attached from the snapshot",
                                   c.log(f)),
                 30, "%s to attach domain 7 from a snapshot" % fh)
        # the INTRODUCE is answered: OK if its copy sent again was applied
        # within the commit timeout, else EIO (the entry committed anyway)
        m = fc.reply(timeout=15)
        if m.type == xsproto.T["ERROR"]:
            self.assertEqual(m.payload, b"EIO\0")
        self.assertEqual(fc.call("IS_DOMAIN_INTRODUCED", args("7")), b"T\0")
        self.assertIn(("@introduceDomain", "intro"), socket_events(fc, 1.0))
        g7.write("data/x", "from the guest")
        self.assertEqual(fc.read(home + "/data/x"), b"from the guest")
        g7.watch("data", "g7w")
        self.assertEqual(g7.wait_event(5.0), ("data", "g7w"))
        rc, out, err = c.xsadm(f, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)
        fc.close()
        oc.close()

    def test_own_write_undone_in_the_gap_fires_its_event(self):
        """A write of F's client and its removal by another client are
        both committed while F hears no Raft: the snapshot F installs has
        neither (a comparison of states sees nothing), yet the writer
        gets its write's event before its answer, as cxenstored
        guarantees (found by chaos seed 12: a transaction then an rm)."""
        c = self.c
        leader = wait_for(c.leader, 15, "a leader")
        f = next(i for i in (1, 2, 3) if i != leader)
        o = next(i for i in (1, 2, 3) if i not in (leader, f))
        fh = "host%d" % f
        oc = xsproto.Conn(c.socket(o))
        # F keeps forwarding to the leader it knows, and its clients wait
        # for the answer past the gap (not from a standalone overlay)
        c.restart_with(f, "election-timeout = 60000\ncommit-timeout = 60000\n"
                       "standalone = false\n")
        writer = xsproto.Conn(c.socket(f))
        remover = xsproto.Conn(c.socket(f))
        writer.write("/tool/gap", b"")
        writer.watch("/tool/gap", "w")
        socket_events(writer, 0.3)  # the initial event

        self.cut = RaftCut(c, f, reset=True)
        writer.send("WRITE", b"/tool/gap/k\0v")
        time.sleep(0.2)  # forwarded in this order: the write, then the rm
        remover.send("RM", args("/tool/gap/k"))
        for i in range(2 * WRITES):
            oc.write("/data/fill%d" % (i % 50), "%d" % i)
        self.cut.heal()

        wait_for(lambda: re.search(r"snapshot at index \d+ replaces \d+: ",
                                   c.log(f)),
                 30, "%s to install a snapshot over its own write" % fh)
        m = writer.reply(timeout=20)
        self.assertEqual(m.type, xsproto.T["WRITE"], m.payload)
        evs = socket_events(writer, 0)   # those that came before the reply
        self.assertIn(("/tool/gap/k", "w"), evs)
        self.assertRegex(c.log(f), r"snapshot at index \d+ replaces \d+: .* "
                         r"[1-9]\d* nodes of this member's requests")
        m = remover.reply(timeout=20)
        self.assertEqual(m.type, xsproto.T["RM"], m.payload)
        with self.assertRaises(OSError):
            writer.read("/tool/gap/k")
        rc, out, err = c.xsadm(f, "cluster", "verify")
        self.assertEqual(rc, 0, out + err)
        writer.close()
        remover.close()
        oc.close()


if __name__ == "__main__":
    unittest.main()
