#!/usr/bin/env python3
"""Bounded work for any client (issue 12): a local client that floods the
daemon with connections cannot take it down, make it spin, or fill its
log, and an existing client keeps being served.

- TestConnectionFlood: a daemon whose descriptor limit is 64 (so at most
  32 client connections, node/listen.c) gets 200 connections at once;
  the ones over the cap are closed at once, the refusals are logged in a
  line or two, the daemon does not spin, and a client connected before
  reads and writes throughout.
- TestOutOfDescriptors: a limit of 30 runs accept() itself out of
  descriptors (EMFILE): the daemon gives up its spare descriptor to clear
  the queue, pauses accepting, logs once per interval, and goes on.

Every daemon is started by this file and stopped by PID, every wait is
bounded, only Unix sockets are used.

    python3 tests/e2e/test_limits.py [-v]      (XSR_BIN)
"""
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from daemon import BIN, wait_for, pid_alive  # noqa: E402
from xsproto import Conn, Closed  # noqa: E402


def cpu_seconds(pid):
    """User + system CPU time of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Flood(unittest.TestCase):
    NOFILE = 64

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-limits-")
        self.log = os.path.join(self.base, "log")
        self.sock = os.path.join(self.base, "run", "socket")
        nofile = self.NOFILE

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        env = dict(os.environ)
        env.pop("XENSTORED_PATH", None)
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "xenstored"), "-N",
             "--data-dir", os.path.join(self.base, "data"),
             "--run-dir", os.path.join(self.base, "run"),
             "--log-file", self.log],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=limit, env=env,
            start_new_session=True)
        self.flood = []
        wait_for(lambda: os.path.exists(self.sock) and self.serving(), 20,
                 "the daemon to serve")

    def serving(self):
        try:
            with Conn(self.sock) as c:
                c.read("/")
            return True
        except (OSError, Closed):  # refused while the flood's go
            return False

    def tearDown(self):
        for s in self.flood:
            s.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)

    def open_flood(self, n):
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(1.0)
            try:
                s.connect(self.sock)
            except OSError:
                s.close()
                continue
            self.flood.append(s)

    def check_served(self, c, rounds, what):
        for i in range(rounds):
            t = time.monotonic()
            c.write("/limits/%s" % what, str(i))
            self.assertEqual(c.read("/limits/%s" % what), str(i).encode())
            self.assertLess(time.monotonic() - t, 2.0, "a slow reply")
            time.sleep(0.02)

    def flood_and_check(self, n, what):
        pid = self.proc.pid
        with Conn(self.sock) as c:
            c.write("/limits/before", "1")
            cpu0 = cpu_seconds(pid)
            t0 = time.monotonic()
            self.open_flood(n)
            self.check_served(c, 50, what)
            # the daemon does not spin on what it cannot accept
            time.sleep(1.0)
            spent = cpu_seconds(pid) - cpu0
            wall = time.monotonic() - t0
            self.assertLess(spent, 0.5 * wall,
                            "%.2f s of CPU in %.2f s" % (spent, wall))
            self.assertTrue(pid_alive(pid))
        # the refusals are in the log, in a few lines
        with open(self.log, errors="replace") as f:
            text = f.read()
        self.assertIn("refused", text)
        self.assertLess(os.path.getsize(self.log), 64 * 1024)
        self.assertLess(text.count("refused"), 10, text[-2000:])
        # once the flood is gone, new clients are served again
        for s in self.flood:
            s.close()
        self.flood = []
        wait_for(self.serving, 10, "a new client to be served")
        return text


class TestConnectionFlood(Flood):
    NOFILE = 64

    def test_flood_is_capped_and_logged_once(self):
        text = self.flood_and_check(200, "capped")
        self.assertIn("at most 32 client connections", text)
        self.assertIn("too many connections", text)


class TestOutOfDescriptors(Flood):
    NOFILE = 30

    def test_emfile_pauses_and_logs_once(self):
        text = self.flood_and_check(100, "emfile")
        self.assertIn("out of file descriptors", text)


if __name__ == "__main__":
    unittest.main()
