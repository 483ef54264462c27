#!/usr/bin/env python3
"""Standalone mode and cold start (issue 14, node/standalone.h): a member
without a quorum serves and writes its own host's tree, and its writes
reach the log, exactly once, when the quorum returns.

On 3-member clusters from deploy/cluster.sh with sim rings, each member
under a group of its own (so that iptables can cut one member's traffic):

- cold start: every member stopped, one started alone: it serves within
  cold-start-wait, its start returns in < 30 s, its writes work; the
  others started: one cluster again, every replica agrees and holds every
  write.
- SIGSTOP of two members: a socket client and a sim guest of the third
  keep writing their tree without an error, transactions commit (and a
  conflicting one gets EAGAIN), a migration is refused, status says so;
  SIGCONT: the log holds
  every last value once, replicas agree.
- one member cut off by iptables while both sides run: the majority keeps
  writing, the isolated member too; it is killed (kill -9) and restarted
  still cut off: its acknowledged writes are there; healed: everything is
  in every replica.
- a one-way partition: what the member sends the others is lost, what
  they send it arrives (it knows a leader, none of its entries commits):
  it enters standalone mode once and stays there, no write waits again,
  until one of its entries reaches the log; healed: every write is in
  every replica.
- a guest of the isolated member writes while the majority adopts its
  domain elsewhere: after healing the log refuses that write, the member
  logs it as discarded, and neither host's tree has it.

Every process started is stopped by PID (clusterlib's Cluster.down), the
iptables chain is removed, every wait is bounded, temp dirs are removed.

    python3 tests/cluster/test_standalone.py [-v]   (XSR_BIN, XSR_KEEP=1)
"""
import errno
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
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
os.environ["XSR_SIM_RINGS"] = "1"
os.environ["XSR_LAUNCH_PREFIX"] = "setpriv --regid={gid} --clear-groups"
import clusterlib as cl  # noqa: E402
import simguest as sg  # noqa: E402

GID_BASE = 60000  # cluster.sh: member i runs under group GID_BASE + i
BACK = "quorum: serving normally again"


def ports(c, i):
    with open(c.conf(i)) as f:
        text = f.read()
    return [int(re.search(r"^%s = \S+:(\d+)$" % k, text, re.M).group(1))
            for k in ("raft-address", "peer-address")]


class Cut:
    """Member h cut off from the others, both ways (or, inbound=False,
    only what h sends them), both channels: iptables rules in a chain of
    our own, jumped to from OUTPUT on lo, keyed by each member's group
    id and the ports it connects to."""

    def __init__(self, c, h, inbound=True):
        self.chain = "XSR_STANDALONE_%d" % os.getpid()
        self.ipt("-N", self.chain)
        self.ipt("-I", "OUTPUT", "1", "-o", "lo", "-j", self.chain)
        others = [i for i in (1, 2, 3) if i != h]
        self.drop(h, sum((ports(c, i) for i in others), []))
        for i in others if inbound else ():
            self.drop(i, ports(c, h))

    @staticmethod
    def ipt(*a, check=True):
        return subprocess.run(["iptables", "-w"] + list(a), check=check,
                              capture_output=True, text=True, timeout=30)

    def drop(self, member, dports):
        self.ipt("-A", self.chain, "-o", "lo", "-p", "tcp", "-m", "owner",
                 "--gid-owner", str(GID_BASE + member), "-m", "multiport",
                 "--dports", ",".join(str(p) for p in dports), "-j", "DROP")

    def remove(self):
        while self.ipt("-D", "OUTPUT", "-o", "lo", "-j", self.chain,
                       check=False).returncode == 0:
            pass
        self.ipt("-F", self.chain, check=False)
        self.ipt("-X", self.chain, check=False)


class TestStandalone(unittest.TestCase):
    def setUp(self):
        # under AddressSanitizer (build-asan) the daemons' reports go to
        # files (their stderr is /dev/null once they serve): checked at
        # the end
        self.san = tempfile.mkdtemp(prefix="xsr-standalone-san-")
        self.saved_env = {k: os.environ.get(k)
                          for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")}
        for k in self.saved_env:
            os.environ[k] = ("%s:log_path=%s/%s" % (
                os.environ.get(k, ""), self.san, k[:-8].lower())).lstrip(":")
        self.c = cl.Cluster("standalone")
        self.stopped = []
        self.cut = None
        self.closers = []
        self.c.up(3)

    def tearDown(self):
        for pid in self.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if self.cut:
            self.cut.remove()
        for x in self.closers:
            try:
                x.close()
            except Exception:
                pass
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        if result is not None and any(t is self for t, _ in
                                      list(result.failures) + list(result.errors)):
            sys.stderr.write("\n==== logs\n%s\n" % self.c.log_tails(40))
        try:
            self.c.down()
        finally:
            for k, v in self.saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            reports = []
            for name in sorted(os.listdir(self.san)):
                with open(os.path.join(self.san, name), errors="replace") as f:
                    reports.append("%s:\n%s" % (name, f.read()[-4000:]))
            shutil.rmtree(self.san, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer reports:\n" + "\n".join(reports))

    # -- helpers ---------------------------------------------------------
    def conn(self, i):
        x = self.c.conn(i, timeout=20.0)
        self.closers.append(x)
        return x

    def wait_back(self, i, offset, timeout=60):
        cl.wait_for(lambda: BACK in self.c.log_since(i, offset), timeout,
                    "host%d to serve normally again" % i)

    def verify(self, via):
        last = None
        for _ in range(20):
            p = self.c.xsadm(via, "cluster", "verify")
            if p.returncode == 0:
                return
            last = p
            time.sleep(0.5)
        self.fail("cluster verify: %s%s" % (last.stdout, last.stderr))

    def assert_everywhere(self, host, want):
        """Every member's replica of host's tree has want {path: value}."""
        for via in (1, 2, 3):
            deadline = time.monotonic() + 15
            while True:
                tree = {}
                for top in sorted({p.split("/")[1] for p in want}):
                    tree.update(self.c.ls_replica(via, host, "/" + top))
                bad = [(p, v, tree.get(p)) for p, v in want.items()
                       if tree.get(p) != v]
                if not bad or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            self.assertEqual(bad[:5], [], "%d of %d values of %s wrong in "
                             "host%d's replica" % (len(bad), len(want), host, via))

    def assert_refused_moves(self, h):
        p = self.c.xsadm(h, "domain", "migrate", "host%d:5" % h, "host2:7")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("standalone", p.stdout + p.stderr)

    def assert_status_says(self, h):
        p = self.c.xsadm(h, "cluster", "status")
        self.assertRegex(p.stdout, r"member %d \(host%d\): no quorum since "
                         r"\S+ \S+: serving own tree locally" % (h, h))

    # -- the tests -------------------------------------------------------
    def test_cold_start(self):
        c = self.c
        want = {1: {}, 2: {}, 3: {}}
        for i in (1, 2, 3):
            x = self.conn(i)
            for k in range(5):
                x.write("/data/before%d" % k, b"b%d-%d" % (i, k))
                want[i]["/data/before%d" % k] = "b%d-%d" % (i, k)
            x.close()
        for i in (3, 2, 1):
            c.stop(i)
        took = c.start(1, timeout=60)
        self.assertLess(took, 30, "the start of host1 alone took %.1f s" % took)
        # libraft restored no entry: the tree comes from the log's tail
        self.assertRegex(c.log_since(1, 0), r"entries of this member's log "
                         r"past applied index \d+ are in what it serves")
        x = self.conn(1)
        for k in range(5):
            self.assertEqual(x.read("/data/before%d" % k), b"b1-%d" % k)
        for k in range(20):
            x.write("/data/cold%d" % k, b"c%d" % k)
            want[1]["/data/cold%d" % k] = "c%d" % k
        x.write("/data/before0", b"rewritten")
        want[1]["/data/before0"] = "rewritten"
        self.assertEqual(x.read("/data/cold19"), b"c19")
        self.assert_status_says(1)
        self.assert_refused_moves(1)
        off = c.log_size(1)
        c.start(2, timeout=60)
        c.start(3, timeout=60)
        self.wait_back(1, off)
        # written after the quorum returned: the normal path
        x.write("/data/after", b"a")
        want[1]["/data/after"] = "a"
        self.verify(1)
        for i in (1, 2, 3):
            self.assert_everywhere("host%d" % i, want[i])
        self.assertNotIn("discarded", c.log_since(1, 0))

    def test_new_cluster_members_come_up_apart(self):
        # a new cluster (empty data directories) whose members start more
        # than cold-start-wait apart, as two dom0s booting: the first has
        # no tree to serve when its wait ends and must create it through
        # the log once a quorum forms (it stopped with "cannot create the
        # tree" before: the two-host Xen lab found it)
        c = self.c
        for i in (3, 2, 1):
            c.stop(i)
        for i in (1, 2, 3):
            shutil.rmtree(os.path.join(c.dir(i), "data"))
            os.makedirs(os.path.join(c.dir(i), "data"), mode=0o700)
            c.edit_conf(i, [], ["cold-start-wait = 1000"])
        env = dict(os.environ, XSR_BIN=cl.BIN)
        off = c.log_size(1)
        # files, not pipes: the daemon keeps its stdout until it serves
        out1 = tempfile.TemporaryFile()
        self.closers.append(out1)
        first = subprocess.Popen(
            ["bash", cl.CLUSTER_SH, "start", c.base, "1"], env=env,
            stdin=subprocess.DEVNULL, stdout=out1, stderr=out1)
        time.sleep(3)  # three times its cold-start-wait
        self.assertIsNone(first.poll(), "host1's start ended alone")
        c.start(2, timeout=60)
        first.wait(60)
        out1.seek(0)
        self.assertEqual(first.returncode, 0, out1.read().decode(errors="replace"))
        self.assertTrue(c.alive(1))
        log1 = c.log_since(1, off)
        self.assertIn("has no tree here yet (a new member)", log1)
        self.assertIn("created the tree of host host1", log1)
        c.start(3, timeout=60)
        for i in (1, 2, 3):
            x = self.conn(i)
            x.write("/data/x", b"%d" % i)
            x.close()
        self.verify(1)
        for i in (1, 2, 3):
            self.assert_everywhere("host%d" % i, {"/data/x": str(i)})

    def test_partition_by_sigstop(self):
        c = self.c
        h = 1
        x = self.conn(h)
        sim = sg.SimDir(os.path.join(c.dir(h), "shim"))
        self.closers.append(sim)
        g = sg.introduce(x, sim, 5)
        self.closers.append(g)
        g.write("data/g", "0")
        for i in (2, 3):
            pid = c.pid(i)
            os.kill(pid, signal.SIGSTOP)
            self.stopped.append(pid)
        want = {}
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 8 or n < 40:
            x.write("/data/s%d" % (n % 10), b"v%d" % n)
            want["/data/s%d" % (n % 10)] = "v%d" % n
            g.write("data/g%d" % (n % 7), "w%d" % n)
            want["/local/domain/5/data/g%d" % (n % 7)] = "w%d" % n
            n += 1
        self.assertEqual(x.read("/data/s%d" % ((n - 1) % 10)), b"v%d" % (n - 1))
        self.assertEqual(g.read("data/g%d" % ((n - 1) % 7)), b"w%d" % (n - 1))
        self.assert_status_says(h)
        self.assert_refused_moves(h)
        # transactions commit, their conflicts decided against what the
        # host's clients see, as a stock daemon decides them (README)
        tx = x.start()
        self.assertEqual(x.read("/data/s0", tx), want["/data/s0"].encode())
        x.write("/data/tx", b"t", tx)
        x.end(tx)
        want["/data/tx"] = "t"
        t1, t2 = x.start(), x.start()
        self.assertEqual(x.read("/data/tx", t1), b"t")
        self.assertEqual(x.read("/data/tx", t2), b"t")
        x.write("/data/tx", b"second", t2)
        x.end(t2)
        want["/data/tx"] = "second"
        x.write("/data/tx", b"first", t1)
        with self.assertRaises(OSError) as cm:
            x.end(t1)
        self.assertEqual(cm.exception.errno, errno.EAGAIN)
        self.assertEqual(x.read("/data/tx"), b"second")
        off = c.log_size(h)
        for pid in self.stopped:
            os.kill(pid, signal.SIGCONT)
        self.stopped = []
        self.wait_back(h, off)
        g.write("data/after", "1")
        want["/local/domain/5/data/after"] = "1"
        self.verify(h)
        self.assert_everywhere("host%d" % h, want)
        self.assertNotIn("discarded", c.log_since(h, 0))

    def test_isolated_member_crashes_and_heals(self):
        c = self.c
        h, o = 3, 1
        xh, xo = self.conn(h), self.conn(o)
        xh.write("/data/pre", b"p")
        self.cut = Cut(c, h)
        want_h, want_o = {"/data/pre": "p"}, {}
        # both sides write: the majority through the log, h standalone
        for n in range(30):
            xo.write("/data/m%d" % (n % 5), b"m%d" % n)
            want_o["/data/m%d" % (n % 5)] = "m%d" % n
            xh.write("/data/i%d" % (n % 5), b"i%d" % n)
            want_h["/data/i%d" % (n % 5)] = "i%d" % n
            time.sleep(0.1)
        self.assert_status_says(h)
        # kill -9 during standalone mode; restart, still cut off
        c.kill9(h)
        took = c.start(h, timeout=60)
        self.assertLess(took, 30, "the restart of host%d took %.1f s" % (h, took))
        self.assertRegex(c.log_since(h, 0), r"standalone writes of an "
                         r"earlier run taken up")
        xh = self.conn(h)
        for p, v in want_h.items():
            self.assertEqual(xh.read(p), v.encode(), p)
        for n in range(10):
            xh.write("/data/r%d" % n, b"r%d" % n)
            want_h["/data/r%d" % n] = "r%d" % n
        xo.write("/data/m-last", b"z")
        want_o["/data/m-last"] = "z"
        off = c.log_size(h)
        self.cut.remove()
        self.cut = None
        self.wait_back(h, off)
        self.verify(o)
        self.assert_everywhere("host%d" % h, want_h)
        self.assert_everywhere("host%d" % o, want_o)
        self.assertNotIn("discarded", c.log_since(h, 0))

    def test_oneway_partition_does_not_flap(self):
        """h hears the leader's heartbeats but its own messages are lost:
        knowing a leader is not reaching one. h must not leave standalone
        mode on the leader's word alone (each new write would then wait
        standalone-after again before it entered once more)."""
        c = self.c
        h, o = 3, 1
        xh = self.conn(h)
        xh.write("/data/pre", b"p")
        want = {"/data/pre": "p"}
        off0 = c.log_size(h)
        self.cut = Cut(c, h, inbound=False)
        slow = []
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 15:
            t = time.monotonic()
            xh.write("/data/w%d" % (n % 5), b"w%d" % n)
            dt = time.monotonic() - t
            want["/data/w%d" % (n % 5)] = "w%d" % n
            if dt > 1.0:
                slow.append((n, round(t - t0, 1), round(dt, 2)))
            n += 1
            time.sleep(0.05)
        log = c.log_since(h, off0)
        # the first write waits standalone-after (3 s) and enters; none
        # after it waits
        self.assertLessEqual(len(slow), 1, "slow writes (n, at, took): %s\n%s"
                             % (slow, log[-3000:]))
        self.assertEqual(log.count("no quorum since"), 1, log[-3000:])
        self.assertIn("still serving locally until entry", log)
        self.assert_status_says(h)
        off = c.log_size(h)
        self.cut.remove()
        self.cut = None
        self.wait_back(h, off)
        self.assertRegex(c.log_since(h, off), r"leader \d+ reached: \d+ standalone writes still to apply")
        xh.write("/data/after", b"a")
        want["/data/after"] = "a"
        self.verify(o)
        self.assert_everywhere("host%d" % h, want)
        self.assertNotIn("discarded", c.log_since(h, 0))

    def test_write_of_a_domain_adopted_meanwhile_is_discarded(self):
        """The isolated host's guest writes while the majority adopts that
        guest's domain elsewhere: after healing, the log refuses the
        write (logged as discarded) and the adopted copy does not have
        it; nothing lands in the wrong host's tree."""
        c = self.c
        h, o = 3, 1
        xh = self.conn(h)
        sim = sg.SimDir(os.path.join(c.dir(h), "shim"))
        self.closers.append(sim)
        g = sg.introduce(xh, sim, 5)
        self.closers.append(g)
        g.timeout = 20.0
        g.write("data/k", "before")
        c.wait_replica(o, "host%d" % h, "/local/domain/5/data/k", "before")
        self.cut = Cut(c, h)
        g.write("data/k", "standalone")  # answered from h's overlay
        self.assertEqual(g.read("data/k"), b"standalone")
        self.assert_status_says(h)
        deadline = time.monotonic() + 30
        while True:
            # the admin asserts a fence that is not there (the host is
            # only cut off): what the log then does with the isolated
            # copy's writes is what this test shows
            p = c.xsadm(o, "domain", "adopt", "host%d:5" % h, "host%d:9" % o,
                        "--fenced")
            if p.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        off = c.log_size(h)
        self.cut.remove()
        self.cut = None
        self.wait_back(h, off)
        self.assertRegex(c.log_since(h, 0),
                         r"standalone write \d+ of host host%d \(write "
                         r"\S*data/k by domain 5\), answered OK from local "
                         r"state, was applied by the log with .*: its change "
                         r"is discarded" % h)
        self.verify(o)
        for via in (1, 2, 3):
            self.assertEqual(c.read_replica(via, "host%d" % o,
                                            "/local/domain/9/data/k"), "before")
            self.assertIsNone(c.read_replica(via, "host%d" % h,
                                             "/local/domain/5/data/k"))


if __name__ == "__main__":
    try:
        unittest.main()
    finally:
        cl.tear_down_module()
