#!/usr/bin/python3
"""chaos.py: a seeded, randomized fault-injection run against a real cluster.

The model. A cluster of N members (default 3) from deploy/cluster.sh runs on
127.0.0.1, each member in its own group id (60000+I, through setpriv) so that
iptables rules can cut it off. Every host I gets one sim guest domain
D = 10+I (tests/lib/simguest.py) and a small set of registers, the keys
/local/domain/D/chaos/k0..k4 of host I's tree. On every host, N socket
clients (threads, each with its own connection to that host's Unix socket)
and the sim guest (on its ring) read, write, remove and read-modify-write
(one xenstore transaction) those keys, all through host I's member, and
each watches /local/domain/D/chaos. Every operation is recorded with its
invoke and completion times and an outcome ok / fail / info in
ARTEFACTS/history.jsonl, in the format of tests/chaos/HISTORY.md: a
timeout (5 s), EIO, a closed connection or a killed member is "info" (it
may or may not have taken effect); a socket client then reconnects with
session+1 and registers its watch again; the sim guest keeps its ring and
counts a new session each time its member was killed.

The faults. A nemesis driven by random.Random(seed) alone (the schedule is
written to ARTEFACTS/schedule.json before the run and is the same for the
same seed; which member is "the leader" is resolved at run time and logged
in the history's nemesis lines) runs one fault at a time, each lasting a
random 1-5 s, with a heal and a pause between:
  restart-isolated  kill -9 of one member, restarted while cut off from
              the others, read at once if it serves; then healed
  kill        kill -9 of one member, restarted afterwards (and read at once
              by a probe client, so a member that serves before catching up
              is seen)
  kill-leader kill -9 of the leader (xsadm cluster status --json)
  kill-all    kill -9 of every member, all restarted at the same moment
  pause       SIGSTOP of one member, then SIGCONT
  partition   one member cut off both ways (iptables on loopback, keyed by
              the member's group id and the other members' Raft and peer
              ports, in a chain XSR_CHAOS_<pid> jumped to from OUTPUT)
  oneway      one member cannot send to the others (or cannot receive)
  split       (5 members) a random minority cut off from the majority
  transfer    xsadm cluster transfer to a random other voter
  membership  xsadm cluster remove of a follower, its daemon stopped, then
              restarted, xsadm cluster add (standby) and promote again
The end: every fault healed, every dead member restarted, the cluster
healthy (bounded), every key read on its host's socket ("final" lines),
xsadm cluster verify (must agree), every member log and sanitizer log
scanned for crashes, then tests/chaos/checker.py HISTORY judges the
history (linearizability per (host, key), no acknowledged write lost,
watch events).

Reproducing a seed: run it again with the same --seed, --members and
--seconds (and --scenario, --faults): the nemesis does the same faults in the same
order with the same durations; the clients' own choices are seeded too,
but their interleaving with the faults depends on timing.

    tests/chaos/chaos.py --seed 7 --seconds 60 [--members 5] [--dir D]
                         [--keep] [--bin build/bin] [--scenario stale]
                         [--faults kill,pause,...] [--checker PATH]

--scenario stale: only kill -9 of one member while the others go on
writing (at a higher rate: --pace 0.005), its restart while cut off from
them, and a read at once by the probe; with XSR_FAULT_SERVE_STALE=1 in the
environment (passed to the daemons) it serves its last snapshot (members
snapshot every --snapshot-threshold entries: 256 by default, 32 here) and
the checker must report a violation (chaos_catches_stale).

Exit codes: 0 every check passed; 1 a violation or a crash was found (what
and where the artefacts are is printed); 2 harness or setup error (also
the checker undecided, or bad input to it). Every process started is
stopped by PID and the iptables chain removed, also on Ctrl-C or failure
(a reaper process does both even if this one is killed).
"""
import argparse
import errno
import glob
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import simguest as sg  # noqa: E402
import xsproto  # noqa: E402
from xsproto import T, args  # noqa: E402

CLUSTER_SH = os.path.join(REPO, "deploy", "cluster.sh")
CHECKER = os.path.join(HERE, "checker.py")
PYTHON = sys.executable or "/usr/bin/python3"

KEYS = 5                 # registers per host
OP_TIMEOUT = 5.0         # seconds before an operation is given up (info)
GID_BASE = 60000
LAUNCH_TIMEOUT = 90      # a member must serve within this after its start
HEALTHY_TIMEOUT = 90
# errors that mean the request definitely took no effect
DEFINITE = {"EACCES", "EINVAL", "EEXIST", "E2BIG", "EQUOTA", "EPERM",
            "ENOSYS", "EBUSY", "ENOTEMPTY", "EISDIR", "EROFS", "ENOENT"}
# lines of a member's log (or sanitizer log) that are a crash or a bug
CRASH_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                      r"runtime error|Segmentation|SIGSEGV|SIGABRT|[Aa]ssertion|"
                      r"\bfatal\b|out of memory applying|"
                      r"store is inconsistent|cannot be decoded|"
                      r"cannot create the tree")

FAULTS = [("kill", 2), ("kill-leader", 2), ("kill-all", 1), ("pause", 2),
          ("partition", 2), ("oneway", 1), ("transfer", 1), ("membership", 1),
          ("restart-isolated", 1)]


class SetupError(Exception):
    """The harness could not do its part (exit 2)."""


def now_ns():
    return time.monotonic_ns()


def log(fmt, *a):
    sys.stdout.write("chaos: " + (fmt % a if a else fmt) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# The schedule: a pure function of (seed, members, seconds, scenario)


def make_schedule(seed, members, seconds, scenario, only=None):
    rng = random.Random(seed)
    faults = list(FAULTS)
    if members >= 5:
        faults.append(("split", 2))
    if only:
        faults = [(f, w) for f, w in faults if f in only]
        if not faults:
            raise SetupError("--faults: none of %s applies" % ",".join(only))
    names = [f for f, w in faults for _ in range(w)]
    out = []
    t = 2.0                      # the clients warm up first
    while t < seconds:
        if scenario == "stale":
            f = "restart-isolated"
            dur = round(rng.uniform(1.0, 2.0), 2)
        else:
            f = rng.choice(names)
            dur = round(rng.uniform(1.0, 5.0), 2)
        e = {"n": len(out), "fault": f, "duration": dur,
             "gap": round(rng.uniform(0.5, 2.0), 2),
             "pick": round(rng.random(), 6), "pick2": round(rng.random(), 6),
             "inbound": rng.random() < 0.5}
        out.append(e)
        t += dur + e["gap"] + 1.0   # about a second to heal and restart
    return out


def pick(seq, x):
    seq = list(seq)
    return seq[min(int(x * len(seq)), len(seq) - 1)]


# ---------------------------------------------------------------------------
# The history file


class History:
    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.counts = {"ok": 0, "fail": 0, "info": 0, "event": 0}

    def next_id(self):
        with self.lock:
            return next(self.ids)

    def put(self, rec):
        line = json.dumps(rec)
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()
            if rec["type"] == "op":
                self.counts[rec["status"]] += 1
            elif rec["type"] == "event":
                self.counts["event"] += 1

    def close(self):
        with self.lock:
            self.f.close()


# ---------------------------------------------------------------------------
# The reaper: if we die (even by SIGKILL), it kills our daemons by PID and
# removes our iptables chain


REAPER_CODE = r"""
import os, signal, subprocess, sys
pids, chains, bases = set(), set(), set()
for line in sys.stdin:
    kind, _, val = line.strip().partition(" ")
    {"pid": pids, "chain": chains, "base": bases}.get(kind, set()).add(val)
for p in pids:
    try:
        with open("/proc/%s/cmdline" % p, "rb") as f:
            cmd = f.read()
        if b"xenstored" in cmd and any(b.encode() in cmd for b in bases):
            os.kill(int(p), signal.SIGKILL)
    except (OSError, ValueError):
        pass
for c in chains:
    subprocess.run(["iptables", "-w", "-D", "OUTPUT", "-o", "lo", "-j", c],
                   stderr=subprocess.DEVNULL)
    subprocess.run(["iptables", "-w", "-F", c], stderr=subprocess.DEVNULL)
    subprocess.run(["iptables", "-w", "-X", c], stderr=subprocess.DEVNULL)
"""


class Reaper:
    def __init__(self):
        self.proc = subprocess.Popen([PYTHON, "-c", REAPER_CODE], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def tell(self, kind, val):
        try:
            self.proc.stdin.write(("%s %s\n" % (kind, val)).encode())
            self.proc.stdin.flush()
        except OSError:
            pass

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            pass


# ---------------------------------------------------------------------------
# Network partitions on loopback


class Net:
    """iptables rules in a chain of our own, jumped to from OUTPUT."""

    def __init__(self, reaper):
        self.chain = "XSR_CHAOS_%d" % os.getpid()
        self.made = False
        self.reaper = reaper

    def ipt(self, *a, check=True):
        p = subprocess.run(["iptables", "-w"] + list(a), capture_output=True,
                           text=True, timeout=30)
        if check and p.returncode != 0:
            raise SetupError("iptables %s: %s" % (" ".join(a), p.stderr.strip()))
        return p

    def setup(self):
        if not shutil.which("iptables"):
            raise SetupError("iptables is not installed (deploy/setup.sh)")
        # chains of earlier runs whose harness died without its reaper
        out = self.ipt("-S", check=False).stdout
        for c in set(re.findall(r"^-N (XSR_CHAOS_(\d+))$", out, re.M)):
            if not os.path.exists("/proc/%s" % c[1]):
                self.remove(c[0])
        self.reaper.tell("chain", self.chain)
        self.ipt("-N", self.chain)
        self.made = True
        self.ipt("-I", "OUTPUT", "1", "-o", "lo", "-j", self.chain)

    def drop(self, gid, ports):
        """Drop what a member of group gid sends to these TCP ports."""
        self.ipt("-A", self.chain, "-o", "lo", "-p", "tcp", "-m", "owner",
                 "--gid-owner", str(gid), "-m", "multiport", "--dports",
                 ",".join(str(p) for p in ports), "-j", "DROP")

    def heal(self):
        if self.made:
            self.ipt("-F", self.chain)

    def remove(self, chain=None):
        c = chain or self.chain
        if chain is None and not self.made:
            return
        while self.ipt("-D", "OUTPUT", "-o", "lo", "-j", c, check=False).returncode == 0:
            pass
        self.ipt("-F", c, check=False)
        self.ipt("-X", c, check=False)
        if chain is None:
            self.made = False


# ---------------------------------------------------------------------------
# The cluster


def alive(pid):
    """Running and not a zombie."""
    if not pid:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return st != "Z"


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError("timed out (%.0f s) waiting for %s" % (timeout, what))
        time.sleep(0.05)


class Cluster:
    def __init__(self, base, n, bindir, reaper, artefacts):
        self.base = base
        self.n = n
        self.bin = bindir
        self.reaper = reaper
        self.art = artefacts
        self.ids = list(range(1, n + 1))
        self.pids = {}              # member -> pid of its daemon
        self.epoch = {i: 0 for i in self.ids}   # bumped when a member is killed
        self.expected_down = set()
        self.lock = threading.Lock()
        self.findings = []          # crashes, failed restarts: (what, detail)
        self.on_launch = None       # on_launch(i, t_start_ns, t_served_ns)
        san = os.path.join(artefacts, "sanitizer")
        os.makedirs(san, exist_ok=True)
        self.env = dict(os.environ, XSR_BIN=bindir, XSR_SIM_RINGS="1",
                        XSR_LAUNCH_PREFIX="setpriv --regid={gid} --clear-groups")
        self.env.pop("XENSTORED_PATH", None)
        for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            self.env[v] = (self.env.get(v, "") + ":log_path=%s/%s" % (
                san, v.split("_")[0].lower())).lstrip(":")
        self.env["UBSAN_OPTIONS"] += ":print_stacktrace=1"
        self.admin_env = dict(self.env, ASAN_OPTIONS="detect_leaks=0")
        self.admin_env.pop("UBSAN_OPTIONS")
        self.admin_env.pop("XSR_FAULT_SERVE_STALE", None)
        reaper.tell("base", base + "/")

    # -- paths and config ----------------------------------------------------
    def dir(self, i):
        return os.path.join(self.base, "host%d" % i)

    def sock(self, i):
        return os.path.join(self.dir(i), "run", "socket")

    def shim(self, i):
        return os.path.join(self.dir(i), "shim")

    def conf(self, i):
        return os.path.join(self.dir(i), "xenstored.conf")

    def logfile(self, i):
        return os.path.join(self.dir(i), "xenstored.log")

    def gid(self, i):
        return GID_BASE + i

    def addresses(self, i):
        with open(self.conf(i)) as f:
            text = f.read()
        raft = re.search(r"^raft-address = (\S+)", text, re.M).group(1)
        peer = re.search(r"^peer-address = (\S+)", text, re.M).group(1)
        return raft, peer

    def ports(self, i):
        return [int(a.rsplit(":", 1)[1]) for a in self.addresses(i)]

    def read_pid(self, i):
        try:
            with open(os.path.join(self.dir(i), "xenstored.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def alive(self, i):
        return alive(self.pids.get(i))

    # -- starting and stopping ------------------------------------------------
    def up(self):
        with tempfile.TemporaryFile() as out:
            p = subprocess.run(["bash", CLUSTER_SH, "up", str(self.n), self.base],
                               env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, timeout=180)
            out.seek(0)
            text = out.read().decode(errors="replace")
        for i in self.ids:
            pid = self.read_pid(i)
            if pid:
                self.pids[i] = pid
                self.reaper.tell("pid", pid)
        if p.returncode != 0:
            raise SetupError("cluster.sh up: exit %d\n%s" % (p.returncode, text))

    def launch(self, ids, timeout=LAUNCH_TIMEOUT):
        """Start these members all at once (like TestRestartAll); returns
        {i: (exit code, output)} of their launchers (0: serving)."""
        for i in ids:
            old = self.pids.get(i)
            if old:
                wait_for(lambda: not alive(old), 30, "pid %d of host%d to exit" % (old, i))
            try:
                os.unlink(os.path.join(self.dir(i), "xenstored.pid"))
            except FileNotFoundError:
                pass
        res = {}

        def one(i):
            t_start = now_ns()
            cmd = ["setpriv", "--regid=%d" % self.gid(i), "--clear-groups",
                   os.path.join(self.bin, "xenstored"), "--config", self.conf(i)]
            with tempfile.TemporaryFile() as out:
                try:
                    p = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
                    try:
                        rc = p.wait(timeout)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(10)
                        rc = "timeout"
                except OSError as e:
                    rc = "exec: %s" % e
                out.seek(0)
                res[i] = (rc, out.read().decode(errors="replace"))
            if rc == 0 and self.on_launch:
                self.on_launch(i, t_start, now_ns())
            pid = self.read_pid(i)
            if pid:
                self.pids[i] = pid
                self.reaper.tell("pid", pid)

        threads = [threading.Thread(target=one, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 30)
        for i in ids:
            self.expected_down.discard(i)
        return res

    def restart(self, ids, why):
        """launch(); a member that fails to start is a finding; it is tried
        again (three times in all)."""
        todo = list(ids)
        for attempt in range(3):
            res = self.launch(todo)
            bad = [i for i in todo if res.get(i, ("?",))[0] != 0 or not self.alive(i)]
            for i in bad:
                self.findings.append(("host%d did not start (%s, attempt %d): exit %s" %
                                      (i, why, attempt + 1, res.get(i, ("?",))[0]),
                                      res.get(i, ("", ""))[1][-2000:]))
            if not bad:
                return True
            todo = bad
            time.sleep(2)
        return False

    def kill9(self, ids):
        pids = {i: self.pids.get(i) for i in ids}
        with self.lock:
            for i in ids:
                self.expected_down.add(i)
                self.epoch[i] += 1
        for i, pid in pids.items():
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
        for i, pid in pids.items():
            if pid:
                wait_for(lambda: not alive(pid), 15, "host%d (pid %d) to die" % (i, pid))

    def stop(self, i):
        pid = self.pids.get(i)
        with self.lock:
            self.expected_down.add(i)
            self.epoch[i] += 1
        if not alive(pid):
            return
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
        try:
            wait_for(lambda: not alive(pid), 15, "host%d to stop" % i)
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not alive(pid), 15, "host%d to die" % i)

    def signal(self, i, sig):
        pid = self.pids.get(i)
        if alive(pid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def down(self):
        """Stop every daemon we started, by PID (SIGTERM, then SIGKILL)."""
        pids = set(p for p in self.pids.values() if p)
        for i in self.ids:
            p = self.read_pid(i)
            if p:
                pids.add(p)
        # members waiting to be added have no pid file yet: by command line
        needle = (self.base + "/").encode()
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open("/proc/%s/cmdline" % name, "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                if b"xenstored" in cmd and needle in cmd:
                    pids.add(int(name))
        for p in pids:
            if alive(p):
                try:
                    os.kill(p, signal.SIGCONT)
                    os.kill(p, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 15
        while time.monotonic() < end and any(alive(p) for p in pids):
            time.sleep(0.1)
        for p in pids:
            if alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # -- xsadm ---------------------------------------------------------------
    def xsadm(self, i, *a, timeout=30):
        cmd = [os.path.join(self.bin, "xsadm"), "--socket", self.sock(i)] + [str(x) for x in a]
        try:
            p = subprocess.run(cmd, env=self.admin_env, capture_output=True, text=True,
                               timeout=timeout, stdin=subprocess.DEVNULL)
            return p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired:
            return "timeout", "", ""

    def status(self, i, timeout=10):
        rc, out, _ = self.xsadm(i, "--json", "cluster", "status", timeout=timeout)
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def leader(self):
        """The leader as seen by the first running member that knows one."""
        for i in self.ids:
            if i in self.expected_down or not self.alive(i):
                continue
            st = self.status(i, timeout=5)
            if st and st.get("leader"):
                return st["leader"]
        return None

    def healthy(self):
        """Every member running, a voter, and all agree on one leader."""
        leaders = set()
        for i in self.ids:
            if not self.alive(i):
                return False
            st = self.status(i, timeout=5)
            if not st or not st.get("leader"):
                return False
            leaders.add(st["leader"])
            roles = {m["id"]: m["role"] for m in st["members"]}
            if any(roles.get(j) != "voter" for j in self.ids):
                return False
        return len(leaders) == 1

    def wait_healthy(self, timeout=HEALTHY_TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.healthy():
                return True
            # a member left a standby by a membership change: promote it
            for i in self.ids:
                if self.alive(i):
                    st = self.status(i, timeout=5)
                    if st:
                        for m in st["members"]:
                            if m["id"] in self.ids and m["role"] == "standby":
                                self.xsadm(i, "cluster", "promote", m["id"])
                    break
            time.sleep(0.5)
        return False

    def scan_logs(self):
        """Crash and sanitizer lines: [(file, line)]."""
        out = []
        files = [self.logfile(i) for i in self.ids]
        files += sorted(glob.glob(os.path.join(self.art, "sanitizer", "*")))
        for path in files:
            try:
                with open(path, errors="replace") as f:
                    for line in f:
                        if CRASH_RE.search(line):
                            out.append((path, line.rstrip()))
            except OSError:
                pass
        return out


# ---------------------------------------------------------------------------
# Clients


def err_name(m):
    return m.payload.rstrip(b"\0").decode(errors="replace")


class Client(threading.Thread):
    """One client of one host: random read/write/rm/txn on the host's keys,
    a watch on the chaos directory. Subclasses say how to talk (socket or
    ring)."""

    def __init__(self, h, name, host, keys, watch_path, seed, halt):
        super().__init__(daemon=True, name=name)
        self.h = h
        self.cname = name
        self.host = host
        self.keys = keys
        self.watch_path = watch_path
        self.rng = random.Random(seed)
        self.halt = halt
        self.session = 0
        self.token = "t-" + name.replace("/", "-")
        self.error = None
        self.pace = 0.03

    # transport: connect() -> bool, rpc(type, payload, tx) -> Msg (or raises
    # TimeoutError / ConnectionError on an unknown outcome), lost()
    def record_event(self, m):
        parts = m.payload.split(b"\0")
        self.h.put({"type": "event", "client": self.cname, "host": self.host,
                    "path": parts[0].decode(errors="replace"),
                    "token": parts[1].decode(errors="replace") if len(parts) > 1 else "",
                    "time": now_ns(), "session": self.session})

    def register_watch(self):
        t0 = now_ns()
        m = self.rpc("WATCH", args(self.watch_path, self.token), 0)
        if m.type == T["ERROR"] and err_name(m) != "EEXIST":
            raise ConnectionError("WATCH: %s" % err_name(m))
        self.h.put({"type": "watch", "client": self.cname, "host": self.host,
                    "path": self.watch_path, "token": self.token, "time": t0,
                    "complete": now_ns(), "session": self.session})

    def op(self, f, key):
        rec = {"type": "op", "id": self.h.next_id(), "client": self.cname,
               "host": self.host, "f": f, "key": key, "value": None,
               "invoke": None, "complete": None, "status": None, "out": None,
               "error": None}
        if f in ("write", "txn"):
            rec["value"] = "v%d" % rec["id"]
        return rec

    def finish(self, rec, status, out=None, error=None):
        rec["complete"] = now_ns()
        rec["status"] = status
        rec["out"] = out
        rec["error"] = error
        self.h.put(rec)

    def classify(self, rec, m, f):
        """Record the outcome of a single-request operation from its reply."""
        if m.type != T["ERROR"]:
            out = m.payload.decode(errors="replace") if f == "read" else None
            return self.finish(rec, "ok", out)
        e = err_name(m)
        if f == "read" and e == "ENOENT":
            return self.finish(rec, "ok", None)
        if e in DEFINITE:
            return self.finish(rec, "fail", None, e)
        return self.finish(rec, "info", None, e)

    def do_one(self):
        key = self.rng.choice(self.keys)
        f = self.rng.choices(["read", "write", "rm", "txn"], [4, 3, 1, 2])[0]
        rec = self.op(f, key)
        rec["invoke"] = now_ns()
        try:
            if f == "read":
                m = self.rpc("READ", args(key), 0)
            elif f == "write":
                m = self.rpc("WRITE", key.encode() + b"\0" + rec["value"].encode(), 0)
            elif f == "rm":
                m = self.rpc("RM", args(key), 0)
            else:
                return self.do_txn(rec, key)
        except (TimeoutError, ConnectionError, OSError, xsproto.Closed, sg.RingError) as e:
            self.finish(rec, "info", None, type(e).__name__)
            self.lost()
            return
        self.classify(rec, m, f)

    def do_txn(self, rec, key):
        sent_end = False
        try:
            m = self.rpc("TRANSACTION_START", b"\0", 0)
            if m.type == T["ERROR"]:
                return self.finish(rec, "fail", None, "start: " + err_name(m))
            tx = int(m.payload.rstrip(b"\0"))
            m = self.rpc("READ", args(key), tx)
            if m.type == T["ERROR"] and err_name(m) != "ENOENT":
                self.rpc("TRANSACTION_END", b"F\0", tx)
                return self.finish(rec, "fail", None, "read: " + err_name(m))
            out = None if m.type == T["ERROR"] else m.payload.decode(errors="replace")
            m = self.rpc("WRITE", key.encode() + b"\0" + rec["value"].encode(), tx)
            if m.type == T["ERROR"]:
                self.rpc("TRANSACTION_END", b"F\0", tx)
                return self.finish(rec, "fail", None, "write: " + err_name(m))
            sent_end = True
            m = self.rpc("TRANSACTION_END", b"T\0", tx)
        except (TimeoutError, ConnectionError, OSError, xsproto.Closed, sg.RingError) as e:
            # before its end a transaction cannot have taken effect
            self.finish(rec, "info" if sent_end else "fail", None, type(e).__name__)
            self.lost()
            return
        if m.type != T["ERROR"]:
            return self.finish(rec, "ok", out)
        e = err_name(m)
        if e in DEFINITE or e == "EAGAIN":
            return self.finish(rec, "fail", None, e)
        return self.finish(rec, "info", None, e)

    def run(self):
        try:
            while not self.halt.is_set():
                if not self.ready():
                    self.halt.wait(0.2)
                    continue
                self.do_one()
                self.halt.wait(self.rng.uniform(0, 2 * self.pace))
            self.drain()
        except Exception as e:  # noqa: BLE001 - a harness bug: reported
            self.error = "%s: %r" % (self.cname, e)
            import traceback
            traceback.print_exc()


class SockClient(Client):
    def __init__(self, h, name, host, path, keys, watch_path, seed, halt):
        super().__init__(h, name, host, keys, watch_path, seed, halt)
        self.path = path
        self.conn = None
        self.req = 0

    def ready(self):
        if self.conn is not None:
            return True
        try:
            self.conn = xsproto.Conn(self.path, timeout=OP_TIMEOUT)
        except OSError:
            self.conn = None
            return False
        self.session += 1
        try:
            self.register_watch()
        except (TimeoutError, ConnectionError, OSError, xsproto.Closed):
            self.lost()
            return False
        return True

    def lost(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def rpc(self, type_, payload, tx):
        if self.conn is None:
            raise ConnectionError("not connected")
        self.req = (self.req + 1) & 0xFFFFFFFF or 1
        self.conn.send(type_, payload, req_id=self.req, tx_id=tx)
        end = time.monotonic() + OP_TIMEOUT
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply")
            m = self.conn.recv(left)
            if m.type == T["WATCH_EVENT"]:
                self.record_event(m)
            elif m.req_id == self.req:
                return m

    def drain(self):
        if self.conn:
            try:
                for m in self.conn.pending(0.2):
                    if m.type == T["WATCH_EVENT"]:
                        self.record_event(m)
            except (OSError, xsproto.Closed):
                pass
            self.lost()


class GuestClient(Client):
    """The sim guest of a host: its ring survives restarts of its member;
    it counts a new session (and registers its watch again, EEXIST being
    fine: the daemon keeps a ring's watches) each time its member is killed."""

    def __init__(self, h, name, host, cluster, i, guest, keys, watch_path, seed, halt):
        super().__init__(h, name, host, keys, watch_path, seed, halt)
        self.c = cluster
        self.i = i
        self.g = guest
        self.seen_epoch = None

    def ready(self):
        ep = self.c.epoch[self.i]
        if ep == self.seen_epoch:
            return True
        if self.i in self.c.expected_down:
            return False
        if not os.path.exists(self.g.sim.file("notify")):
            self.g.sim.open_notify()
        try:
            self.register_watch()
        except (TimeoutError, ConnectionError, OSError, sg.RingError):
            return False
        self.seen_epoch = ep
        return True

    def lost(self):
        pass

    def record_event(self, m):
        # a new session begins when the member is killed (see restored())
        self.session = self.c.epoch[self.i] + 1
        super().record_event(m)

    def register_watch(self):
        self.session = self.c.epoch[self.i] + 1
        super().register_watch()

    def restored(self, t_start, t_served):
        """The restarted daemon restores the ring's watch itself (and fires
        it once): that registration is the new session's, from the start
        of the launch to the moment the member serves."""
        self.h.put({"type": "watch", "client": self.cname, "host": self.host,
                    "path": self.watch_path, "token": self.token, "time": t_start,
                    "complete": t_served, "session": self.c.epoch[self.i] + 1})

    def rpc(self, type_, payload, tx):
        g = self.g
        rid = g.send(type_, payload, tx_id=tx, timeout=OP_TIMEOUT)
        end = time.monotonic() + OP_TIMEOUT
        while True:
            g.poll_replies()
            while g.inbox:
                m = g.inbox.popleft()
                if m.type == T["WATCH_EVENT"]:
                    self.record_event(m)
                elif m.req_id == rid:
                    return m
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply on the ring")
            g.sim.wait(min(sg.POLL, left))

    def drain(self):
        try:
            for m in self.g.pending(0.2):
                if m.type == T["WATCH_EVENT"]:
                    self.record_event(m)
        except (OSError, sg.RingError):
            pass


# ---------------------------------------------------------------------------
# The run


class Run:
    def __init__(self, opts):
        self.o = opts
        self.art = opts.dir
        self.reaper = Reaper()
        self.net = Net(self.reaper)
        self.c = Cluster(os.path.join(self.art, "cluster"), opts.members, opts.bin,
                         self.reaper, self.art)
        self.c.env["XSR_SNAPSHOT_THRESHOLD"] = str(opts.snapshot_threshold)
        self.c.env["XSR_SNAPSHOT_TRAILING"] = str(opts.snapshot_trailing)
        self.h = History(os.path.join(self.art, "history.jsonl"))
        self.halt = threading.Event()
        self.clients = []
        self.sims = []
        self.domid = {i: 10 + i for i in self.c.ids}
        self.keys = {i: ["/local/domain/%d/chaos/k%d" % (self.domid[i], k)
                         for k in range(KEYS)] for i in self.c.ids}
        self.notes = []
        self.probe_session = {}

    def nem(self, what, targets, phase, **extra):
        rec = {"type": "nemesis", "time": now_ns(), "what": what,
               "targets": ["host%d" % t for t in targets], "phase": phase}
        rec.update(extra)
        self.h.put(rec)

    # -- setup ----------------------------------------------------------------
    def setup(self):
        self.net.setup()
        self.c.up()
        if not self.c.wait_healthy(60):
            raise SetupError("the new cluster is not healthy")
        seeds = random.Random(self.o.seed ^ 0x5eed)
        guests = {}
        self.c.on_launch = lambda i, t0, t1: guests[i].restored(t0, t1) if i in guests else None
        for i in self.c.ids:
            d = self.domid[i]
            sim = sg.SimDir(self.c.shim(i))
            self.sims.append(sim)
            with xsproto.Conn(self.c.sock(i), timeout=10) as conn:
                g = sg.introduce(conn, sim, d)
                chaos = "/local/domain/%d/chaos" % d
                conn.write(chaos, b"")
                conn.set_perms(chaos, ["n%d" % d])
            g.timeout = OP_TIMEOUT
            wdir = "/local/domain/%d/chaos" % d
            host = "host%d" % i
            for k in range(self.o.clients):
                self.clients.append(SockClient(self.h, "%s/sock%d" % (host, k), host,
                                               self.c.sock(i), self.keys[i], wdir,
                                               seeds.getrandbits(32), self.halt))
            guests[i] = GuestClient(self.h, "%s/dom%d" % (host, d), host, self.c,
                                    i, g, self.keys[i], wdir,
                                    seeds.getrandbits(32), self.halt)
            self.clients.append(guests[i])

    # -- faults ---------------------------------------------------------------
    def probe(self, i):
        """Read every key of host i at once on its socket (recorded ops)."""
        name = "host%d/probe" % i
        self.probe_session[i] = self.probe_session.get(i, 0) + 1
        try:
            conn = xsproto.Conn(self.c.sock(i), timeout=OP_TIMEOUT)
        except OSError as e:
            self.notes.append("probe of host%d could not connect: %s" % (i, e))
            return
        try:
            for key in self.keys[i]:
                rec = {"type": "op", "id": self.h.next_id(), "client": name,
                       "host": "host%d" % i, "f": "read", "key": key, "value": None,
                       "invoke": now_ns(), "complete": None, "status": None,
                       "out": None, "error": None}
                try:
                    m = conn.request("READ", args(key))
                except (TimeoutError, OSError, xsproto.Closed) as e:
                    rec.update(complete=now_ns(), status="info", error=type(e).__name__)
                    self.h.put(rec)
                    return
                rec["complete"] = now_ns()
                if m.type == T["ERROR"]:
                    e = err_name(m)
                    if e == "ENOENT":
                        rec["status"] = "ok"
                    else:
                        rec.update(status="info" if e not in DEFINITE else "fail", error=e)
                else:
                    rec.update(status="ok", out=m.payload.decode(errors="replace"))
                self.h.put(rec)
        finally:
            conn.close()

    def restart(self, ids, why):
        ok = self.c.restart(ids, why)
        if ok:
            for i in ids:
                self.probe(i)
        return ok

    def sleep(self, s):
        end = time.monotonic() + s
        while time.monotonic() < end:
            time.sleep(min(0.1, end - time.monotonic()))

    def others(self, i):
        return [j for j in self.c.ids if j != i]

    def fault(self, e):
        f, dur, c = e["fault"], e["duration"], self.c
        ids = c.ids
        if f in ("kill", "kill-leader"):
            t = c.leader() if f == "kill-leader" else pick(ids, e["pick"])
            if t is None:
                t = pick(ids, e["pick"])
                self.notes.append("fault %d: no leader known, killed host%d" % (e["n"], t))
            self.nem(f, [t], "start", n=e["n"])
            c.kill9([t])
            self.sleep(dur)
            self.restart([t], "after %s" % f)
            self.nem(f, [t], "end", n=e["n"])
        elif f == "kill-all":
            self.nem(f, ids, "start", n=e["n"])
            c.kill9(ids)
            self.restart(ids, "after kill-all")
            self.nem(f, ids, "end", n=e["n"])
        elif f == "pause":
            t = pick(ids, e["pick"])
            self.nem(f, [t], "start", n=e["n"])
            c.signal(t, signal.SIGSTOP)
            try:
                self.sleep(dur)
            finally:
                c.signal(t, signal.SIGCONT)
            self.nem(f, [t], "end", n=e["n"])
        elif f in ("partition", "oneway", "split"):
            if f == "split":
                k = (len(ids) - 1) // 2
                rng = random.Random(e["pick"])
                side = sorted(rng.sample(ids, k))
            else:
                side = [pick(ids, e["pick"])]
            rest = [j for j in ids if j not in side]
            out_ = f != "oneway" or not e["inbound"]      # side -> rest dropped
            in_ = f != "oneway" or e["inbound"]           # rest -> side dropped
            what = f if f != "oneway" else ("oneway-in" if e["inbound"] else "oneway-out")
            self.nem(what, side, "start", n=e["n"], others=["host%d" % j for j in rest])
            try:
                if out_:
                    for s in side:
                        c_ports = [p for j in rest for p in c.ports(j)]
                        self.net.drop(c.gid(s), c_ports)
                if in_:
                    for r in rest:
                        self.net.drop(c.gid(r), [p for s in side for p in c.ports(s)])
                self.sleep(dur)
            finally:
                self.net.heal()
            self.nem(what, side, "end", n=e["n"])
        elif f == "transfer":
            ld = c.leader()
            to = pick([j for j in ids if j != ld], e["pick"])
            via = pick(ids, e["pick2"])
            self.nem(f, [to], "start", n=e["n"], leader=ld)
            rc, out, err = c.xsadm(via, "cluster", "transfer", to)
            if rc != 0:
                self.notes.append("fault %d: xsadm cluster transfer %d via host%d: exit %s %s"
                                  % (e["n"], to, via, rc, (out + err).strip()[:200]))
            self.sleep(dur)
            self.nem(f, [to], "end", n=e["n"], rc=rc)
        elif f == "restart-isolated":
            self.restart_isolated(e)
        elif f == "membership":
            self.membership(e)
        else:
            raise SetupError("unknown fault %r" % f)

    def isolate(self, side):
        c = self.c
        rest = [j for j in c.ids if j not in side]
        for s_ in side:
            self.net.drop(c.gid(s_), [p for j in rest for p in c.ports(j)])
        for r in rest:
            self.net.drop(c.gid(r), [p for s_ in side for p in c.ports(s_)])

    def restart_isolated(self, e):
        """kill -9 of one member while the others go on; it is restarted
        cut off from them, and read at once if it serves (it must not
        before it caught up: with XSR_FAULT_SERVE_STALE=1 it does)."""
        c = self.c
        t = pick(c.ids, e["pick"])
        self.nem("restart-isolated", [t], "start", n=e["n"])
        c.kill9([t])
        self.sleep(e["duration"])
        res = {}
        try:
            self.isolate([t])
            th = threading.Thread(target=lambda: res.update(c.launch([t])))
            th.start()
            th.join(2.0)
            if not th.is_alive() and res.get(t, (None,))[0] == 0:
                self.probe(t)           # it serves while cut off
        finally:
            self.net.heal()
        th.join(LAUNCH_TIMEOUT + 40)
        if res.get(t, (None,))[0] != 0 or not c.alive(t):
            c.findings.append(("host%d did not start (restart-isolated): exit %s"
                               % (t, res.get(t, ("?",))[0]), res.get(t, ("", ""))[1][-2000:]))
            self.restart([t], "after a failed restart-isolated")
        else:
            self.probe(t)
        self.nem("restart-isolated", [t], "end", n=e["n"])

    def membership(self, e):
        """Remove a follower, stop it, start it again, add it back as a
        standby and promote it (its data directory is kept: the member
        catches up from the leader)."""
        c = self.c
        ld = c.leader()
        if ld is None:
            self.notes.append("fault %d: membership skipped: no leader" % e["n"])
            return
        t = pick([j for j in c.ids if j != ld], e["pick"])
        via = ld
        self.nem("membership", [t], "start", n=e["n"])
        rc, out, err = c.xsadm(via, "cluster", "remove", t)
        if rc != 0:
            self.notes.append("fault %d: cluster remove %d: exit %s %s" %
                              (e["n"], t, rc, (out + err).strip()[:200]))
            self.nem("membership", [t], "end", n=e["n"], ok=False)
            return
        c.stop(t)
        self.sleep(e["duration"])
        res = {}
        th = threading.Thread(target=lambda: res.update(c.launch([t])))
        th.start()
        raft, peer = c.addresses(t)
        added = False
        end = time.monotonic() + 30
        while time.monotonic() < end and th.is_alive():
            via = c.leader() or via
            rc, out, err = c.xsadm(via, "cluster", "add", t, raft, "--peer", peer,
                                   "--name", "host%d" % t)
            if rc == 0:
                added = True
                break
            time.sleep(1)
        th.join(LAUNCH_TIMEOUT + 40)
        if not added or res.get(t, (None,))[0] != 0:
            c.findings.append(("membership: host%d did not come back (added %s, launcher %s)"
                               % (t, added, res.get(t, ("?",))[0]), res.get(t, ("", ""))[1][-2000:]))
            if not c.alive(t):
                self.restart([t], "after a failed re-add")
        else:
            self.probe(t)
        promoted = False
        end = time.monotonic() + 30
        while time.monotonic() < end:
            rc, out, err = c.xsadm(c.leader() or via, "cluster", "promote", t)
            if rc == 0:
                promoted = True
                break
            time.sleep(1)
        if not promoted:
            self.notes.append("fault %d: cluster promote %d failed: %s" %
                              (e["n"], t, (out + err).strip()[:200]))
        self.nem("membership", [t], "end", n=e["n"], ok=added and promoted)

    def check_alive(self, when):
        """A member that died without being killed by us is a crash."""
        for i in self.c.ids:
            if i not in self.c.expected_down and not self.c.alive(i):
                self.c.findings.append(("host%d exited by itself (%s)" % (i, when),
                                        tail(self.c.logfile(i))))
                with self.c.lock:
                    self.c.epoch[i] += 1
                self.restart([i], "after it exited by itself")

    def heal_all(self):
        self.net.heal()
        for i in self.c.ids:
            self.c.signal(i, signal.SIGCONT)
        dead = [i for i in self.c.ids if not self.c.alive(i)]
        if dead:
            self.restart(dead, "final heal")

    # -- the whole run -----------------------------------------------------------
    def run(self):
        o = self.o
        sched = make_schedule(o.seed, o.members, o.seconds, o.scenario, o.faults)
        with open(os.path.join(self.art, "schedule.json"), "w") as f:
            json.dump({"seed": o.seed, "members": o.members, "seconds": o.seconds,
                       "scenario": o.scenario, "only": o.faults,
                       "snapshot_threshold": o.snapshot_threshold,
                       "snapshot_trailing": o.snapshot_trailing,
                       "clients_per_host": o.clients,
                       "faults": sched}, f, indent=1)
        self.setup()
        for cl in self.clients:
            cl.pace = o.pace
            cl.start()
        t_start = time.monotonic()
        self.sleep(2.0)
        for e in sched:
            if time.monotonic() - t_start > o.seconds:
                self.notes.append("time up after %d of %d faults" % (e["n"], len(sched)))
                break
            log("fault %d: %s (%.1f s)", e["n"], e["fault"], e["duration"])
            self.fault(e)
            self.check_alive("after fault %d (%s)" % (e["n"], e["fault"]))
            self.sleep(e["gap"])
        self.heal_all()
        self.sleep(2.0)                     # the clients on a healed cluster
        self.halt.set()
        for cl in self.clients:
            cl.join(OP_TIMEOUT * 4 + 5)
        stuck = [cl.cname for cl in self.clients if cl.is_alive()]
        errs = [cl.error for cl in self.clients if cl.error]
        if stuck or errs:
            raise SetupError("clients stuck %s, client errors %s" % (stuck, errs))
        self.check_alive("at the end")
        if not self.c.wait_healthy():
            self.c.findings.append(("the cluster did not become healthy within %d s"
                                    % HEALTHY_TIMEOUT, ""))
        self.final_reads()
        self.verify()

    def final_reads(self):
        for i in self.c.ids:
            with xsproto.Conn(self.c.sock(i), timeout=10) as conn:
                for key in self.keys[i]:
                    m = conn.request("READ", args(key))
                    if m.type == T["ERROR"]:
                        if err_name(m) != "ENOENT":
                            raise SetupError("final read of %s on host%d: %s"
                                             % (key, i, err_name(m)))
                        v = None
                    else:
                        v = m.payload.decode(errors="replace")
                    self.h.put({"type": "final", "host": "host%d" % i, "key": key,
                                "value": v, "time": now_ns()})

    def verify(self):
        for attempt in range(5):
            rc, out, err = self.c.xsadm(self.c.ids[0], "cluster", "verify", timeout=60)
            with open(os.path.join(self.art, "verify.txt"), "w") as f:
                f.write("exit %s\n%s%s" % (rc, out, err))
            if rc == 0:
                return
            if rc == 1 and "differ" in (out + err).lower():
                break
            time.sleep(2)
        self.c.findings.append(("xsadm cluster verify: exit %s" % rc, (out + err)[-2000:]))

    def cleanup(self):
        self.halt.set()
        try:
            self.net.heal()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.c.down()
        finally:
            try:
                self.net.remove()
            finally:
                for s in self.sims:
                    try:
                        s.close()
                    except Exception:  # noqa: BLE001
                        pass
                self.h.close()
                self.reaper.close()


def tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def run_checker(opts, history):
    checker = opts.checker or os.environ.get("XSR_CHAOS_CHECKER") or CHECKER
    if not os.path.exists(checker):
        return None, "no checker at %s" % checker
    try:
        p = subprocess.run([PYTHON, checker, history], capture_output=True, text=True,
                           timeout=opts.checker_timeout)
    except subprocess.TimeoutExpired:
        return 3, "checker timed out after %d s" % opts.checker_timeout
    with open(os.path.join(opts.dir, "checker.txt"), "w") as f:
        f.write("exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
    return p.returncode, (p.stdout + p.stderr).strip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--clients", type=int, default=2, help="socket clients per host")
    ap.add_argument("--pace", type=float, default=None,
                    help="mean pause of a client between two operations, s "
                    "(0.03; 0.005 for --scenario stale)")
    ap.add_argument("--dir", help="artefact directory (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the artefacts even on success")
    ap.add_argument("--bin", default=os.environ.get("XSR_BIN", os.path.join(REPO, "build", "bin")))
    ap.add_argument("--scenario", choices=["mixed", "stale"], default="mixed")
    ap.add_argument("--snapshot-threshold", type=int, default=None,
                    help="members snapshot every N log entries (256; 32 for "
                    "--scenario stale), so that snapshots are taken, sent "
                    "and restored under the faults")
    ap.add_argument("--snapshot-trailing", type=int, default=None,
                    help="log entries kept after a snapshot (a quarter of "
                    "the threshold): a member that falls further behind is "
                    "caught up by an installed snapshot")
    ap.add_argument("--faults", type=lambda v: v.split(","), default=None,
                    help="only these faults (comma-separated; default all): " +
                    ",".join(f for f, _ in FAULTS) + ",split")
    ap.add_argument("--checker", help="checker script (default tests/chaos/checker.py)")
    ap.add_argument("--checker-timeout", type=int, default=300)
    o = ap.parse_args(argv)
    if o.pace is None:
        o.pace = 0.005 if o.scenario == "stale" else 0.03
    if o.snapshot_threshold is None:
        o.snapshot_threshold = 32 if o.scenario == "stale" else 256
    if o.snapshot_trailing is None:
        o.snapshot_trailing = max(4, o.snapshot_threshold // 4)
    if o.seed is None:
        o.seed = random.SystemRandom().randrange(1 << 31)
    o.seconds = o.seconds if o.seconds is not None else (o.minutes * 60 if o.minutes else 40)
    o.bin = os.path.abspath(o.bin)
    if not os.path.exists(os.path.join(o.bin, "xenstored")):
        print("chaos: no xenstored in %s" % o.bin, file=sys.stderr)
        return 2
    keep = o.keep or bool(o.dir)
    if o.dir:
        os.makedirs(o.dir, exist_ok=True)
        o.dir = os.path.abspath(o.dir)
    else:
        o.dir = tempfile.mkdtemp(prefix="xsr-chaos-s%d-" % o.seed)
    log("seed %d, %d members, %.0f s, scenario %s, artefacts in %s",
        o.seed, o.members, o.seconds, o.scenario, o.dir)

    def on_term(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)

    r = Run(o)
    rc = 2
    t0 = time.monotonic()
    try:
        try:
            r.run()
        finally:
            r.cleanup()
        crashes = r.c.scan_logs()
        counts = r.h.counts
        log("%d ops ok, %d fail, %d info, %d watch events in %.0f s",
            counts["ok"], counts["fail"], counts["info"], counts["event"],
            time.monotonic() - t0)
        for n in r.notes:
            log("note: %s", n)
        bad = False
        for what, detail in r.c.findings:
            bad = True
            log("FOUND: %s\n%s", what, detail)
        for path, line in crashes:
            bad = True
            log("FOUND in %s: %s", path, line)
        crc, cout = run_checker(o, os.path.join(o.dir, "history.jsonl"))
        if crc is None:
            log("checker: %s", cout)
            rc = 2
        elif crc == 0:
            log("checker: history checked, no violation")
            rc = 1 if bad else 0
        elif crc == 1:
            log("VIOLATION (checker):\n%s", cout[-6000:])
            rc = 1
        else:
            log("checker exit %d (%s):\n%s", crc, "bad input" if crc == 2 else "undecided",
                cout[-3000:])
            rc = 1 if bad else 2
    except SetupError as e:
        log("harness error: %s", e)
        rc = 2
    except KeyboardInterrupt as e:
        log("interrupted (%s)", e)
        rc = 2
    except Exception:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        rc = 2
    if rc == 0 and not keep:
        shutil.rmtree(o.dir, ignore_errors=True)
        log("PASS (seed %d); artefacts removed (--keep keeps them)", o.seed)
    else:
        log("%s (seed %d); artefacts in %s", {0: "PASS", 1: "FAIL"}.get(rc, "ERROR"),
            o.seed, o.dir)
    return rc


if __name__ == "__main__":
    sys.exit(main())
