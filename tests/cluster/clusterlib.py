"""The cluster fixture of the cluster_e2e tests (test_cluster*.py).

Cluster runs deploy/cluster.sh in a temporary BASEDIR and stops every
daemon by PID; ClusterCase gives each TestCase class one cluster, a
per-test alarm and the writer threads and checks the tests share; a reaper
process SIGKILLs what this process leaves behind if it dies.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))

import xsproto  # noqa: E402
from xsproto import Conn  # noqa: E402
import daemon as daemonlib  # noqa: E402
from daemon import pid_alive, wait_for  # noqa: E402

PYTHON = "/usr/bin/python3"
BIN = os.environ.get("XSR_BIN", os.path.join(REPO, "build", "bin"))
XSADM = os.path.join(BIN, "xsadm")
CLUSTER_SH = os.path.join(REPO, "deploy", "cluster.sh")
XEN_BIN = os.environ.get("XSR_XEN_BIN", "/usr/lib/xen-4.17/bin")
CLI_DIR = os.environ.get("XSR_CLI_DIR", "/usr/bin")
KEEP = os.environ.get("XSR_KEEP") == "1"
STRICT = os.environ.get("XSR_CLUSTER_STRICT") == "1"


def sanitized(path):
    """Is this binary built with AddressSanitizer (the build-asan tree)?"""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


XSADM_SANITIZED = sanitized(XSADM)


def xsadm_env(leaks=True):
    """xsadm's environment (a sanitized xsadm checks for leaks at exit)."""
    env = dict(os.environ)
    env.pop("XENSTORED_PATH", None)
    if XSADM_SANITIZED and not leaks:
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return env


TEST_ALARM_S = 240          # no single test may take longer
FAILOVER_LIMIT_S = 2.0      # writes resume within this after kill -9 of the leader

# what the tests measured, printed at the end
MEASURED = []


def note(fmt, *args):
    MEASURED.append(fmt % args)


def known_bug(why):
    """A test of correct behaviour that fails today because of a daemon bug:
    an expected failure unless XSR_CLUSTER_STRICT=1."""
    def deco(f):
        f.__doc__ = (f.__doc__ or "").rstrip() + "\n\nKnown bug: " + why
        f.known_bug = why
        return f if STRICT else unittest.expectedFailure(f)
    return deco


# ---------------------------------------------------------------------------
# A reaper that outlives us only to SIGKILL daemons we leave behind


class Reaper(daemonlib.Reaper):
    """We tell it each BASEDIR. If this process dies without stopping its
    daemons (even by SIGKILL), the pipe closes and the reaper SIGKILLs, by
    PID, the daemons of those BASEDIRs: the PIDs in their pid files and any
    process whose command line names the BASEDIR (a member that waits to be
    added has no pid file yet)."""

    CODE = r"""
import os, signal, sys
bases = set()
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("-"):
        bases.discard(line[1:])
    elif line:
        bases.add(line)
for base in bases:
    pids = set()
    try:
        for name in os.listdir(base):
            try:
                with open(os.path.join(base, name, "xenstored.pid")) as f:
                    pids.add(int(f.read().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    for name in os.listdir("/proc"):
        if name.isdigit():
            pids.add(int(name))
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"xenstored" in cmd and (base + "/").encode() in cmd:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
"""
    CLOSE_TIMEOUT = 20


REAPER = Reaper()


def our_daemons(base):
    """PIDs of xenstored processes whose command line names BASEDIR."""
    out = []
    needle = (base + "/").encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"xenstored" in cmd and needle in cmd:
            out.append(int(name))
    return out


# ---------------------------------------------------------------------------
# Clients


def tool_path(name):
    if name in ("test-xenstore", "xenstore-control"):
        return os.path.join(XEN_BIN, name)
    if name.startswith("xenstore"):
        return os.path.join(CLI_DIR, name)
    return name


class Writer(threading.Thread):
    """A client writing continuously over one raw connection; it records
    every acknowledged write (path, value, sent, acked) and every failure."""

    def __init__(self, socket, prefix, pace=0.002, timeout=20.0):
        super().__init__(daemon=True)
        self.socket = socket
        self.prefix = prefix
        self.pace = pace
        self.timeout = timeout
        self.acked = []
        self.errors = []            # (path, sent, failed, what)
        self.lost_connection = False
        self.halt = threading.Event()

    def run(self):
        try:
            conn = Conn(self.socket, timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - recorded, checked by the test
            now = time.monotonic()
            self.errors.append((None, now, now, "connect: %r" % e))
            self.lost_connection = True
            return
        tag = self.prefix.strip("/").replace("/", ".")
        i = 0
        try:
            while not self.halt.is_set():
                i += 1
                path = "%s/k%d" % (self.prefix, i)
                value = "%s=%d" % (tag, i)
                t0 = time.monotonic()
                try:
                    conn.write(path, value)
                except (xsproto.Closed, TimeoutError, ConnectionError) as e:
                    self.errors.append((path, t0, time.monotonic(), repr(e)))
                    self.lost_connection = True
                    return
                except OSError as e:
                    self.errors.append((path, t0, time.monotonic(), repr(e)))
                    continue
                self.acked.append((path, value, t0, time.monotonic()))
                if self.pace:
                    self.halt.wait(self.pace)
        finally:
            conn.close()

    def first_ack_sent_after(self, t):
        """When the first write sent at or after t was acknowledged."""
        for _, _, t0, t1 in list(self.acked):
            if t0 >= t:
                return t1
        return None

    def first_ack_after(self, t):
        for _, _, _, t1 in list(self.acked):
            if t1 >= t:
                return t1
        return None

    def longest_gap(self):
        acks = [a[3] for a in list(self.acked)]
        if len(acks) < 2:
            return 0.0
        return max(b - a for a, b in zip(acks, acks[1:]))

    def finish(self, timeout=30.0):
        self.halt.set()
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the writer on %s did not stop within %.0f s"
                                 % (self.socket, timeout))
        return self


# ---------------------------------------------------------------------------
# A cluster in a temporary BASEDIR


class Cluster:
    def __init__(self, name):
        self.base = tempfile.mkdtemp(prefix="xsr-%s-" % name.lower())
        REAPER.add(self.base)
        self.members = []          # ids that should be running and in the configuration
        self.downed = False

    # -- cluster.sh ------------------------------------------------------
    def sh(self, *args, timeout=120, check=True):
        env = dict(os.environ, XSR_BIN=BIN)
        env.pop("XENSTORED_PATH", None)
        # files, not pipes: a daemon must not hold our pipe open
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(["bash", CLUSTER_SH] + [str(a) for a in args],
                               env=env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=err, timeout=timeout)
            out.seek(0)
            err.seek(0)
            o = out.read().decode(errors="replace")
            e = err.read().decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError("cluster.sh %s: exit %d\n%s%s\n%s" %
                                 (" ".join(map(str, args)), p.returncode, o, e,
                                  self.log_tails()))
        return p.returncode, o, e

    def up(self, n, xenstored_conf=(), cluster_conf=()):
        rc, out, _ = self.sh("up", n, self.base)
        self.members = list(range(1, n + 1))
        for i in self.members:
            self.check_env_line(out, i)
        if xenstored_conf or cluster_conf:
            self.sh("down", self.base)
            for i in self.members:
                self.edit_conf(i, xenstored_conf, cluster_conf)
            self.sh("up", n, self.base)
        self.wait_healthy()

    def check_env_line(self, out, i):
        want = "host%d XENSTORED_PATH=%s" % (i, self.sock(i))
        if want not in out.splitlines():
            raise AssertionError("cluster.sh did not print %r:\n%s" % (want, out))

    def edit_conf(self, i, xenstored_conf, cluster_conf):
        """Add lines to [xenstored] and to [cluster] (the last section)."""
        path = self.conf(i)
        with open(path) as f:
            lines = f.read().splitlines()
        sections = [k for k, l in enumerate(lines) if l.startswith("[")]
        assert lines[sections[-1]] == "[cluster]", lines
        at = lines.index("[xenstored]") + 1
        lines[at:at] = list(xenstored_conf)
        lines += list(cluster_conf)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- paths -------------------------------------------------------------
    def dir(self, i):
        return os.path.join(self.base, "host%d" % i)

    def sock(self, i):
        return os.path.join(self.dir(i), "run", "socket")

    def conf(self, i):
        return os.path.join(self.dir(i), "xenstored.conf")

    def logfile(self, i):
        return os.path.join(self.dir(i), "xenstored.log")

    def pid(self, i):
        try:
            with open(os.path.join(self.dir(i), "xenstored.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def alive(self, i):
        p = self.pid(i)
        return p is not None and pid_alive(p)

    def hosts_on_disk(self):
        out = []
        for name in os.listdir(self.base):
            m = re.match(r"host(\d+)$", name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    # -- members -------------------------------------------------------------
    def kill9(self, i):
        """kill -9 member i; returns the time of the kill (monotonic)."""
        pid = self.pid(i)
        assert pid and pid_alive(pid), "host%d is not running" % i
        t = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10, "host%d (pid %d) to die" % (i, pid))
        return t

    def start(self, i, timeout=90):
        """cluster.sh start: returns once the member serves; the time it took."""
        old = self.pid(i)
        if old:
            # cluster.sh tells a running member by `kill -0`, which a zombie
            # passes: wait until the killed daemon is reaped (PID 1 may take
            # a while), or `start` would do nothing
            wait_for(lambda: not os.path.exists("/proc/%d" % old), 30,
                     "pid %d of host%d to be reaped" % (old, i))
        t = time.monotonic()
        rc, out, _ = self.sh("start", self.base, i, timeout=timeout)
        self.check_env_line(out, i)
        assert self.alive(i), "host%d is not running after start" % i
        return time.monotonic() - t

    def stop(self, i):
        self.sh("stop", self.base, i)

    def signal(self, i, sig):
        pid = self.pid(i)
        if pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def ensure_up(self):
        """Restart members that should run but do not (after a failed test)."""
        for i in self.members:
            self.signal(i, signal.SIGCONT)
        for i in self.members:
            if not self.alive(i):
                self.start(i)
        # a member left standby or spare by a failed test becomes a voter again
        self.wait_healthy(voters=[])
        st = self.status(self.members[0])
        for m in st["members"]:
            if m["id"] in self.members and m["role"] != "voter":
                via = next(i for i in self.members if i != st["leader"])
                self.xsadm(via, "cluster", "promote", m["id"])
        self.wait_healthy()

    # -- xsadm -------------------------------------------------------------
    def xsadm(self, i, *args, json_=False, timeout=60, socket=None, leaks=False):
        argv = [XSADM, "--socket", socket or self.sock(i)]
        if json_:
            argv.append("--json")
        argv += [str(a) for a in args]
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", timeout=timeout,
                              env=xsadm_env(leaks))

    def xsadm_json(self, i, *args, timeout=60):
        p = self.xsadm(i, *args, json_=True, timeout=timeout)
        try:
            doc = json.loads(p.stdout) if p.stdout.strip() else None
        except ValueError:
            raise AssertionError("xsadm --json %s printed no JSON: %r %r"
                                 % (" ".join(map(str, args)), p.stdout, p.stderr))
        return p.returncode, doc, p

    def status(self, i):
        rc, st, p = self.xsadm_json(i, "cluster", "status")
        assert rc == 0 and st and st.get("ok"), \
            "status via host%d: rc %d %r %r" % (i, rc, p.stdout, p.stderr)
        return st

    def status_or_none(self, i):
        try:
            return self.status(i)
        except (AssertionError, subprocess.TimeoutExpired):
            return None

    def leader(self, via=None):
        for i in ([via] if via else []) + self.members:
            if not self.alive(i):
                continue
            st = self.status_or_none(i)
            if st and st.get("leader"):
                return st["leader"]
        return 0

    def followers(self, leader=None):
        leader = leader or self.leader()
        return [i for i in self.members if i != leader]

    def wait_healthy(self, timeout=30, members=None, voters=None):
        """A leader; every member reachable, serving, leader or follower;
        every member of `voters` (default: all) a voter."""
        members = members or self.members
        voters = members if voters is None else voters
        last = [None]

        def healthy():
            via = next((i for i in members if self.alive(i)), None)
            if via is None:
                return False
            st = self.status_or_none(via)
            last[0] = st
            if not st or not st.get("leader"):
                return False
            by = {m["id"]: m for m in st["members"]}
            for i in members:
                m = by.get(i)
                if (not m or not m.get("reachable") or not m.get("serving")
                        or m.get("state") not in ("leader", "follower")):
                    return False
                if i in voters and m.get("role") != "voter":
                    return False
            return [by[i]["state"] for i in members].count("leader") == 1

        try:
            wait_for(healthy, timeout, "a healthy cluster")
        except TimeoutError:
            raise AssertionError("cluster not healthy within %ds; last status %s\n%s"
                                 % (timeout, json.dumps(last[0]), self.log_tails()))

    def wait_leader(self, via, pred, timeout=10, what="a leader"):
        got = [None]

        def ok():
            st = self.status_or_none(via)
            got[0] = st and st.get("leader")
            return st is not None and pred(st.get("leader"))
        try:
            wait_for(ok, timeout, what)
        except TimeoutError:
            raise AssertionError("%s not seen by host%d within %ds (leader %r)"
                                 % (what, via, timeout, got[0]))
        return got[0]

    def verify(self, via):
        rc, doc, p = self.xsadm_json(via, "cluster", "verify", timeout=60)
        return rc, doc, p

    def assert_agree(self, tc, via, ids):
        rc, doc, p = self.verify(via)
        tc.assertEqual(rc, 0, "verify via host%d: %s %s" % (via, p.stdout, p.stderr))
        tc.assertTrue(doc["ok"] and doc["agree"], doc)
        tc.assertEqual(sorted(m["id"] for m in doc["members"]), sorted(ids), doc)
        tc.assertEqual({m["status"] for m in doc["members"]}, {"ok"}, doc)
        digests = {m["digest"] for m in doc["members"]}
        tc.assertEqual(len(digests), 1, doc)
        tc.assertRegex(digests.pop(), r"^[0-9a-f]{32}$")
        return doc

    def read_replica(self, via, host, path):
        """xsadm read HOST:PATH on member via: the value, or None."""
        p = self.xsadm(via, "read", "%s:%s" % (host, path))
        if p.returncode != 0:
            return None
        assert p.stdout.endswith("\n"), p.stdout
        return p.stdout[:-1]

    def wait_replica(self, via, host, path, value, timeout=10):
        got = [None]

        def ok():
            got[0] = self.read_replica(via, host, path)
            return got[0] == value
        try:
            wait_for(ok, timeout, "%s:%s on host%d" % (host, path, via))   # None: absent
        except TimeoutError:
            raise AssertionError("xsadm read %s:%s via host%d: %r, want %r"
                                 % (host, path, via, got[0], value))

    def ls_replica(self, via, host, path):
        """xsadm --json ls HOST:PATH on member via: {path: value}."""
        p = self.xsadm(via, "--json", "ls", "%s:%s" % (host, path), timeout=120)
        assert p.returncode == 0, "xsadm ls %s:%s via host%d: %s" % (
            host, path, via, p.stderr)
        out = {}

        def walk(n):
            out[n["path"]] = n["value"]
            for k in n["children"]:
                walk(k)
        walk(json.loads(p.stdout))
        return out

    # -- Xen's clients -------------------------------------------------------
    def xs(self, i, tool, *args, timeout=60):
        env = dict(os.environ, XENSTORED_PATH=self.sock(i))
        return subprocess.run([tool_path(tool)] + [str(a) for a in args], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", timeout=timeout)

    def conn(self, i, timeout=15.0):
        return Conn(self.sock(i), timeout=timeout)

    # -- logs --------------------------------------------------------------
    def log_size(self, i):
        try:
            return os.path.getsize(self.logfile(i))
        except OSError:
            return 0

    def log_since(self, i, offset):
        try:
            with open(self.logfile(i), "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tails(self, lines=25):
        out = []
        for i in self.hosts_on_disk():
            text = self.log_since(i, 0).splitlines()
            keep = [l for l in text if " raft: " not in l or "warning" in l]
            out.append("---- host%d (%s)\n%s" % (i, self.logfile(i),
                                                  "\n".join(keep[-lines:])))
        return "\n".join(out)

    # -- the end -------------------------------------------------------------
    def down(self):
        if self.downed:
            return
        self.downed = True
        hosts = self.hosts_on_disk() if os.path.isdir(self.base) else []
        for i in hosts:                      # a stopped member cannot take SIGTERM
            self.signal(i, signal.SIGCONT)
        try:
            self.sh("down", self.base, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            pass
        # last resort, by PID: pid files, then anything naming BASEDIR
        pids = {self.pid(i) for i in hosts} | set(our_daemons(self.base))
        for pid in pids:
            if pid and pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid in pids:
            if pid:
                try:
                    wait_for(lambda: not pid_alive(pid), 10, "pid %d to die" % pid)
                except TimeoutError:
                    pass
        left = [p for p in pids if p and pid_alive(p)]
        REAPER.remove(self.base)
        if not KEEP:
            shutil.rmtree(self.base, ignore_errors=True)
        else:
            sys.stderr.write("\nkept %s\n" % self.base)
        if left:
            raise RuntimeError("daemons survived: %s" % left)


# ---------------------------------------------------------------------------
# Test case base: one cluster per class


class ClusterCase(unittest.TestCase):
    N = 3
    XENSTORED_CONF = ()
    CLUSTER_CONF = ()
    c = None

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(cls.__name__)
        cls.addClassCleanup(cls.c.down)
        cls.c.up(cls.N, cls.XENSTORED_CONF, cls.CLUSTER_CONF)

    def setUp(self):
        def on_alarm(signum, frame):
            raise TimeoutError("%s took more than %d s" % (self.id(), TEST_ALARM_S))
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(TEST_ALARM_S)
        self.addCleanup(signal.alarm, 0)      # even if setUp fails
        self.writers = []
        self.c.ensure_up()

    def tearDown(self):
        signal.alarm(0)
        for w in self.writers:
            w.halt.set()
        for w in self.writers:
            w.join(30)
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        failed = result is not None and any(
            t is self for t, _ in list(result.failures) + list(result.errors))
        if failed:
            sys.stderr.write("\n==== logs of %s (%s)\n%s\n" %
                             (self.id(), self.c.base, self.c.log_tails(40)))

    # -- helpers -------------------------------------------------------------
    def writer(self, i, prefix, **kw):
        w = Writer(self.c.sock(i), prefix, **kw)
        self.writers.append(w)
        w.start()
        return w

    def wait_resumed(self, writers, t_kill, timeout=15):
        """Wait until every writer has a write sent after t_kill acknowledged;
        returns {writer: seconds from the kill to that acknowledgement}."""
        try:
            wait_for(lambda: all(w.first_ack_sent_after(t_kill) or w.errors
                                 for w in writers), timeout, "writes to resume")
        except TimeoutError:
            pass
        out = {}
        for w in writers:
            self.assertEqual(w.errors, [], "writer %s failed" % w.prefix)
            t = w.first_ack_sent_after(t_kill)
            self.assertIsNotNone(t, "no write on %s acknowledged within %ds of the kill"
                                 % (w.prefix, timeout))
            out[w] = t - t_kill
        return out

    def assert_acked_present(self, i, w, via_conn=None):
        """Every write w acknowledged reads back, on host i (its host)."""
        self.assertTrue(w.acked, "writer %s got no write acknowledged" % w.prefix)
        bad = []
        conn = via_conn or self.c.conn(i)
        try:
            for path, value, _, _ in list(w.acked):
                try:
                    got = conn.read(path)
                except OSError as e:
                    got = e
                if got != value.encode():
                    bad.append((path, value, got))
        finally:
            if via_conn is None:
                conn.close()
        self.assertEqual(bad[:5], [], "%d of %d acknowledged writes of %s are "
                         "missing or wrong on host%d" % (len(bad), len(w.acked), w.prefix, i))

    def assert_acked_replicated(self, via, host_id, w):
        """Every write w acknowledged is in host_id's tree as member via holds it."""
        # a replica may lag the host that acknowledged by a heartbeat or so
        deadline = time.monotonic() + 10
        while True:
            tree = self.c.ls_replica(via, "host%d" % host_id, w.prefix)
            bad = [(p, v, tree.get(p)) for p, v, _, _ in list(w.acked) if tree.get(p) != v]
            if not bad or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(bad[:5], [], "%d of %d acknowledged writes of %s missing in "
                         "host%d's replica of host%d" % (len(bad), len(w.acked), w.prefix,
                                                          via, host_id))

    def assert_serves(self, i, path, value):
        """Clients of host i (xenstore-read and the raw client) see path = value."""
        r = self.c.xs(i, "xenstore-read", path)
        self.assertEqual((r.returncode, r.stdout), (0, value + "\n"),
                         "xenstore-read %s on host%d: %s" % (path, i, r.stderr))
        with self.c.conn(i) as conn:
            self.assertEqual(conn.read(path), value.encode())


def tear_down_module():
    """Each test file's tearDownModule: the reaper stops
    (a later cluster starts a new one) and the measurements so far are
    printed."""
    REAPER.close()
    if MEASURED:
        sys.stderr.write("\nmeasured:\n" + "".join("  %s\n" % m for m in MEASURED))
        del MEASURED[:]
