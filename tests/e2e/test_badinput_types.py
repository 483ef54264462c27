#!/usr/bin/python3
"""e2e_badinput: request types, transaction ids and stale errnos.

TestTypesAndTransactions (unknown and reply-only types, bogus tx ids,
XSA-484), TestStaleErrno (malformed requests right after a successful one,
which makes the reference daemon abort). test_badinput.py runs this file
with the others; alone:

    XSR_DAEMON=c /usr/bin/python3 tests/e2e/test_badinput_types.py [-v]
"""
import os
import sys
import unittest

from badinputlib import (BASE, BOGUS_TX, CANARY, CANARY_VAL, EINVAL,
                         BadInputBase, Err, MsgCase, Ok, _B, _C, _node_absent,
                         _req_ids, add_cases, connect, no_events,
                         prime_errno0_rm, prime_errno0_watch, spec)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from xsproto import PAYLOAD_MAX, T, args  # noqa: E402


def _bogus_write_absent(tc, victim, tx, msg):
    _node_absent(BASE + "/bogustx")(tc, victim, tx, msg)


def _unwatch_bogus(tc, victim, tx, msg):
    victim.pending(0.2)
    tc.assertEqual(victim.unwatch(BASE, "bogus-tx"), b"OK\0")


_TYPE_CASES = [
    MsgCase("type.27", 27, args(CANARY), Err("ENOSYS")),
    MsgCase("type.0x7fffffff", 0x7fffffff, args(CANARY), Err("ENOSYS")),
    MsgCase("type.0xffff_XS_INVALID", 0xffff, args(CANARY), Err("ENOSYS")),
    MsgCase("type.0xffffffff", 0xffffffff, args(CANARY), Err("ENOSYS")),
    MsgCase("type.0x80000000", 0x80000000, b"", Err("ENOSYS")),
    MsgCase("type.WATCH_EVENT", "WATCH_EVENT", args(CANARY, "tok"),
            Err("ENOSYS")),
    MsgCase("type.ERROR", "ERROR", b"EINVAL\0", Err("ENOSYS")),
    MsgCase("type.RESTRICT", "RESTRICT", b"5\0", Err("ENOSYS")),
    MsgCase("type.unknown_with_bogus_tx", 27, args(CANARY), Err("ENOSYS"),
            tx=BOGUS_TX, note="type is checked before tx_id"),
    MsgCase("type.unknown_max_payload", 1000, b"\xaa" * PAYLOAD_MAX,
            Err("ENOSYS")),
]
_TX_CASES = [
    MsgCase("tx.bogus.READ", "READ", args(CANARY), Err("ENOENT"),
            tx=BOGUS_TX),
    MsgCase("tx.bogus.WRITE", "WRITE", _B + b"/bogustx\0v", Err("ENOENT"),
            tx=BOGUS_TX, after=_bogus_write_absent),
    MsgCase("tx.bogus.malformed_READ", "READ", _C, Err("ENOENT"),
            tx=BOGUS_TX, note="tx_id is checked before the payload"),
    MsgCase("tx.bogus.TRANSACTION_START", "TRANSACTION_START", b"\0",
            Err("ENOENT"), tx=BOGUS_TX),
    MsgCase("tx.bogus.TRANSACTION_END", "TRANSACTION_END", b"T\0",
            Err("ENOENT"), tx=BOGUS_TX),
    MsgCase("tx.bogus.RESET_WATCHES", "RESET_WATCHES", b"", Err("ENOENT"),
            tx=BOGUS_TX),
    MsgCase("tx.bogus.max_id", "READ", args(CANARY), Err("ENOENT"),
            tx=0xffffffff),
    MsgCase("tx.bogus.WATCH_ignores_tx", "WATCH", args(BASE, "bogus-tx"),
            Ok(), tx=BOGUS_TX, after=_unwatch_bogus,
            note="WATCH/UNWATCH ignore tx_id (XS_FLAG_NOTID)"),
    MsgCase("tx.end_without_tx.commit", "TRANSACTION_END", b"T\0",
            Err("ENOENT")),
    MsgCase("tx.end_without_tx.abort", "TRANSACTION_END", b"F\0",
            Err("ENOENT")),
]


class TestTypesAndTransactions(BadInputBase):
    """Unknown/reply-only types, bogus tx ids, XSA-484."""

    @spec("tx.other_connections_id",
          "READ with a tx_id that belongs to another connection",
          "ERROR ENOENT; the owner's transaction is unaffected (commit OK)")
    def test_other_connections_tx(self):
        with connect(self.d.socket) as owner, \
                connect(self.d.socket) as v:
            tx = owner.start()
            rid = next(_req_ids)
            v.send("READ", args(CANARY), req_id=rid, tx_id=tx)
            self.assert_outcome(v, Err("ENOENT"), T["READ"], rid, tx)
            self.assertEqual(owner.end(tx), b"OK\0")
        self.check_survivors()

    @spec("tx.after_end", "READ with the id of a transaction already ended",
          "ERROR ENOENT")
    def test_tx_after_end(self):
        with connect(self.d.socket) as v:
            tx = v.start()
            v.end(tx, commit=False)
            rid = next(_req_ids)
            v.send("READ", args(CANARY), req_id=rid, tx_id=tx)
            self.assert_outcome(v, Err("ENOENT"), T["READ"], rid, tx)
        self.check_survivors()

    @spec("tx.nested_start", "TRANSACTION_START with a live tx_id",
          "ERROR EBUSY; the outer transaction still works")
    def test_nested_start(self):
        with connect(self.d.socket) as v:
            tx = v.start()
            rid = next(_req_ids)
            v.send("TRANSACTION_START", b"\0", req_id=rid, tx_id=tx)
            self.assert_outcome(v, Err("EBUSY"), T["TRANSACTION_START"],
                                rid, tx)
            self.assertEqual(v.read(CANARY, tx), CANARY_VAL)
            self.assertEqual(v.end(tx), b"OK\0")
        self.check_survivors()

    @spec("tx.xsa484_reset_watches_in_tx",
          "WATCH; TRANSACTION_START; RESET_WATCHES with that tx_id; use the "
          "tx id", "RESET_WATCHES -> OK (tx_id echoed); then READ/"
          "TRANSACTION_END with the tx id -> ENOENT; the watch is gone")
    def test_xsa484(self):
        with connect(self.d.socket) as v:
            v.watch(BASE + "/x484", "t484")
            v.pending(0.2)
            tx = v.start()
            self.assertEqual(v.read(CANARY, tx), CANARY_VAL)
            rid = next(_req_ids)
            v.send("RESET_WATCHES", b"", req_id=rid, tx_id=tx)
            self.assert_outcome(v, Ok(), T["RESET_WATCHES"], rid, tx)
            for type_, payload in (("READ", args(CANARY)),
                                   ("WRITE", _B + b"/x484\0v"),
                                   ("TRANSACTION_END", b"T\0")):
                rid = next(_req_ids)
                v.send(type_, payload, req_id=rid, tx_id=tx)
                self.assert_outcome(v, Err("ENOENT"), T[type_], rid, tx)
            v.write(BASE + "/x484", "after")
            self.assertEqual(no_events(v, 0.5), [], "watch survived "
                             "RESET_WATCHES")
            # the connection keeps working, new transactions too
            tx2 = v.start()
            self.assertEqual(v.end(tx2), b"OK\0")
        self.check_survivors()


add_cases(TestTypesAndTransactions, _TYPE_CASES + _TX_CASES)


# ============================================= stale errno (ref crashes)
class TestStaleErrno(BadInputBase):
    """Malformed requests right after a *successful* request. cxenstored
    4.17 answers these with the stale errno, which is 0 here: it aborts."""


add_cases(TestStaleErrno, [
    MsgCase("stale_errno0.READ.missing_nul", "READ", _C, EINVAL,
            prime=prime_errno0_watch, note="after a successful WATCH"),
    MsgCase("stale_errno0.READ.zero_len", "READ", b"", EINVAL,
            prime=prime_errno0_watch, note="after a successful WATCH"),
    MsgCase("stale_errno0.READ.two_args", "READ", _C + b"\0x\0", EINVAL,
            prime=prime_errno0_watch, note="after a successful WATCH"),
    MsgCase("stale_errno0.DIRECTORY.missing_nul", "DIRECTORY", _B, EINVAL,
            prime=prime_errno0_watch, note="after a successful WATCH"),
    MsgCase("stale_errno0.GET_PERMS.missing_nul", "GET_PERMS", _B, EINVAL,
            prime=prime_errno0_watch, note="after a successful WATCH"),
    MsgCase("stale_errno0.MKDIR.missing_nul", "MKDIR", _B + b"/mk0",
            EINVAL, prime=prime_errno0_watch,
            after=_node_absent(BASE + "/mk0"),
            note="after a successful WATCH"),
    MsgCase("stale_errno0.RM.missing_nul", "RM", _C, EINVAL,
            prime=prime_errno0_watch, note="after a successful WATCH"),
    MsgCase("stale_errno0.after_rm.READ.missing_nul", "READ", _C, EINVAL,
            prime=prime_errno0_rm, note="after a successful RM"),
    MsgCase("stale_errno0.after_rm.MKDIR.extra_nul", "MKDIR",
            _B + b"/mk1\0\0", EINVAL, prime=prime_errno0_rm,
            after=_node_absent(BASE + "/mk1"), note="after a successful RM"),
    MsgCase("stale_errno0.SET_PERMS.special_unknown", "SET_PERMS",
            b"@foo\0n0\0", EINVAL, prime=prime_errno0_watch,
            note="after a successful WATCH"),
])



if __name__ == "__main__":
    unittest.main()
