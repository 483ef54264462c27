#!/usr/bin/python3
"""Guests over sim rings: quotas and hostile or greedy guests.

TestQuotas (nodes, node size, watches, transactions, outstanding
requests), TestHostileRing (bad indexes, oversized lengths, wrapping, tiny
pieces), TestFlood (one guest's flood does not starve the others).
test_guests.py runs this file with the others; alone:

    python3 tests/guest/test_guests_limits.py --daemon ours -v
"""
import os
import sys
import threading
import time
import unittest

from guestlib import KIND, QUIET, GuestTest, quota

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import simguest as sg  # noqa: E402
import xsproto  # noqa: E402
from simguest import XsError  # noqa: E402
from xsproto import args, T  # noqa: E402


class TestQuotas(GuestTest):
    def test_nodes(self):
        """Xen 4.17 default quota "nodes" 1000 (-E): a domain may own exactly
        1000 nodes (check `cur >= quota` before creating one)."""
        g = self.guest(1)
        owned = len(sg.GUEST_DIRS)             # introduce() gives it 7 dirs
        self.assertEqual(quota(self.c, 1, "nodes"), owned)
        # spread over 20 directories: one parent's child list would hit the
        # node-size quota first (that limit counts the child names)
        for i in range(20):
            g.mkdir("data/d%d" % i)
        owned += 20
        n = 0
        with self.assertRaises(XsError) as cm:
            while n < 1100:
                g.write("data/d%d/n%d" % (n % 20, n), "")
                n += 1
        self.assertEqual(cm.exception.name, "ENOSPC")
        self.assertEqual(owned + n, 1000)
        self.assertEqual(quota(self.c, 1, "nodes"), 1000)
        self.assertXsError("ENOSPC", g.mkdir, "data/more")
        g.write("data/d0/n0", "rewrite is fine")
        g.rm("data/d0/n0")
        g.write("data/d0/again", "")
        self.assertXsError("ENOSPC", g.write, "data/d0/again2", "")
        # inside a transaction the check is at commit
        g.rm("data/d0/again")
        tx = g.start()
        g.write("data/d1/t1", "", tx)
        g.write("data/d1/t2", "", tx)
        self.assertXsError("ENOSPC", g.end, tx)
        self.assertXsError("ENOENT", g.read, "data/d1/t1")
        self.assertEqual(quota(self.c, 1, "nodes"), 999)
        # the privileged domain is exempt, even creating guest-owned nodes
        self.c.write("/local/domain/1/data/d2/bydom0", "")
        self.assertEqual(self.c.get_perms("/local/domain/1/data/d2/bydom0"), ["n1"])

    def test_node_size(self):
        """Quota "node-size" 2048 (-S): the whole 4.17 TDB record (24-byte
        header + 8 bytes per permission + value + child names) must stay
        below 2048: a 1-permission node holds at most 2015 bytes."""
        g = self.guest(1)
        g.write("data/big", b"x" * 2015)
        self.assertEqual(g.read("data/big"), b"x" * 2015)
        self.assertXsError("ENOSPC", g.write, "data/big", b"x" * 2016)
        self.assertXsError("ENOSPC", g.write, "data/big2", b"x" * 2016)
        self.assertEqual(g.read("data/big"), b"x" * 2015)
        # a second permission costs 8 bytes
        g.write("data/two", b"y" * 2007)
        self.assertXsError("ENOSPC", g.set_perms, "data/big", ["n1", "r0"])
        g.set_perms("data/two", ["n1", "r0"])
        self.assertXsError("ENOSPC", g.write, "data/two", b"y" * 2008)
        # child names count against the parent: 2015 bytes of names
        g.mkdir("data/p")
        name = "c" * 1000
        g.write("data/p/" + name, "")
        g.write("data/p/" + "d" * 1013, "")                 # 1001 + 1014 = 2015
        self.assertXsError("ENOSPC", g.write, "data/p/e", "")
        # the request itself may carry up to 4096 payload bytes
        g.send("WRITE", b"data/x\0" + b"z" * (4096 - 7))
        self.assertEqual(g.reply().payload, b"ENOSPC\0")
        self.assertEqual(g.error, 0)
        # dom0 is exempt
        self.c.write("/local/domain/1/data/big", b"x" * 3000)

    def test_watches(self):
        """Quota "watches" 128 (-W): 4.17 checks `count > quota`, so the
        129th watch is accepted and the 130th refused with E2BIG."""
        g = self.guest(1)
        n = 0
        with self.assertRaises(XsError) as cm:
            while n < 300:
                g.watch("data/w%d" % n, "t")
                n += 1
        self.assertEqual(cm.exception.name, "E2BIG")
        self.assertEqual(n, 129)
        self.assertEqual(quota(self.c, 1, "watches"), 129)
        g.unwatch("data/w0", "t")
        g.watch("data/again", "t")
        self.assertXsError("E2BIG", g.watch, "data/again2", "t")
        g.reset_watches()
        self.assertEqual(quota(self.c, 1, "watches"), 0)
        g.watch("data/w0", "t")

    def test_transactions(self):
        """Quota "transactions" 10 (-t): 4.17 checks `count > quota` -> 11
        open transactions, the 12th TRANSACTION_START gets ENOSPC."""
        g = self.guest(1)
        txs = []
        with self.assertRaises(XsError) as cm:
            while len(txs) < 30:
                txs.append(g.start())
        self.assertEqual(cm.exception.name, "ENOSPC")
        self.assertEqual(txs, list(range(1, 12)))
        g.end(txs.pop(), commit=False)
        txs.append(g.start())
        self.assertXsError("ENOSPC", g.start)
        for t in txs:
            g.end(t)
        g.end(g.start())

    def test_outstanding(self):
        """Quota "outstanding" 20: a guest that does not consume its replies
        gets no error: the daemon just stops reading its ring while 20
        requests are unanswered (reply not completely in the ring)."""
        g = self.guest(1)
        g.write("data/v", b"v" * 184)           # READ reply = 16 + 184 = 200 bytes
        start = g.req_cons
        req = xsproto.pack("READ", b"data/v\0")
        N = 40                                  # 40 * 23 bytes fit the 1024-byte ring
        for i in range(N):
            self.assertEqual(g.put(xsproto.pack("READ", b"data/v\0", req_id=100 + i),
                                   kick=False), len(req))
        g.kick()
        cons = self.wait_stable(lambda: g.req_cons)
        self.assertEqual(g.rsp_prod - g.rsp_cons, 1024)     # response ring full
        taken = (cons - start) // len(req)
        # 5 replies fit completely in the response ring, 20 wait: 25 read
        self.assertEqual(taken, 20 + 1024 // 200)
        self.assertEqual(quota(self.c, 1, "outstanding"), 20)
        self.assertEqual(g.error, 0)
        rs = g.replies(N)                       # consuming restarts it
        self.assertEqual([m.req_id for m in rs], list(range(100, 100 + N)))
        self.assertEqual({m.payload for m in rs}, {b"v" * 184})
        self.assertEqual(g.req_cons, g.req_prod)
        self.assertEqual(quota(self.c, 1, "outstanding"), 0)
        # dom0 and other guests were never affected
        self.assertEqual(self.guest(2).read("domid"), b"2")


# ---------------------------------------------------------------------------


class TestHostileRing(GuestTest):
    def test_bad_request_indexes(self):
        """req_prod - req_cons > 1024: error = 2 (XENSTORE_ERROR_RINGIDX) in
        the page, the guest is ignored; everybody else is served."""
        self.dom0_watch("@releaseDomain", "rel")
        g1, g2, g3 = self.guest(1), self.guest(2), self.guest(3)
        g1.watch("data", "t")
        self.assertEqual(g1.events_n(1, quiet=0), [("data", "t")])
        g1.set("req_prod", g1.req_cons + 1025)
        g1.kick()
        g1.wait_until(lambda: g1.error, what="error set")
        self.assertEqual(g1.error, sg.ERROR_RINGIDX)
        # indexes behind by 2^32 - 1 are just as bad
        g2.set("req_prod", (g2.req_cons - 1) & 0xFFFFFFFF)
        g2.kick()
        g2.wait_until(lambda: g2.error, what="error set")
        self.assertEqual(g2.error, sg.ERROR_RINGIDX)
        # the others are fine
        self.assertEqual(g3.read("domid"), b"3")
        self.assertEqual(self.c.read("/local/domain/1/domid"), b"1")
        # the ignored guest gets nothing: no events, no replies even after
        # it repairs its indexes
        rsp = g1.rsp_prod
        self.c.write("/local/domain/1/data/x", "")
        g1.set("req_prod", g1.req_cons)
        g1.send("READ", b"domid\0")
        self.assertStalled(g1, "ignored guest")
        self.assertEqual(g1.rsp_prod, rsp)
        self.assertEqual(g1.error, sg.ERROR_RINGIDX)
        # its watches and transactions are gone, the domain is not released
        # (XSA-325) ...
        self.assertEqual(quota(self.c, 1, "watches"), 0)
        self.assertEqual(self.c.call("IS_DOMAIN_INTRODUCED", args("1")), b"T\0")
        self.assertEqual(self.dom0_events(), [])
        # ... until it really dies
        self.sim.kill_domain(1)
        self.assertEqual(self.dom0_events(1), [("@releaseDomain", "rel")])
        self.assertEqual(self.c.call("IS_DOMAIN_INTRODUCED", args("1")), b"F\0")

    def test_bad_response_indexes(self):
        """rsp_prod - rsp_cons > 1024 when the daemon writes a reply:
        error = 2 as well (4.17 writechn)."""
        g1, g2 = self.guest(1), self.guest(2)
        g1.set("rsp_cons", g1.rsp_prod + 5000)
        g1.send("READ", b"domid\0")
        g1.wait_until(lambda: g1.error, what="error set")
        self.assertEqual(g1.error, sg.ERROR_RINGIDX)
        self.assertEqual(g2.read("domid"), b"2")

    def test_oversized_length(self):
        """A header with len > 4096: error = 3 (XENSTORE_ERROR_PROTO), no
        reply; len == 4096 is a normal request."""
        g1, g2 = self.guest(1), self.guest(2)
        g1.inject(xsproto.HDR.pack(T["READ"], 9, 0, 4097))
        g1.wait_until(lambda: g1.error, what="error set")
        self.assertEqual(g1.error, sg.ERROR_PROTO)
        self.assertEqual(g1.req_cons, g1.req_prod)            # header consumed
        self.assertEqual(g1.pending(QUIET), [])
        g2.inject(xsproto.HDR.pack(T["WRITE"], 9, 0, 0xFFFFFFFF) + b"data/x\0")
        g2.wait_until(lambda: g2.error, what="error set")
        self.assertEqual(g2.error, sg.ERROR_PROTO)
        g3 = self.guest(3)
        g3.send("WRITE", b"data/x\0" + b"z" * (4096 - 7))     # 4096: fine
        self.assertEqual(g3.reply().payload, b"ENOSPC\0")     # (node-size quota)
        self.assertEqual(g3.error, 0)
        self.assertEqual(self.c.read("/local/domain/3/domid"), b"3")

    def _pad_to(self, g, offset):
        """Send one harmless WRITE so that req_prod % 1024 == offset."""
        n = (offset - g.req_prod) % sg.RING
        while n < 16 + len(b"data/pad\0"):
            n += sg.RING
        g.send("WRITE", b"data/pad\0" + b"p" * (n - 16 - 9))
        self.assertEqual(g.reply().payload, b"OK\0")
        self.assertEqual(g.req_prod % sg.RING, offset)

    def test_wrap(self):
        """Headers and payloads straddling the end of the ring; replies too."""
        g = self.guest(1)
        g.write("data/v", "value")
        for off in (1023, 1020, 1016, 1009, 1000):
            self._pad_to(g, off)
            self.assertEqual(g.read("data/v"), b"value")
            # the response ring wraps too: its offset moves with each reply
        for roff in (1020, 1010):
            # move rsp_prod to just before the wrap with a sized READ reply
            n = (roff - (g.rsp_prod + 19)) % sg.RING      # after the WRITE's "OK"
            while n < 16 + 1:
                n += sg.RING
            g.write("data/r", b"r" * (n - 16))
            self.assertEqual(g.read("data/r"), b"r" * (n - 16))
            self.assertEqual(g.rsp_prod % sg.RING, roff)
            self.assertEqual(g.read("data/v"), b"value")

    def test_tiny_pieces(self):
        """One request in 1-byte pieces, each with its own kick: answered
        once complete, not before."""
        g = self.guest(1)
        msg = xsproto.pack("WRITE", b"data/slow\0bytes", req_id=7)
        g.write_bytes(msg[:-1], chunk=1, pause=0.002)
        g.wait_until(lambda: g.req_cons == g.req_prod, what="bytes consumed")
        self.assertEqual(g.pending(QUIET), [])
        g.write_bytes(msg[-1:])
        self.assertEqual(g.reply(), (T["WRITE"], 7, 0, b"OK\0"))
        self.assertEqual(g.read("data/slow"), b"bytes")
        # a message larger than the ring goes in pieces both ways
        big = bytes(range(256)) * 7 + b"tail"                  # 1796 bytes
        g.write("data/big", big)
        self.assertEqual(g.read("data/big"), big)
        # pieces of 5 bytes across the wrap
        self._pad_to(g, 1020)
        g.send("READ", b"data/slow\0", req_id=8, chunk=5, pause=0.001)
        self.assertEqual(g.reply(), (T["READ"], 8, 0, b"bytes"))


# ---------------------------------------------------------------------------


class TestFlood(GuestTest):
    def test_flood_does_not_starve_others(self):
        g1, g2 = self.guest(1), self.guest(2)
        # 1. a guest that fills its ring and never reads its replies
        g3 = self.guest(3)
        while g3.put(xsproto.pack("WRITE", b"data/f\0x")):
            pass
        # 2. a guest sending thousands of requests as fast as it can
        stop = threading.Event()
        done = {"sent": 0, "replies": 0, "errors": 0}

        def flood():
            req = xsproto.pack("WRITE", b"data/flood\0x")
            while not stop.is_set() and done["sent"] < 20000:
                while g1.put(req, kick=False):
                    done["sent"] += 1
                g1.kick()
                g1.poll_replies()
                while g1.inbox:
                    m = g1.inbox.popleft()
                    done["replies"] += 1
                    done["errors"] += m.type == T["ERROR"]
                g1.sim.wait(0.001)

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        try:
            lat = []
            for i in range(100):
                t0 = time.monotonic()
                g2.write("data/k", str(i))
                self.assertEqual(g2.read("data/k"), str(i).encode())
                lat.append(time.monotonic() - t0)
                t1 = time.monotonic()
                self.c.read("/local/domain/2/data/k")
                lat.append(time.monotonic() - t1)
        finally:
            stop.set()
            t.join(10)
        self.assertFalse(t.is_alive())
        self.assertLess(max(lat), 1.0, "worst latency %.3f s" % max(lat))
        self.assertGreater(done["replies"], 1000, done)
        self.assertEqual(done["errors"], 0)
        self.assertEqual(g3.error, 0)
        # the flooder still gets all its replies afterwards
        g1.wait_until(lambda: (g1.poll_replies() or True) and
                      done["replies"] + len(g1.inbox) == done["sent"],
                      timeout=10, what="flood replies %r %d %r err %d" % (
                          done, len(g1.inbox), g1.indexes(), g1.error))
        print("\n  flood: %d requests answered, other guest worst round trip %.1f ms"
              % (done["sent"], 1000 * max(lat)), file=sys.stderr)



if __name__ == "__main__":
    print("daemon under test: %s" % KIND, file=sys.stderr)
    unittest.main()
