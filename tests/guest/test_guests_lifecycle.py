#!/usr/bin/python3
"""Guests over sim rings: a domain's life as the daemon sees it.

TestLifecycle (RELEASE, death), TestReconnect (the page after
introduction, reconnection and re-introduction), TestDom0Ring (dom0's
kernel on ring-0).
test_guests.py runs this file with the others; alone:

    python3 tests/guest/test_guests_lifecycle.py --daemon ours -v
"""
import os
import sys
import time
import unittest

from guestlib import FEATURES, KIND, QUIET, GuestTest, quota

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import simguest as sg  # noqa: E402
from xsproto import args, T  # noqa: E402


class TestLifecycle(GuestTest):
    def test_release(self):
        self.dom0_watch("@releaseDomain", "rel")
        g1, g2 = self.guest(1), self.guest(2)
        g2.watch("data", "t")
        g2.write("data/mine", "m")
        self.assertEqual(g2.events_n(2), [("data", "t"), ("data/mine", "t")])
        self.c.send("RELEASE", args("2"))      # (order: see test_special_watches)
        self.assertEqual(self.sock_msgs(2),
                         [(T["WATCH_EVENT"], 0, 0, args("@releaseDomain", "rel")),
                          (T["RELEASE"], 0, 0, b"OK\0")])
        self.assertEqual(self.c.call("IS_DOMAIN_INTRODUCED", args("2")), b"F\0")
        self.assertSockError("ENOENT", self.c.call, "RELEASE", args("2"))
        # the nodes it owned are gone, dom0's stay
        self.assertEqual(self.c.directory("/local/domain/2"), ["domid", "store"])
        self.assertSockError("ENOENT", self.c.read, "/local/domain/2/data/mine")
        # its ring is dead: no events, no answers
        rsp = g2.rsp_prod
        self.c.write("/local/domain/2/data/later", "")
        g2.send("READ", b"domid\0")
        self.assertStalled(g2, "released guest is not served")
        self.assertEqual(g2.rsp_prod, rsp)
        self.assertEqual(self.dom0_events(), [])
        self.assertEqual(g1.read("domid"), b"1")
        # introduced again (libxl recreates its home): works, fresh quota
        g2b = self.guest(2)
        self.assertEqual(g2b.read("domid"), b"2")
        self.assertEqual(quota(self.c, 2, "nodes"), len(sg.GUEST_DIRS))
        self.assertEqual(quota(self.c, 2, "watches"), 0)

    def test_death(self):
        """A domain reported dying (VIRQ_DOM_EXC) is released: @releaseDomain,
        its nodes deleted (XSA-419), its ACL entries no longer honoured for a
        new domain with the same domid (XSA-322)."""
        self.dom0_watch("@releaseDomain", "rel")
        g1, g2 = self.guest(1), self.guest(2)
        g1.watch("data", "t")
        g1.write("data/mine", "m")
        self.c.write("/local/domain/1/data/bydom0", "")    # owned by dom1 (inherited)
        self.c.write("/local/domain/1/dom0node", "")       # n0 r1
        self.c.write("/acl", "")
        self.c.set_perms("/acl", ["n0", "r1"])
        self.c.write("/shared", "")
        self.c.set_perms("/shared", ["n0", "b1"])
        g1.write("/shared/byguest", "")                    # owned by dom1
        self.assertEqual(g1.read("/acl"), b"")
        self.assertEqual(self.dom0_events(wait=0), [])
        self.assertEqual(self.c.call("IS_DOMAIN_INTRODUCED", args("1")), b"T\0")
        self.sim.kill_domain(1)
        self.assertEqual(self.dom0_events(1), [("@releaseDomain", "rel")])
        self.assertEqual(self.c.call("IS_DOMAIN_INTRODUCED", args("1")), b"F\0")
        self.assertEqual(self.c.directory("/local/domain/1"), ["domid", "store", "dom0node"])
        self.assertEqual(self.c.directory("/shared"), [])
        self.assertSockError("ENOENT", self.c.read, "/local/domain/1/data/bydom0")
        # the ACL entry stays visible but is ignored for a new dom1
        self.assertEqual(self.c.get_perms("/acl"), ["n0", "r1"])
        # one event per death: another VIRQ fires nothing
        self.sim.virq()
        self.assertEqual(self.dom0_events(), [])
        self.assertEqual(g2.read("domid"), b"2")
        # domid 1 reused
        self.sim.set_dying([])
        g1b = self.guest(1)
        self.assertEqual(g1b.read("domid"), b"1")
        self.assertXsError("EACCES", g1b.read, "/acl")
        self.assertEqual(quota(self.c, 1, "nodes"), len(sg.GUEST_DIRS))


# ---------------------------------------------------------------------------


class TestReconnect(GuestTest):
    def test_page_after_introduce(self):
        g = sg.Guest(self.sim, 1)
        self.guests.append(g)
        # garbage left in the page before INTRODUCE is reset
        for f, v in (("req_cons", 5), ("req_prod", 9), ("rsp_cons", 700),
                     ("rsp_prod", 700)):
            g.set(f, v)
        sg.introduce(self.c, self.sim, 1, guest=g)
        self.assertEqual(g.indexes(), (0, 0, 0, 0))
        # cxenstored 4.17 advertises no feature at all (4.21: ERROR = 2;
        # oxenstored: RECONNECTION = 1)
        self.assertEqual(g.server_features, FEATURES)
        self.assertEqual(g.connection, sg.XENSTORE_CONNECTED)
        self.assertEqual(g.error, 0)
        self.assertEqual(self.sim.bindings()[-1], (1, 1001, g.port()))

    def test_reconnect_and_reintroduce(self):
        g = self.guest(1)
        g.watch("data", "t")
        self.assertEqual(g.events_n(1, quiet=0), [("data", "t")])
        tx = g.start()
        if KIND == "ours":
            # we honour XENSTORE_SERVER_FEATURE_RECONNECTION: the ring
            # starts over (indexes 0, watches and transactions dropped),
            # then connection = 0 and a notification
            g.set("connection", sg.XENSTORE_RECONNECT)
            g.kick()
            g.wait_until(lambda: g.connection == sg.XENSTORE_CONNECTED, 5.0,
                         "the reconnection")
            self.assertEqual(g.indexes(), (0, 0, 0, 0))
            g.forget()
            self.assertEqual(g.read("domid"), b"1")
            self.c.write("/local/domain/1/data/a", "")
            self.assertEqual(g.pending_events(QUIET), [])
            self.assertXsError("ENOENT", g.end, tx)
            g.watch("data", "t")
            self.assertEqual(g.events_n(1, quiet=0), [("data", "t")])
            tx = g.start()
        else:
            # a guest-initiated reconnect is not implemented by cxenstored
            # 4.17: `connection` stays 1 and the ring goes on as before
            g.set("connection", sg.XENSTORE_RECONNECT)
            g.kick()
            time.sleep(QUIET)
            self.assertEqual(g.connection, sg.XENSTORE_RECONNECT)
            self.assertNotEqual(g.indexes(), (0, 0, 0, 0))
            self.assertEqual(g.read("domid"), b"1")
            self.c.write("/local/domain/1/data/a", "")
            self.assertEqual(g.wait_event(), ("data/a", "t"))
        # INTRODUCE again (as after kexec/soft reset), with a new port:
        # rebinds (a new line in `ports`), resets the indexes, connection = 0,
        # notifies the new port, forgets watches and transactions
        old = g.port()
        self.sim.drain()
        before = self.sim.notified.copy()
        self.c.call("INTRODUCE", args("1", "1", "2001"))
        new = g.port()
        self.assertNotEqual(new, old)
        self.assertEqual(self.sim.bindings()[-1], (1, 2001, new))
        self.assertEqual(g.indexes(), (0, 0, 0, 0))
        self.assertEqual(g.connection, sg.XENSTORE_CONNECTED)
        self.sim.wait_until(lambda: self.sim.notified[new] > before[new], 2.0,
                            "a notification on the new port")
        g.forget()
        self.c.write("/local/domain/1/data/b", "")
        self.assertEqual(g.pending_events(QUIET), [])
        self.assertEqual(quota(self.c, 1, "watches"), 0)
        self.assertXsError("ENOENT", g.end, tx)
        self.assertEqual(g.read("domid"), b"1")
        # the same port again: another binding all the same
        self.c.call("INTRODUCE", args("1", "1", "2001"))
        self.assertEqual(len([b for b in self.sim.bindings() if b[0] == 1]), 3)
        self.assertEqual(g.read("domid"), b"1")


# ---------------------------------------------------------------------------


class TestDom0Ring(GuestTest):
    def test_dom0_kernel_ring(self):
        k = sg.dom0_kernel(self.sim)
        self.guests.append(k)
        self.assertEqual(self.sim.bindings()[0], (0, sg.DOM0_REMOTE_PORT, k.port()))
        # ours binds the port first and serves the ring once dom0's
        # introduction is committed (an instant later): wait, bounded
        k.wait_until(lambda: k.server_features == FEATURES, 5.0,
                     "server_features on dom0's ring")
        k.write("/tool/x", "1")
        self.assertEqual(self.c.read("/tool/x"), b"1")
        self.assertEqual(k.read("/tool/xenstored"), self.c.read("/tool/xenstored"))
        k.write("rel", "r")                                  # ~ = /local/domain/0
        self.assertEqual(self.c.read("/local/domain/0/rel"), b"r")
        self.assertEqual(k.get_domain_path(0), "/local/domain/0")
        self.assertEqual(k.is_domain_introduced(0), "T")
        self.assertEqual(k.call("CONTROL", args("print", "hello")), b"OK\0")
        # large values are not limited for the privileged domain, and go
        # through the 1024-byte rings in pieces
        k.write("/tool/big", b"b" * 3000)
        self.assertEqual(k.read("/tool/big"), b"b" * 3000)
        k.watch("/tool", "kt")
        self.assertEqual(k.events_n(1), [("/tool", "kt")])
        self.c.write("/tool/y", "")
        self.assertEqual(k.wait_event(), ("/tool/y", "kt"))
        # the kernel ring may do the toolstack's job
        g = sg.introduce(k, self.sim, 4)
        self.guests.append(g)
        self.assertEqual(g.read("domid"), b"4")
        self.assertEqual(self.c.call("IS_DOMAIN_INTRODUCED", args("4")), b"T\0")
        k.watch("@releaseDomain", "rel")
        self.assertEqual(k.events_n(1, quiet=0), [("@releaseDomain", "rel")])
        k.call("RELEASE", args("4"))
        self.assertEqual(k.wait_event(), ("@releaseDomain", "rel"))



if __name__ == "__main__":
    print("daemon under test: %s" % KIND, file=sys.stderr)
    unittest.main()
