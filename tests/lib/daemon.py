"""Start and stop xenstore daemons for tests: ours, or Xen 4.17's own C
(and OCaml) xenstored through ../shared/reference/refd.

Every daemon runs in its own temporary directory, binds only Unix sockets,
is waited for with a bound, and is stopped by PID.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("XSR_BIN", os.path.join(REPO, "build", "bin"))
SHARED = os.environ.get("XSR_SHARED", os.path.abspath(os.path.join(REPO, "..", "shared")))
REFD = os.path.join(SHARED, "reference", "refd")


class Reaper:
    """A helper process that outlives the test only to SIGKILL daemons it
    leaves behind. A subclass's CODE reads lines on stdin ("X" lists X,
    "-X" forgets it) and, at EOF (our exit, even by SIGKILL, closes the
    pipe), kills what is still listed."""

    CODE = None
    CLOSE_TIMEOUT = 10  # seconds to let it finish at our exit

    def __init__(self):
        self.proc = None

    def _send(self, line):
        if self.proc is None:
            self.proc = subprocess.Popen(["/usr/bin/python3", "-c", self.CODE],
                                         stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass

    def add(self, item):
        self._send(str(item))

    def remove(self, item):
        self._send("-%s" % item)

    def close(self):
        """At exit: EOF makes the reaper kill what is left, then exit. A
        later add() starts a new reaper (a suite split over several files
        closes it after each file)."""
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(self.CLOSE_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.proc = None


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise TimeoutError("timed out waiting for %s" % what)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child counts as dead
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Daemon:
    """kind: "ours", "c" (ref cxenstored) or "o" (ref oxenstored)."""

    def __init__(self, kind="ours", base=None, args=(), env=None):
        self.kind = kind
        self.own_base = base is None
        self.base = base or tempfile.mkdtemp(prefix="xsr-test-")
        self.args = list(args)
        self.env = env
        self.pid = None
        self.proc = None
        self.run_dir = os.path.join(self.base, "run")
        self.data_dir = os.path.join(self.base, "data")
        self.socket = os.path.join(self.run_dir, "socket")
        self.socket_ro = os.path.join(self.run_dir, "socket_ro")
        self.log = os.path.join(self.base, "daemon.log")

    # -- lifecycle -----------------------------------------------------
    def start(self, timeout=20.0):
        if self.kind == "ours":
            self._start_ours(timeout)
        else:
            self._start_ref(timeout)
        return self

    def _start_ours(self, timeout):
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.data_dir, exist_ok=True)
        pidfile = os.path.join(self.base, "xenstored.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        cmd = [os.path.join(BIN, "xenstored"), "-N", "--data-dir", self.data_dir,
               "--run-dir", self.run_dir, "--pid-file", pidfile] + self.args
        env = dict(os.environ)
        env.pop("XENSTORED_PATH", None)
        if self.env:
            env.update(self.env)
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self.pid = self.proc.pid
        try:
            wait_for(lambda: self.proc.poll() is not None or
                     (os.path.exists(pidfile) and os.path.getsize(pidfile) > 0
                      and os.path.exists(self.socket)),
                     timeout, "xenstored to start")
        except TimeoutError:
            self.stop(signal.SIGKILL)
            raise RuntimeError("xenstored did not start:\n" + self.log_text())
        if self.proc.poll() is not None:
            raise RuntimeError("xenstored exited with %s:\n%s" %
                               (self.proc.returncode, self.log_text()))

    def _start_ref(self, timeout):
        out = subprocess.run([REFD, "start", self.kind, self.base] + self.args,
                             check=True, capture_output=True, text=True,
                             timeout=timeout + 60).stdout
        self.pid = int(out.split()[1])

    def alive(self):
        return self.pid is not None and pid_alive(self.pid)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop by PID; SIGKILL if it does not exit in time."""
        if self.pid is None:
            return None
        pid, self.pid = self.pid, None
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        try:
            wait_for(lambda: not pid_alive(pid), timeout, "daemon %d to exit" % pid)
        except TimeoutError:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_for(lambda: not pid_alive(pid), 5, "daemon %d to die" % pid)
        rc = None
        if self.proc is not None:
            try:
                rc = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        if self.kind != "ours":
            try:
                os.unlink(os.path.join(self.base, "daemon.pid"))
            except OSError:
                pass
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if self.own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-8000:]
        except OSError:
            return "(no log)"

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.cleanup()

    def env_for_clients(self):
        env = dict(os.environ)
        env["XENSTORED_PATH"] = self.socket
        return env
