#!/usr/bin/python3
"""Hostile guests (ours only; issue 12): a guest that floods changes is
slowed at its own ring while another guest's writes keep their latency;
changes this replica already proves refused cost no log entry; after a
restart, transaction ids the daemon does not know count against the
transaction quota.

test_guests.py runs this file with the others; alone:

    python3 tests/guest/test_guests_hostile.py --daemon ours -v
"""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

from guestlib import KIND, GuestTest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import daemon as daemonlib  # noqa: E402
import xsproto  # noqa: E402
from simguest import XsError  # noqa: E402
from xsproto import args, T  # noqa: E402

RATE = 100  # --guest-write-rate below: a burst of 10 s' worth, 1,000


def p99(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def applied_index(sock):
    r = subprocess.run([os.path.join(daemonlib.BIN, "xsadm"), "--socket", sock,
                        "--json", "cluster", "status"],
                       capture_output=True, text=True, timeout=30)
    st = json.loads(r.stdout)
    me = [m for m in st["members"] if m.get("id") == st.get("member")]
    return int((me[0] if me else st)["applied"])


@unittest.skipUnless(KIND == "ours", "our ingress limits")
class TestHostileGuest(GuestTest):
    DAEMON_ARGS = ("--guest-write-rate", str(RATE))

    def latencies(self, g, n, prefix):
        out = []
        for i in range(n):
            t = time.monotonic()
            g.write("data/%s%d" % (prefix, i % 20), "x")
            out.append(time.monotonic() - t)
        return out

    def test_write_flood_slows_only_the_flooder(self):
        a = self.guest(1)
        b = self.guest(2)
        quiet = self.latencies(b, 100, "q")
        # A floods: 20 changes in flight at all times (its outstanding
        # quota), topped up between everything else this test does
        state = {"sent": 0, "done": 0, "inflight": 0}

        def pump():
            for m in a.pending(0):
                if m.type != T["WATCH_EVENT"]:
                    state["done"] += 1
                    state["inflight"] -= 1
            while state["inflight"] < 20:
                a.send("WRITE", b"data/f%d\0v" % (state["sent"] % 50))
                state["sent"] += 1
                state["inflight"] += 1

        # through A's burst (1,000 changes)
        deadline = time.monotonic() + 30
        while state["done"] < 1200 and time.monotonic() < deadline:
            pump()
            self.sim.wait(0.01)
        self.assertGreaterEqual(state["done"], 1200,
                                "the flood did not get going")
        # B, while A keeps pushing
        loaded = []
        for i in range(100):
            pump()
            t = time.monotonic()
            b.write("data/l%d" % (i % 20), "x")
            loaded.append(time.monotonic() - t)
        # A, out of credit, gets about RATE changes a second
        n0, t0 = state["done"], time.monotonic()
        while time.monotonic() - t0 < 2.0:
            pump()
            self.sim.wait(0.01)
        rate = (state["done"] - n0) / (time.monotonic() - t0)
        print("\n  B's write p99 quiet %.1f ms, under A's flood %.1f ms; "
              "A's rate out of credit %.0f/s (limit %d/s)"
              % (p99(quiet) * 1e3, p99(loaded) * 1e3, rate, RATE),
              file=sys.stderr)
        self.assertLess(rate, RATE * 2, "A was not slowed")
        self.assertLess(p99(loaded), 2 * p99(quiet) + 0.010,
                        "B's writes slowed by A's flood")
        # A is slowed, not cut off: what it sent is all answered
        deadline = time.monotonic() + 30
        while state["inflight"] and time.monotonic() < deadline:
            for m in a.pending(0.05):
                if m.type != T["WATCH_EVENT"]:
                    state["inflight"] -= 1
        self.assertEqual(state["inflight"], 0)
        a.write("data/after", "1")
        self.assertEqual(self.c.read("/local/domain/1/data/after"), b"1")

    def test_refused_changes_cost_no_log_entry(self):
        a = self.guest(1)
        self.c.write("/secret", "root's")           # n0: nobody else
        before = applied_index(self.d.socket)
        for i in range(300):
            with self.assertRaises(XsError) as cm:
                a.write("/secret", "mine")
            self.assertEqual(cm.exception.name, "EACCES")
        with self.assertRaises(XsError) as cm:
            a.write("/local/domain/1/data/" + "x" * 3000, "v")  # path-max
        self.assertEqual(cm.exception.name, "EINVAL")
        after = applied_index(self.d.socket)
        self.assertLess(after - before, 5, "refused writes went to the log")
        self.assertEqual(self.c.read("/secret"), b"root's")
        a.write("data/ok", "1")   # and allowed ones still do
        self.assertEqual(self.c.read("/local/domain/1/data/ok"), b"1")

    def test_unknown_transactions_after_restart_within_quota(self):
        a = self.guest(1)
        a.write("data/x", "1")
        self.d.stop(signal.SIGKILL)
        self.d.start()
        self.c.close()
        self.c = xsproto.Conn(self.d.socket)
        if not os.path.exists(self.sim.file("notify")):
            self.sim.open_notify()
        # reads in 100 transactions the new daemon never saw
        taken, refused = 0, 0
        for tx in range(1, 101):
            m = a.request("READ", args("data/x"), tx_id=tx)
            if m.type == T["ERROR"]:
                self.assertEqual(m.payload, b"ENOENT\0")
                refused += 1
            else:
                taken += 1
        # the quota (10, and cxenstored's one over) bounds them
        self.assertLessEqual(taken, 11)
        self.assertEqual(taken + refused, 100)
        # each taken one fails at its end (done again by the guest)
        m = a.request("TRANSACTION_END", args("T"), tx_id=1)
        self.assertEqual((m.type, m.payload), (T["ERROR"], b"EAGAIN\0"))
        self.assertEqual(a.read("data/x"), b"1")


if __name__ == "__main__":
    unittest.main()
