#!/usr/bin/env python3
"""Bounded work for any client (issue 12), watches: one connection with
20,000 watches on "/" that does not read its events must not make other
clients wait.

- TestSamePath: connection A adds 20,000 watches on "/" (pipelined; the
  time is printed and bounded), then stops reading. B writes one node 200
  times, 5 ms apart: each write queues an event per watch for A, and every one past
  the first round is a duplicate of an event still queued unsent, which
  cxenstored drops (send_event()); B's write latency is printed and its
  p99 bounded. A's queue holds at most one event per (path, token) plus
  what the socket buffers. A is still served: it UNWATCHes one token and
  reads, and the next event reaches every token but that one.
- TestDistinctPaths: B writes 200 different nodes, so nothing is a
  duplicate and A's unsent output grows by about 0.7 MB per write. A
  socket client is closed once it exceeds drop_output_bytes (64 MiB,
  node/conn.h): A is closed, the log says why, B goes on being served,
  and the daemon's peak memory stays bounded.

The daemon is ours (tests/lib/daemon.py), its data directory on tmpfs
when there is one, stopped by PID; every wait is bounded.

    python3 tests/e2e/test_watch_scale.py [-v]      (XSR_BIN; XSR_SANITIZE)
    XSR_SCALE_WATCHES=n XSR_SCALE_WRITES=m ...      (smaller runs, by hand)
"""
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from daemon import Daemon, pid_alive, wait_for  # noqa: E402
from xsproto import Conn, Closed, T, args, pack  # noqa: E402

N_WATCHES = int(os.environ.get("XSR_SCALE_WATCHES", "20000"))
N_WRITES = int(os.environ.get("XSR_SCALE_WRITES", "200"))
SANITIZED = os.environ.get("XSR_SANITIZE", "").lower() in ("1", "on", "true", "yes")

# The issue asks for a p99 of 5 ms on a quiet machine; a loaded CI machine
# gets a tenfold margin, a sanitizer build four times that.
P99_BOUND_S = 0.050 * (4 if SANITIZED else 1)
ADD_BOUND_S = 10.0 * (3 if SANITIZED else 1)
# The daemon's own CPU time for the adds, which a busy machine inflates
# less than the wall time: 0.06 s measured; scanning the connection's
# watches per add took 3.0 s (4.0 s of wall time).
ADD_CPU_BOUND_S = 1.5 * (3 if SANITIZED else 1)
# drop_output_bytes (CONN_LIMITS_DEFAULT): a socket client beyond it is
# closed.
DROP_OUTPUT_BYTES = 64 << 20
# Peak resident memory allowed: the 64 MiB of unsent output, its per-event
# bookkeeping (about twice the bytes again) and the rest of the daemon;
# a sanitizer adds redzones and its quarantine.
PEAK_BOUND_KB = (1536 if SANITIZED else 512) * 1024

# B writes like a toolstack, not like a benchmark loop: each write costs
# the daemon 2-4 ms of CPU (20,000 events, each checked against A's queue),
# and back to back on a 2-core machine shared with other jobs the tail
# would measure the scheduler rather than the daemon.
PACE_S = 0.005

TOKEN = "t%05d"


def token(i):
    return (TOKEN % i).encode()


def cpu_seconds(pid):
    """User + system CPU time of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def socket_buffer_bytes():
    """What a Unix socket may hold unread (the daemon's send buffer)."""
    try:
        with open("/proc/sys/net/core/wmem_default") as f:
            return 2 * int(f.read())  # the kernel doubles what is set
    except OSError:
        return 8 << 20


def percentile(sorted_values, p):
    k = min(len(sorted_values) - 1, int(round(p / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


def add_watches(a, n, batch=1000):
    """WATCH "/" with n tokens, pipelined batch by batch; reads every OK
    and every initial event. Returns the seconds it took."""
    t0 = time.monotonic()
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        a.send_raw(b"".join(pack("WATCH", args("/", TOKEN % i), req_id=i)
                            for i in range(start, stop)))
        replies, events = 0, 0
        while replies < stop - start or events < stop - start:
            m = a.recv(timeout=60)
            if m.type == T["WATCH_EVENT"]:
                assert m.payload == b"/\0" + token(start + events) + b"\0", m
                events += 1
            else:
                assert m == (T["WATCH"], start + replies, 0, b"OK\0"), m
                replies += 1
    return time.monotonic() - t0


def timed_writes(b, paths, pace_s=0.0):
    """Write each path, pace_s apart; the sorted latencies."""
    lat = []
    for i, p in enumerate(paths):
        t = time.monotonic()
        b.write(p, str(i))
        lat.append(time.monotonic() - t)
        time.sleep(pace_s)
    return sorted(lat)


class Scale(unittest.TestCase):
    def setUp(self):
        # The data directory on tmpfs if there is one: what is measured is
        # the watches' cost, not the disk's fsync (which a busy CI machine
        # makes vary by tens of milliseconds).
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.base = tempfile.mkdtemp(prefix="xsr-watch-scale-", dir=shm)
        self.d = Daemon("ours", base=self.base).start()
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.d.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)

    def conn(self):
        c = Conn(self.d.socket, timeout=30)
        self.conns.append(c)
        return c

    def setup_watcher(self):
        a = self.conn()
        cpu0 = cpu_seconds(self.d.pid)
        secs = add_watches(a, N_WATCHES)
        cpu = cpu_seconds(self.d.pid) - cpu0
        print("\n  %d watches on / added in %.2f s (daemon CPU %.2f s)" %
              (N_WATCHES, secs, cpu))
        self.assertLess(secs, ADD_BOUND_S)
        self.assertLess(cpu, ADD_CPU_BOUND_S)
        # a duplicate is still refused at that scale
        self.assertRaises(OSError, a.watch, "/", TOKEN % (N_WATCHES // 2))
        return a

    def report(self, what, lat):
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        print("  %s: %d writes, p50 %.2f ms, p99 %.2f ms, max %.2f ms" %
              (what, len(lat), p50 * 1e3, p99 * 1e3, lat[-1] * 1e3))
        return p99


class TestSamePath(Scale):
    def test_watcher_not_reading_does_not_stall_writers(self):
        a = self.setup_watcher()
        b = self.conn()
        lat = timed_writes(b, ["/scale/node"] * N_WRITES, PACE_S)
        p99 = self.report("one node, A not reading", lat)
        self.assertLess(p99, P99_BOUND_S)
        self.assertTrue(self.d.alive())

        # A is served: its UNWATCH is answered after its queued events
        a.send(T["UNWATCH"], args("/", TOKEN % 0), req_id=7)
        per_token = {}
        while True:
            m = a.recv(timeout=60)
            if m.type != T["WATCH_EVENT"]:
                break
            path, tok, _ = m.payload.split(b"\0")
            self.assertEqual(path, b"/scale/node")
            per_token[tok] = per_token.get(tok, 0) + 1
        self.assertEqual(m, (T["UNWATCH"], 7, 0, b"OK\0"))
        # one event per watch at least; duplicates of a queued one were
        # dropped, so beyond one per token only what the socket held
        self.assertEqual(len(per_token), N_WATCHES)
        extra = sum(per_token.values()) - N_WATCHES
        event_bytes = 16 + len(b"/scale/node\0") + len(token(0)) + 1
        self.assertLessEqual(extra, socket_buffer_bytes() // event_bytes)
        print("  A got %d events for %d watches" %
              (sum(per_token.values()), N_WATCHES))
        self.assertEqual(a.read("/scale/node"), str(N_WRITES - 1).encode())

        # the next event reaches every watch but the one removed
        b.write("/scale/after", "x")
        got = set()
        deadline = time.monotonic() + 60
        while len(got) < N_WATCHES - 1 and time.monotonic() < deadline:
            m = a.recv(timeout=60)
            self.assertEqual(m.type, T["WATCH_EVENT"])
            path, tok, _ = m.payload.split(b"\0")
            self.assertEqual(path, b"/scale/after")
            self.assertNotIn(tok, got)
            got.add(tok)
        self.assertNotIn(token(0), got)
        self.assertEqual(len(got), N_WATCHES - 1)
        self.assertEqual(a.pending(0.2), [])


class TestDistinctPaths(Scale):
    def test_unread_output_is_bounded(self):
        a = self.setup_watcher()
        b = self.conn()
        lat = timed_writes(b, ["/scale/d/%04d" % i for i in range(N_WRITES)])
        self.report("distinct nodes, A not reading", lat)
        pid = self.d.pid
        self.assertTrue(pid_alive(pid))
        peak = vm_kb(pid, "VmHWM")
        print("  daemon peak RSS %.1f MiB" % (peak / 1024.0))
        queued = N_WRITES * N_WATCHES * (16 + len("/scale/d/0000\0") + len(token(0)) + 1)
        if queued <= DROP_OUTPUT_BYTES + socket_buffer_bytes():
            self.skipTest("too few writes to pass drop_output_bytes")
        self.assertLess(peak, PEAK_BOUND_KB)
        # A was closed: it reads what the socket held, then the end
        n = 0
        with self.assertRaises(Closed):
            while True:
                m = a.recv(timeout=30)
                self.assertEqual(m.type, T["WATCH_EVENT"])
                n += 1
        print("  A read %d events, then its connection was closed" % n)
        # what was queued went with the connection: A read only what
        # the socket held
        event_bytes = 16 + len(b"/scale/d/0000\0") + len(token(0)) + 1
        self.assertLessEqual(n * event_bytes, socket_buffer_bytes())
        wait_for(lambda: "client does not read its replies" in self.d.log_text(),
                 10, "the log to say why A was closed")
        # B is served, and a new watcher gets its events
        c = self.conn()
        c.watch("/scale", "c")
        self.assertEqual(c.recv().payload, b"/scale\0c\0")
        b.write("/scale/d/0000", "again")
        self.assertEqual(c.recv().payload, b"/scale/d/0000\0c\0")
        self.assertEqual(b.read("/scale/d/0000"), b"again")


if __name__ == "__main__":
    unittest.main()
