"""What the e2e_clients tests (test_clients*.py) share: the daemon under
test ($XSR_DAEMON), started per TestCase class by DaemonCase and stopped
by PID (a reaper process SIGKILLs any left over), bounded waits (deadline,
BgTool), and running Xen's client tools and parsing what they print.
"""
import atexit
import contextlib
import errno
import os
import re
import select
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import daemon as daemonlib  # noqa: E402
import xsproto  # noqa: E402

KIND = os.environ.get("XSR_DAEMON", "ours")
XEN_BIN = os.environ.get("XSR_XEN_BIN", "/usr/lib/xen-4.17/bin")
CLI_DIR = os.environ.get("XSR_CLI_DIR", "/usr/bin")
PYTHON = "/usr/bin/python3"          # the interpreter that has python3-pyxs
TOOL_TIMEOUT = 30.0                  # one client command
EVENT_TIMEOUT = 10.0                 # one watch event / one reply
TEST_TIMEOUT = 180.0                 # one test method, hard limit

# ---------------------------------------------------------------------------
# Daemons: started per class, stopped by PID, never leaked.


class Reaper(daemonlib.Reaper):
    """Lists daemon PIDs: each one started, and "-PID" once stopped."""
    CODE = r"""
import os, signal, sys
pids = set()
for line in sys.stdin:
    line = line.strip()
    if line.startswith("-"):
        pids.discard(int(line[1:]))
    elif line:
        pids.add(int(line))
for pid in pids:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""


REAPER = Reaper()
atexit.register(REAPER.close)


def start_daemon(kind):
    d = daemonlib.Daemon(kind)
    try:
        d.start()
    except BaseException:
        d.cleanup()
        raise
    REAPER.add(d.pid)
    return d


def stop_daemon(d):
    if d is None:
        return
    pid = d.pid
    d.cleanup()                       # SIGTERM by PID, SIGKILL if needed
    if pid is not None:
        if daemonlib.pid_alive(pid):
            raise RuntimeError("daemon %d survived stop" % pid)
        REAPER.remove(pid)


# ---------------------------------------------------------------------------
# Bounded waiting


class Timeout(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds, what="operation"):
    """Raise Timeout in the main thread if the block runs too long.

    Nests: an outer deadline is restored (minus the time spent) on exit.
    pyxs blocks in Condition.wait(), which a signal interrupts.
    """
    def on_alarm(signum, frame):
        raise Timeout("%s did not finish within %.0f s" % (what, seconds))

    start = time.monotonic()
    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:
            left = old_delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


# ---------------------------------------------------------------------------
# Running the client tools


def tool_path(name):
    if name in ("xenstore-control", "test-xenstore"):
        return os.path.join(XEN_BIN, name)
    if name.startswith("xenstore"):
        return os.path.join(CLI_DIR, name)
    return name


def as_bytes(x):
    return x if isinstance(x, bytes) else str(x).encode()


def run_tool(argv, env, timeout=TOOL_TIMEOUT):
    argv = [tool_path(argv[0])] + list(argv[1:])
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


class BgTool:
    """A client command running in the background; stdout read line by line
    with a bounded wait (for xenstore-watch)."""

    def __init__(self, argv, env):
        self.argv = argv
        self.proc = subprocess.Popen([tool_path(argv[0])] + list(argv[1:]),
                                     env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buf = b""

    def readline(self, timeout=EVENT_TIMEOUT):
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise Timeout("%s printed no line within %.0f s (so far %r)"
                              % (self.argv, timeout, self.buf))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                data = os.read(fd, 4096)
                if not data:
                    raise EOFError("%s exited early (rc=%s, so far %r, stderr %r)"
                                   % (self.argv, self.proc.wait(5), self.buf,
                                      self.proc.stderr.read()))
                self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def finish(self, timeout=EVENT_TIMEOUT):
        """Wait for exit; return (rc, remaining stdout, stderr)."""
        rc = self.proc.wait(timeout)
        rest = self.buf + self.proc.stdout.read()
        err = self.proc.stderr.read()
        self.close()
        return rc, rest, err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


def xs_escape(value):
    """How the xenstore-* tools print a value: printable ASCII as is,
    backslash doubled, \\t \\n \\r, \\ooo below 010, \\xNN otherwise."""
    out = []
    for c in value:
        if 0x20 <= c <= 0x7e and c != 0x5c:
            out.append(chr(c))
        elif c in (9, 10, 13, 0x5c):
            out.append({9: "\\t", 10: "\\n", 13: "\\r", 0x5c: "\\\\"}[c])
        elif c < 8:
            out.append("\\%03o" % c)
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


def control_quota_table(text):
    """Parse 'xenstore-control quota' output into {name: int}; check layout:
    'Quota settings:' then lines '<name padded to 17>: <value width 8> <text>'."""
    lines = text.split("\n")
    assert lines[0] == "Quota settings:", text
    assert text.endswith("\n\n"), repr(text)
    table = {}
    for line in lines[1:-2]:
        m = re.match(r"^([a-z-]+) *: +(\d+) (\S.*)$", line)
        assert m, "bad quota line %r" % line
        assert line.index(":") == 17, "name column is not 17 wide: %r" % line
        assert re.match(r"^: [ \d]{8} ", line[17:]), "value not %%8d: %r" % line
        table[m.group(1)] = int(m.group(2))
    return table


def control_domain_table(text):
    """Parse 'xenstore-control quota <domid>' ('Domain N:' then
    '<name padded to 16>: <value width 8>' lines) into (domid, {name: int})."""
    lines = text.split("\n")
    m = re.match(r"^Domain (\d+):$", lines[0])
    assert m, text
    assert text.endswith("\n\n"), repr(text)
    table = {}
    for line in lines[1:-2]:
        mm = re.match(r"^([a-z-]+) *: +(\d+)$", line)
        assert mm and line.index(":") == 16 and len(line) == 16 + 2 + 8, \
            "bad domain quota line %r" % line
        table[mm.group(1)] = int(mm.group(2))
    return int(m.group(1)), table


# ---------------------------------------------------------------------------
# Base class


class DaemonCase(unittest.TestCase):
    """One fresh daemon per TestCase class."""
    daemon = None
    needs = ("xenstore-read",)

    @classmethod
    def setUpClass(cls):
        for name in cls.needs:
            if not os.access(tool_path(name), os.X_OK):
                raise unittest.SkipTest("%s is not installed" % tool_path(name))
        cls.daemon = start_daemon(KIND)
        cls.sock = cls.daemon.socket
        cls.env = cls.daemon.env_for_clients()

    @classmethod
    def tearDownClass(cls):
        stop_daemon(cls.daemon)
        cls.daemon = None

    def setUp(self):
        cm = deadline(TEST_TIMEOUT, self.id())
        cm.__enter__()
        self.addCleanup(cm.__exit__, None, None, None)

    def tearDown(self):
        self.assertTrue(self.daemon.alive(), "the daemon died during the test:\n"
                        + self.daemon.log_text())

    # -- helpers -----------------------------------------------------------
    def xs(self, *argv, **kw):
        """Run a client command; check exit code, stdout (if given) and
        stderr (exactly; None = don't care).  Returns stdout (bytes)."""
        return self.xsp(*argv, **kw).stdout

    def xsp(self, *argv, rc=0, out=None, err=b"", env=None, timeout=TOOL_TIMEOUT):
        """Like xs() but returns the CompletedProcess."""
        argv = [a if isinstance(a, bytes) else str(a) for a in argv]
        p = run_tool(argv, env or self.env, timeout)
        ctx = "%s -> rc=%s\nstdout=%r\nstderr=%r" % (argv, p.returncode,
                                                     p.stdout, p.stderr)
        self.assertEqual(p.returncode, rc, ctx)
        if out is not None:
            self.assertEqual(p.stdout, as_bytes(out), ctx)
        if err is not None:
            self.assertEqual(p.stderr, as_bytes(err), ctx)
        return p

    def conn(self):
        c = xsproto.Conn(self.sock, timeout=EVENT_TIMEOUT)
        self.addCleanup(c.close)
        return c

    def watcher(self, *argv):
        w = BgTool(list(argv), self.env)
        self.addCleanup(w.close)
        return w

    def assert_missing(self, path):
        with self.assertRaises(OSError) as cm:
            self.conn().read(path)
        self.assertEqual(cm.exception.errno, errno.ENOENT, path)


# the children of /big (TestLsList) and of /trbig (TestWireTranscript)
BIG_NAMES = ["child-with-a-longish-name-%03d" % i for i in range(1, 301)]


def import_pyxs():
    try:
        import pyxs
        from pyxs._internal import Op
        return pyxs, Op
    except ImportError:
        raise unittest.SkipTest("python3-pyxs is not installed (use /usr/bin/python3)")

