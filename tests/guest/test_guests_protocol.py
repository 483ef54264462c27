#!/usr/bin/python3
"""Guests over sim rings: requests, permissions, watches and transactions.

TestBasics (four guests in their homes, privileged requests refused,
pipelined requests), TestRestrictedDomains (permissions naming missing
domains), TestWatches (own subtree, the permission filter, special
watches), TestTransactions (commit and conflicts, also between guests).
test_guests.py runs this file with the others; alone:

    python3 tests/guest/test_guests_protocol.py --daemon ours -v
"""
import os
import sys
import unittest

from guestlib import KIND, QUIET, GuestTest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import simguest as sg  # noqa: E402
from simguest import XsError  # noqa: E402
from xsproto import args, T  # noqa: E402


class TestBasics(GuestTest):
    def test_four_guests_home(self):
        gs = [self.guest(d) for d in range(1, 5)]
        for g in gs:
            D = g.domid
            self.assertEqual(g.read("domid"), str(D).encode())
            self.assertEqual(g.get_domain_path(D), "/local/domain/%d" % D)
            g.write("data/x", "v%d" % D)                  # relative = ~/data/x
            g.write("data/dir/y", "")
            g.mkdir("data/dir/z")
        for g in gs:
            D = g.domid
            self.assertEqual(g.read("data/x"), b"v%d" % D)
            self.assertEqual(g.read("/local/domain/%d/data/x" % D), b"v%d" % D)
            self.assertEqual(self.c.read("/local/domain/%d/data/x" % D), b"v%d" % D)
            self.assertEqual(g.directory("data"), ["x", "dir"])
            self.assertEqual(g.directory("data/dir"), ["y", "z"])
            # what a guest creates is its own
            self.assertEqual(g.get_perms("data/dir/y"), ["n%d" % D])
            self.assertEqual(g.get_perms("/local/domain/%d" % D), ["n0", "r%d" % D])
            self.assertEqual(sorted(g.directory("/local/domain/%d" % D)), sorted(
                list(sg.GUEST_DIRS) + ["domid", "store"]))
            g.rm("data/dir")
            self.assertEqual(g.directory("data"), ["x"])
        g1 = gs[0]
        # GET_DOMAIN_PATH never checks existence
        self.assertEqual(g1.get_domain_path(77), "/local/domain/77")
        # writes outside what the guest owns
        for p in ("/local/domain/0/x", "/tool/x", "/x", "x", "domid",
                  "/local/domain/2/data/x", "/local/domain/1/store/port"):
            self.assertXsError("EACCES", g1.write, p, "no")
        # reads of dom0-only nodes; errno hiding: a missing node under an
        # unreadable parent is EACCES, under a readable one ENOENT
        for p in ("/tool/xenstored", "/local/domain/0", "/", "/local/domain/2",
                  "/local/domain/2/data/x", "/nope/x"):
            self.assertXsError("EACCES", g1.read, p)
        self.assertXsError("ENOENT", g1.read, "data/missing")
        self.assertXsError("EACCES", g1.directory, "/local/domain")
        self.assertXsError("EACCES", g1.rm, "/local/domain/1")
        # only the privileged domain may change a node's owner (EPERM, 4.17)
        self.assertXsError("EPERM", g1.set_perms, "data/x", ["n0"])
        g1.set_perms("data/x", ["n1", "r2"])
        self.assertEqual(gs[1].read("/local/domain/1/data/x"), b"v1")
        self.assertXsError("EACCES", gs[2].read, "/local/domain/1/data/x")
        self.assertXsError("EACCES", gs[1].write, "/local/domain/1/data/x", "no")

    def test_privileged_ops_refused(self):
        g = self.guest(1)
        self.guest(2)
        for typ, pl in (("INTRODUCE", args("3", "5", "1003")),
                        ("RELEASE", args("2")),
                        ("IS_DOMAIN_INTRODUCED", args("2")),
                        ("RESUME", args("2")),
                        ("SET_TARGET", args("1", "2")),
                        ("CONTROL", args("help"))):
            self.assertXsError("EACCES", g.call, typ, pl)
        # nothing happened
        self.assertEqual(self.c.call("IS_DOMAIN_INTRODUCED", args("3")), b"F\0")
        self.assertEqual(self.c.call("IS_DOMAIN_INTRODUCED", args("2")), b"T\0")
        # unknown and reply-only types: ENOSYS, and the ring still works
        for typ in (T["WATCH_EVENT"], T["ERROR"], 30, 0xFFFF):
            self.assertXsError("ENOSYS", g.call, typ, b"x\0")
        self.assertEqual(g.read("domid"), b"1")

    def test_pipelined_requests(self):
        g = self.guest(1)
        ids = [g.send("WRITE", b"data/p%d\0%d" % (i, i)) for i in range(10)]
        ids += [g.send("READ", b"data/p%d\0" % i) for i in range(10)]
        ids.append(g.send("READ", b"data/none\0"))
        rs = g.replies(len(ids))
        self.assertEqual([m.req_id for m in rs], ids)       # in request order
        self.assertEqual([m.payload for m in rs[:10]], [b"OK\0"] * 10)
        self.assertEqual([m.payload for m in rs[10:20]], [b"%d" % i for i in range(10)])
        self.assertEqual(rs[20], (T["ERROR"], ids[-1], 0, b"ENOENT\0"))
        # req_id is echoed verbatim, whatever it is
        for rid in (0, 0xFFFFFFFF, 12345):
            g.send("READ", b"domid\0", req_id=rid)
            self.assertEqual(g.reply(), (T["READ"], rid, 0, b"1"))


class TestRestrictedDomains(GuestTest):
    DOMAINS = "0-3"

    def test_unknown_domain_in_perms(self):
        g = self.guest(2)
        self.c.write("/t", "")
        # owner must exist; other entries for missing domains are kept (and
        # ignored) -- 4.17 set_perms()/domain_adjust_node_perms()
        self.assertSockError("ENOENT", self.c.set_perms, "/t", ["n9"])
        self.c.set_perms("/t", ["n2", "r9"])
        self.assertEqual(self.c.get_perms("/t"), ["n2", "r9"])
        self.assertEqual(g.read("/t"), b"")


# ---------------------------------------------------------------------------


class TestWatches(GuestTest):
    def test_own_subtree(self):
        g = self.guest(1)
        rid = g.send("WATCH", args("data", "tok"))
        # OK first, then the initial event (relative, as registered)
        self.assertEqual(g.recv(), (T["WATCH"], rid, 0, b"OK\0"))
        self.assertEqual(g.recv(), (T["WATCH_EVENT"], 0, 0, args("data", "tok")))
        self.c.write("/local/domain/1/data/a", "1")
        self.assertEqual(g.wait_event(), ("data/a", "tok"))
        # its own write: the event is queued before the reply (cxenstored)
        rid = g.send("WRITE", b"data/b\0x")
        self.assertEqual(g.recv(), (T["WATCH_EVENT"], 0, 0, args("data/b", "tok")))
        self.assertEqual(g.recv(), (T["WRITE"], rid, 0, b"OK\0"))
        # writes elsewhere in its home do not match
        self.c.write("/local/domain/1/device/x", "1")
        self.c.write("/local/domain/1/data", "top")
        self.c.rm("/local/domain/1/data/a")
        self.assertEqual(g.events_n(2), [("data", "tok"), ("data/a", "tok")])
        self.assertXsError("EEXIST", g.watch, "data", "tok")
        g.watch("/local/domain/1/data", "abs")
        self.assertEqual(g.events_n(1), [("/local/domain/1/data", "abs")])
        g.write("data/c", "")
        self.assertEqual(sorted(g.events_n(2)),
                         [("/local/domain/1/data/c", "abs"), ("data/c", "tok")])
        g.unwatch("data", "tok")
        self.assertXsError("ENOENT", g.unwatch, "data", "tok")
        self.c.write("/local/domain/1/data/d", "")
        self.assertEqual(g.events_n(1), [("/local/domain/1/data/d", "abs")])
        g.reset_watches()
        self.c.write("/local/domain/1/data/e", "")
        self.assertEqual(g.pending_events(QUIET), [])

    def test_permission_filter(self):
        """XSA-115: events only for nodes the watcher may read (node or parent)."""
        g = self.guest(1)
        self.guest(2)
        g.watch("/", "root")
        self.assertEqual(g.events_n(1), [("/", "root")])

        def sentinel():
            self.c.write("/local/domain/1/data/sentinel", "")
            self.assertEqual(g.wait_event(), ("/local/domain/1/data/sentinel", "root"))
            self.assertEqual(g.pending_events(), [])

        self.c.write("/secret", "s")                       # n0 like /
        self.c.write("/local/domain/2/data/z", "z")        # n2
        self.c.write("/local/domain/0/x", "")              # n0
        self.c.rm("/secret")
        sentinel()
        # readable by the guest: events with the absolute path
        self.c.write("/local/domain/1/domid", "1")         # n0 r1
        self.assertEqual(g.wait_event(), ("/local/domain/1/domid", "root"))
        # SET_PERMS giving access fires (new perms readable)...
        self.c.write("/pub", "")
        self.c.set_perms("/pub", ["n0", "r1"])
        self.assertEqual(g.wait_event(), ("/pub", "root"))
        self.c.write("/pub/child", "")                     # inherits n0 r1
        self.assertEqual(g.wait_event(), ("/pub/child", "root"))
        # ... and so does SET_PERMS taking it away (old perms readable)
        self.c.set_perms("/pub/child", ["n0"])
        self.assertEqual(g.wait_event(), ("/pub/child", "root"))
        # an unreadable node whose parent is readable: the parent suffices
        # (4.17 watch.c: "if the node is not readable, check the parent")
        self.c.write("/pub/child", "2")
        self.assertEqual(g.wait_event(), ("/pub/child", "root"))
        # unreadable node under an unreadable parent: nothing
        self.c.write("/pub/child/grand", "")               # inherits n0
        self.c.set_perms("/pub", ["n0"])                   # old perms r1: fires
        self.assertEqual(g.wait_event(), ("/pub", "root"))
        self.c.write("/pub/child/grand", "x")
        self.c.rm("/pub/child")
        sentinel()

    def test_special_watches(self):
        self.dom0_watch("@introduceDomain", "intro")
        self.dom0_watch("@releaseDomain", "rel")
        g = self.guest(1)
        self.assertEqual(self.dom0_events(1), [("@introduceDomain", "intro")])
        # order on the wire: the event before the INTRODUCE reply ...
        sg.Guest(self.sim, 2).close()
        self.c.send("INTRODUCE", args("2", "1", "1002"))
        self.assertEqual([m.type for m in self.sock_msgs(2)],
                         [T["WATCH_EVENT"], T["INTRODUCE"]])
        # ... re-INTRODUCE of an introduced domain fires nothing ...
        self.c.send("INTRODUCE", args("2", "1", "1002"))
        self.assertEqual(self.sock_msgs(1), [(T["INTRODUCE"], 0, 0, b"OK\0")])
        # ... RELEASE fires @releaseDomain before its reply, like any
        # request (the domain's destructor fires it).  4.17 quirk, not
        # asserted: if the released domain's connection comes right after
        # the releasing one in the daemon's connection list, the main loop
        # holds a reference on it (the XSA-425 fix), the destructor runs
        # after the request, and the reply comes first.  Here dom1 sits
        # between the socket and dom2, so the normal order shows.
        self.c.send("RELEASE", args("2"))
        self.assertEqual(self.sock_msgs(2),
                         [(T["WATCH_EVENT"], 0, 0, args("@releaseDomain", "rel")),
                          (T["RELEASE"], 0, 0, b"OK\0")])
        # a guest gets the initial events but nothing later: the special
        # nodes are n0 in 4.17 (XSA-115)
        g.watch("@introduceDomain", "gi")
        g.watch("@releaseDomain", "gr")
        self.assertEqual(g.events_n(2), [("@introduceDomain", "gi"),
                                                   ("@releaseDomain", "gr")])
        self.guest(3)
        self.c.call("RELEASE", args("3"))
        self.assertEqual(self.dom0_events(2), [("@introduceDomain", "intro"),
                                              ("@releaseDomain", "rel")])
        self.assertEqual(g.pending_events(QUIET), [])


# ---------------------------------------------------------------------------


class TestTransactions(GuestTest):
    def test_commit_and_conflict(self):
        g = self.guest(1)
        g.write("data/x", "0")
        tx = g.start()
        self.assertEqual(tx, 1)
        self.assertEqual(g.read("data/x", tx), b"0")
        g.write("data/x", "1", tx)
        g.write("data/new/y", "n", tx)
        self.assertEqual(g.read("data/x", tx), b"1")
        self.assertEqual(g.read("data/x"), b"0")           # isolation
        self.assertEqual(self.c.read("/local/domain/1/data/x"), b"0")
        self.assertXsError("EBUSY", g.call, "TRANSACTION_START", b"\0", tx)
        g.end(tx)
        self.assertEqual(self.c.read("/local/domain/1/data/new/y"), b"n")
        self.assertXsError("ENOENT", g.read, "data/x", tx)   # gone after commit
        # conflict with a dom0 write -> EAGAIN, nothing applied
        tx = g.start()
        self.assertEqual(tx, 2)
        g.read("data/x", tx)
        self.c.write("/local/domain/1/data/x", "dom0")
        g.write("data/x", "guest", tx)
        g.write("data/other", "o", tx)
        self.assertXsError("EAGAIN", g.end, tx)
        self.assertEqual(g.read("data/x"), b"dom0")
        self.assertXsError("ENOENT", g.read, "data/other")
        # retry loop as a guest kernel would
        for attempt in range(5):
            tx = g.start()
            v = int(g.read("data/n", tx) or b"0") if attempt else 0
            g.write("data/n", str(v + 1), tx)
            try:
                g.end(tx)
                break
            except XsError as e:
                self.assertEqual(e.name, "EAGAIN")
        self.assertEqual(g.read("data/n"), b"1")
        # abort
        tx = g.start()
        g.write("data/aborted", "", tx)
        g.end(tx, commit=False)
        self.assertXsError("ENOENT", g.read, "data/aborted")

    def test_two_guests_conflict(self):
        g1, g2 = self.guest(1), self.guest(2)
        self.c.write("/shared", "")
        self.c.set_perms("/shared", ["n0", "b1", "b2"])
        t1, t2 = g1.start(), g2.start()
        self.assertEqual((t1, t2), (1, 1))        # ids are per connection
        g1.write("/shared/a", "1", t1)
        g2.write("/shared/b", "2", t2)            # both add a child of /shared
        g1.end(t1)
        self.assertXsError("EAGAIN", g2.end, t2)
        self.assertEqual(self.c.directory("/shared"), ["a"])



if __name__ == "__main__":
    print("daemon under test: %s" % KIND, file=sys.stderr)
    unittest.main()
