"""What the guest tests (test_guests*.py) share: the daemon under test
(--daemon or $XSR_DAEMON), GuestTest (a fresh daemon and shim directory
per test, dom0's socket, guests introduced on sim rings, bounded waits)
and its assertions.
"""
import atexit
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import simguest as sg  # noqa: E402
import xsproto  # noqa: E402
from simguest import XsError  # noqa: E402
from xsproto import args, T  # noqa: E402


def _kind_from_argv():
    kind = os.environ.get("XSR_DAEMON", "c")
    argv = [sys.argv[0]]
    it = iter(sys.argv[1:])
    for a in it:
        if a == "--daemon":
            kind = next(it, kind)
        elif a.startswith("--daemon="):
            kind = a.split("=", 1)[1]
        else:
            argv.append(a)
    sys.argv[:] = argv
    if kind not in ("ours", "c", "o"):
        sys.exit("--daemon must be ours, c or o")
    return kind


def _run_as_a_test_file():
    """Is the program one of this folder's test files? Only then may its
    command line carry --daemon (it is taken off before unittest sees it)."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return main is not None and os.path.dirname(os.path.abspath(main)) == HERE


KIND = _kind_from_argv() if _run_as_a_test_file() else os.environ.get("XSR_DAEMON", "c")

# Server features in the page: cxenstored 4.17 advertises none; ours
# advertises and honours RECONNECTION (1) and ERROR (2), a deliberate
# difference (docs/COMPATIBILITY.md).
FEATURES = 3 if KIND == "ours" else 0
KEEP = os.environ.get("XSR_KEEP") == "1"
TEST_TIMEOUT = 60.0       # one test method, hard limit
QUIET = 0.3               # "nothing more arrives" window

LIVE = set()              # daemons to stop by PID if we exit early


@atexit.register
def _stop_leftovers():
    for d in list(LIVE):
        try:
            d.stop()
        except Exception:
            pass


class Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise Timeout("test did not finish within %.0f s" % TEST_TIMEOUT)


def quota(conn, domid, item):
    """One line of CONTROL "quota <domid>" (4.17 layout "nodes    :   7")."""
    text = conn.control("quota", str(domid)).decode()
    m = re.search(r"^%s\s*:\s*(\d+)" % item, text, re.M)
    return int(m.group(1)) if m else None


class GuestTest(unittest.TestCase):
    DOMAINS = None            # XSSHIM_DOMAINS / DIR/domains; None = all exist
    DAEMON_ARGS = ()          # extra options of the daemon under test

    def setUp(self):
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)
        self.base = tempfile.mkdtemp(prefix="xsr-guest-")
        self.guests = []
        self.d = sg.SimDaemon(KIND, self.base, self.DOMAINS,
                              args=self.DAEMON_ARGS)
        LIVE.add(self.d)
        self.d.start()
        self.sim = sg.SimDir(self.d.shim)   # after start: refd wipes BASE/shim
        self.c = xsproto.Conn(self.d.socket)

    def tearDown(self):
        signal.setitimer(signal.ITIMER_REAL, 0)
        for g in self.guests:
            g.close()
        self.c.close()
        self.sim.close()
        self.d.stop()
        LIVE.discard(self.d)
        if KEEP:
            print("\n  kept", self.base, file=sys.stderr)
        else:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- helpers ----------------------------------------------------------
    def guest(self, domid, **kw):
        g = sg.introduce(self.c, self.sim, domid, **kw)
        self.guests.append(g)
        return g

    def dom0_watch(self, path, token):
        """Watch from the dom0 socket; swallow the initial event."""
        self.c.watch(path, token)
        m = self.c.recv()
        self.assertEqual(m, (T["WATCH_EVENT"], 0, 0, args(path, token)))

    def dom0_events(self, n=0, wait=QUIET):
        """Watch events on the dom0 socket: wait for n (bounded), then
        return them plus those arriving within `wait` seconds."""
        evs = [sg.event_args(m) for m in self.c.events]
        self.c.events = []
        end = time.monotonic() + 5.0
        while len(evs) < n:
            m = self.c.recv(max(end - time.monotonic(), 0.001))
            self.assertEqual(m.type, T["WATCH_EVENT"], m)
            evs.append(sg.event_args(m))
        return evs + [sg.event_args(m) for m in self.c.pending(wait)
                      if m.type == T["WATCH_EVENT"]]

    def sock_msgs(self, n):
        """The next n messages on the dom0 socket (bounded) and any others
        arriving within QUIET seconds (so that equality finds extras)."""
        msgs = [self.c.recv() for _ in range(n)]
        return msgs + self.c.pending(QUIET)

    def assertXsError(self, name, fn, *a, **kw):
        with self.assertRaises(XsError) as cm:
            fn(*a, **kw)
        self.assertEqual(cm.exception.name, name, "%s%r" % (fn.__name__, a))

    def assertSockError(self, name, fn, *a):
        """A dom0 socket request (xsproto.Conn raises OSError(errno, NAME))."""
        with self.assertRaises(OSError) as cm:
            fn(*a)
        self.assertEqual(cm.exception.strerror, name, "%s%r" % (fn.__name__, a))

    def assertStalled(self, g, what):
        """The daemon no longer consumes g's requests nor answers it."""
        before = g.indexes()
        time.sleep(QUIET)
        self.assertEqual(g.indexes(), before, what)

    def wait_stable(self, fn, quiet=QUIET, timeout=5.0):
        """fn() once it has not changed for `quiet` seconds."""
        end = time.monotonic() + timeout
        v, since = fn(), time.monotonic()
        while time.monotonic() < end:
            self.sim.wait(0.02)
            nv = fn()
            if nv != v:
                v, since = nv, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return v
        raise TimeoutError("value kept changing")
