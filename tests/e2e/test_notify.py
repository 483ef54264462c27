#!/usr/bin/python3
"""The daemon and a service manager (issue 15): without systemd running,
the test owns the datagram socket $NOTIFY_SOCKET names and checks that
READY=1 arrives only once the daemon's socket answers (not before: a
cluster member that must catch up stays silent until it has), that STATUS=
lines describe its state, that WATCHDOG=1 pings come when $WATCHDOG_USEC
asks for them, and STOPPING=1 at SIGTERM; in the foreground and forked.
Also: with stderr the journal's stream ($JOURNAL_STREAM), log lines carry
their priority as "<N>".

Every daemon runs in its own temporary directory, binds only 127.0.0.1 and
Unix sockets, is waited for with a bound and stopped by PID.
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from daemon import BIN, wait_for, pid_alive  # noqa: E402
from xsproto import Conn  # noqa: E402

XENSTORED = os.path.join(BIN, "xenstored")
# sh replaces itself with the daemon: $$ is the daemon's pid
WITH_OWN_PID = 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"'


class NotifySocket:
    """The service manager's end: a datagram socket that learns each
    sender's pid (SO_PASSCRED)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.msgs = []  # (time, pid, {key: value})

    def poll(self, timeout):
        """Receive what arrives within timeout s; return the new ones."""
        new = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                break
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            fields = dict(l.split("=", 1) for l in data.decode().split("\n") if "=" in l)
            m = (time.monotonic(), pid, fields)
            self.msgs.append(m)
            new.append(m)
            # hand over each message as it comes
            break
        return new

    def wait(self, pred, timeout, what):
        """The first message (already received or to come) for which
        pred(fields) holds."""
        for m in self.msgs:
            if pred(m[2]):
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.poll(min(0.2, max(0.01, deadline - time.monotonic()))):
                if pred(m[2]):
                    return m
        raise TimeoutError("no %s within %s s; got %r" % (what, timeout,
                                                           [m[2] for m in self.msgs]))

    def drain(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll(deadline - time.monotonic())

    def statuses(self):
        return [m[2]["STATUS"] for m in self.msgs if "STATUS" in m[2]]

    def close(self):
        self.sock.close()


def slurp(path):
    with open(path, errors="replace") as f:
        return f.read()


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Case(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-notify-")
        self.procs = []  # Popen objects to stop
        self.pids = []   # daemon pids to stop
        self.ns = NotifySocket(os.path.join(self.base, "notify"))

    def tearDown(self):
        for pid in self.pids:
            self.kill(pid)
        for p in self.procs:
            if p.poll() is None:
                self.kill(p.pid)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.ns.close()
        shutil.rmtree(self.base, ignore_errors=True)

    def kill(self, pid, sig=signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def env(self, **extra):
        e = dict(os.environ)
        for k in ("XENSTORED_PATH", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                  "WATCHDOG_PID", "JOURNAL_STREAM"):
            e.pop(k, None)
        e.update(extra)
        return e

    def dirs(self, name):
        d = os.path.join(self.base, name)
        os.makedirs(d, exist_ok=True)
        return d

    def argv(self, name, *more):
        d = self.dirs(name)
        return ["--data-dir", os.path.join(d, "data"), "--run-dir", os.path.join(d, "run"),
                "--pid-file", os.path.join(d, "pid")] + list(more)

    def popen(self, argv, env, log, shell_pid=False):
        out = open(log, "ab")
        cmd = ([XENSTORED] + argv) if not shell_pid else \
            ["/bin/sh", "-c", WITH_OWN_PID, XENSTORED] + argv
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             env=env, start_new_session=True)
        out.close()
        self.procs.append(p)
        return p

    def answers(self, name):
        sock = os.path.join(self.base, name, "run", "socket")
        with Conn(sock, timeout=2.0) as c:
            return c.directory("/")

    def stop(self, p, timeout=15):
        os.kill(p.pid, signal.SIGTERM)
        return p.wait(timeout)


class Foreground(Case):
    def test_ready_status_watchdog_stopping(self):
        """-N: READY=1 once a READ answers what the log holds (a key
        written before a restart), STATUS=, WATCHDOG=1 pings at half
        WATCHDOG_USEC, STOPPING=1 at SIGTERM, all from the daemon's pid."""
        log = os.path.join(self.base, "a.log")
        # a first run writes a key to the log
        p = self.popen(self.argv("a", "-N"), self.env(), log)
        pidfile = os.path.join(self.base, "a", "pid")
        wait_for(lambda: os.path.exists(pidfile) and os.path.getsize(pidfile) > 0
                 or p.poll() is not None, 20, "the first start")
        self.assertIsNone(p.poll(), slurp(log))
        with Conn(os.path.join(self.base, "a", "run", "socket")) as c:
            c.write("/notify/key", "kept")
        self.assertEqual(self.stop(p), 0)
        self.assertEqual(self.ns.msgs, [])  # no NOTIFY_SOCKET, nothing sent

        env = self.env(NOTIFY_SOCKET=self.ns.path, WATCHDOG_USEC="400000")
        p = self.popen(self.argv("a", "-N"), env, log, shell_pid=True)
        t, pid, ready = self.ns.wait(lambda f: "READY" in f, 20, "READY=1")
        # at once: the socket serves what the log held
        with Conn(os.path.join(self.base, "a", "run", "socket"), timeout=2.0) as c:
            self.assertEqual(c.read("/notify/key"), b"kept")
        self.assertEqual(pid, p.pid)
        self.assertEqual(ready.get("MAINPID"), str(p.pid))
        self.assertRegex(ready.get("STATUS", ""), r"^serving, applied \d+$")
        # pings: 200 ms apart, from the daemon
        self.ns.drain(1.5)
        pings = [m for m in self.ns.msgs if m[0] > t and "WATCHDOG" in m[2]]
        self.assertGreaterEqual(len(pings), 4, self.ns.msgs)
        self.assertLessEqual(len(pings), 12, self.ns.msgs)
        self.assertTrue(all(m[1] == p.pid and m[2]["WATCHDOG"] == "1" for m in pings))
        # STATUS follows the figures (at most once a second)
        with Conn(os.path.join(self.base, "a", "run", "socket")) as c:
            for i in range(5):
                c.write("/notify/more%d" % i, "x")
        self.ns.wait(lambda f: "STATUS" in f and f is not ready
                     and f["STATUS"] != ready["STATUS"], 5, "a new STATUS=")
        os.kill(p.pid, signal.SIGTERM)
        m = self.ns.wait(lambda f: "STOPPING" in f, 10, "STOPPING=1")
        self.assertEqual(m[2]["STOPPING"], "1")
        self.assertEqual(m[1], p.pid)
        self.assertEqual(p.wait(15), 0)

    def test_watchdog_of_another_pid(self):
        """WATCHDOG_PID naming another process: no pings (sd_watchdog_enabled)."""
        env = self.env(NOTIFY_SOCKET=self.ns.path, WATCHDOG_USEC="200000",
                       WATCHDOG_PID="1")
        p = self.popen(self.argv("b", "-N"), env, os.path.join(self.base, "b.log"))
        self.ns.wait(lambda f: "READY" in f, 20, "READY=1")
        self.ns.drain(0.8)
        self.assertFalse([m for m in self.ns.msgs if "WATCHDOG" in m[2]])
        self.assertEqual(self.stop(p), 0)


class Forked(Case):
    def test_forked_child_notifies(self):
        """Without -N: the command returns once serving; READY=1 comes from
        the daemon (the forked child), with MAINPID= naming it."""
        env = self.env(NOTIFY_SOCKET=self.ns.path)
        log = os.path.join(self.base, "f.log")
        p = self.popen(self.argv("f"), env, log)
        self.assertEqual(p.wait(30), 0, slurp(log))
        with open(os.path.join(self.base, "f", "pid")) as f:
            daemon_pid = int(f.read())
        self.pids.append(daemon_pid)
        self.assertNotEqual(daemon_pid, p.pid)
        _, pid, ready = self.ns.wait(lambda f: "READY" in f, 10, "READY=1")
        self.assertEqual(pid, daemon_pid)
        self.assertEqual(ready.get("MAINPID"), str(daemon_pid))
        self.assertIn("STATUS", ready)
        os.kill(daemon_pid, signal.SIGTERM)
        self.ns.wait(lambda f: "STOPPING" in f, 10, "STOPPING=1")
        wait_for(lambda: not pid_alive(daemon_pid), 15, "the daemon to exit")


class Cluster(Case):
    def conf(self, i, ports, n=3, extra=""):
        d = self.dirs("host%d" % i)
        members = "".join("member = %d host%d 127.0.0.1:%d 127.0.0.1:%d\n" %
                          (j, j, ports[2 * j - 2], ports[2 * j - 1]) for j in range(1, n + 1))
        text = ("[xenstored]\ndata-dir = %s/data\nrun-dir = %s/run\npid-file = %s/pid\n"
                "ready-timeout = 60000\n[member]\nid = %d\nname = host%d\n"
                "raft-address = 127.0.0.1:%d\npeer-address = 127.0.0.1:%d\n"
                "[cluster]\ninsecure = true\ncold-start-wait = 60000\n%s%s" %
                (d, d, d, i, i, ports[2 * i - 2], ports[2 * i - 1], extra, members))
        path = os.path.join(d, "xenstored.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_ready_only_once_caught_up(self):
        """A member that cannot reach a quorum is not ready (its STATUS=
        says it is catching up, its socket does not exist); once a second
        member starts it catches up, and READY=1 arrives when its socket
        answers."""
        ports = free_ports(6)
        c1, c2 = self.conf(1, ports), self.conf(2, ports)
        p1 = self.popen(["-N", "--config", c1], self.env(NOTIFY_SOCKET=self.ns.path),
                        os.path.join(self.base, "host1.log"))
        self.ns.drain(3.0)
        self.assertIsNone(p1.poll(), slurp(os.path.join(self.base, "host1.log")))
        self.assertFalse([m for m in self.ns.msgs if "READY" in m[2]], self.ns.msgs)
        st = self.ns.statuses()
        self.assertTrue(st and st[0].startswith("catching up with the log before serving"), st)
        self.assertFalse(os.path.exists(os.path.join(self.base, "host1", "run", "socket")))
        p2 = self.popen(["-N", "--config", c2], self.env(),
                        os.path.join(self.base, "host2.log"))
        _, pid, ready = self.ns.wait(lambda f: "READY" in f, 40, "READY=1")
        self.assertEqual(pid, p1.pid)
        self.answers("host1")  # at once
        self.assertRegex(ready["STATUS"], r"^serving, leader host[12]( \(this member\))?, applied \d+$")
        for p in (p1, p2):
            self.assertEqual(self.stop(p), 0)
        self.ns.wait(lambda f: "STOPPING" in f, 5, "STOPPING=1")

    def test_no_quorum_status(self):
        """A serving member that loses its quorum says so in STATUS=."""
        ports = free_ports(4)
        extra = "standalone-after = 500\n"
        c1, c2 = self.conf(1, ports, 2, extra), self.conf(2, ports, 2, extra)
        p1 = self.popen(["-N", "--config", c1], self.env(NOTIFY_SOCKET=self.ns.path),
                        os.path.join(self.base, "host1.log"))
        p2 = self.popen(["-N", "--config", c2], self.env(),
                        os.path.join(self.base, "host2.log"))
        self.ns.wait(lambda f: "READY" in f, 40, "READY=1")
        self.assertEqual(self.stop(p2), 0)
        m = self.ns.wait(lambda f: f.get("STATUS", "").startswith("no quorum since"),
                         15, "STATUS=no quorum")
        self.assertRegex(m[2]["STATUS"], r"^no quorum since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: "
                                         r"serving own tree locally, applied \d+$")
        self.assertEqual(self.stop(p1), 0)


class Journal(unittest.TestCase):
    def run_once(self, stream):
        base = tempfile.mkdtemp(prefix="xsr-journal-")
        try:
            log = os.path.join(base, "stderr")
            out = open(log, "wb")
            st = os.fstat(out.fileno())
            env = dict(os.environ)
            env.pop("XENSTORED_PATH", None)
            env.pop("NOTIFY_SOCKET", None)
            env["JOURNAL_STREAM"] = stream if stream else "%d:%d" % (st.st_dev, st.st_ino)
            pidfile = os.path.join(base, "pid")
            p = subprocess.Popen([XENSTORED, "-N", "--data-dir", os.path.join(base, "data"),
                                  "--run-dir", os.path.join(base, "run"), "--pid-file", pidfile],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                 start_new_session=True)
            out.close()
            try:
                wait_for(lambda: os.path.exists(pidfile) or p.poll() is not None, 20, "start")
                os.kill(p.pid, signal.SIGTERM)
                self.assertEqual(p.wait(15), 0)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)
            with open(log) as f:
                return f.read().splitlines()
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def test_priority_prefix(self):
        """stderr is the journal's stream: "<N>level: message", N the
        syslog priority; otherwise the usual stamped lines."""
        lines = self.run_once(None)
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[0-7]>(error|warning|notice|info|debug): ")
        self.assertTrue([l for l in lines if re.match(r"^<5>notice: ready: ", l)], lines)
        self.assertTrue([l for l in lines if re.match(r"^<6>info: ", l)], lines)
        # another stream: not the journal
        lines = self.run_once("1:2")
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d xenstored\[\d+\]: ")


if __name__ == "__main__":
    unittest.main(verbosity=2)
