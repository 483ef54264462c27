"""chaos.py's cluster: the members of a run (deploy/cluster.sh on
127.0.0.1, each in a group id of its own), started, killed, stopped and
asked through xsadm by PID; the reaper that kills them (and removes the
iptables chain) if chaos.py dies; the scan of their logs for crashes.
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

CLUSTER_SH = os.path.join(REPO, "deploy", "cluster.sh")
PYTHON = sys.executable or "/usr/bin/python3"

GID_BASE = 60000
LAUNCH_TIMEOUT = 90      # a member must serve within this after its start
HEALTHY_TIMEOUT = 90
# lines of a member's log (or sanitizer log) that are a crash or a bug
CRASH_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                      r"runtime error|Segmentation|SIGSEGV|SIGABRT|[Aa]ssertion|"
                      r"\bfatal\b|out of memory applying|"
                      r"store is inconsistent|cannot be decoded|"
                      r"cannot create the tree")


class SetupError(Exception):
    """The harness could not do its part (exit 2)."""


def now_ns():
    return time.monotonic_ns()



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


def tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""
