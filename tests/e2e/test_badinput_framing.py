#!/usr/bin/python3
"""e2e_badinput: bad framing and zero-length requests.

TestFraming (header and length abuse, truncation, stalls), TestZeroLength
(len == 0 for every request type). test_badinput.py runs this file with
the others; alone:

    XSR_DAEMON=c /usr/bin/python3 tests/e2e/test_badinput_framing.py [-v]
"""
import os
import socket
import sys
import time
import unittest

from badinputlib import (BASE, CANARY, CANARY_VAL, AnyOf, BadInputBase, Close,
                         Err, MsgCase, Ok, Reply, _req_ids, add_cases, connect,
                         expect_ok, spec)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from xsproto import HDR, PAYLOAD_MAX, T, TYPES, args, pack  # noqa: E402


class TestFraming(BadInputBase):
    """Header/length abuse, truncation, stalls."""

    def send_expect_close(self, data, shutdown=False):
        v = connect(self.d.socket)
        try:
            try:
                v.send_raw(data)
                if shutdown:
                    v.sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assert_outcome(v, Close(), 0, 0, 0)
        finally:
            v.close()
        self.check_survivors()

    @spec("frame.len_4097.header_only",
          "READ header with len=4097, no payload sent", str(Close()))
    def test_len_4097_header_only(self):
        self.send_expect_close(pack("READ", b"", length=4097))

    @spec("frame.len_4097.with_payload",
          "READ header with len=4097 + 4097 payload bytes", str(Close()))
    def test_len_4097_with_payload(self):
        self.send_expect_close(pack("READ", b"/" + b"a" * 4095 + b"\0"))

    @spec("frame.len_0xffffffff", "READ header with len=0xffffffff",
          str(Close()))
    def test_len_ffffffff(self):
        self.send_expect_close(pack("READ", b"", length=0xffffffff))

    @spec("frame.len_0x80000000", "WRITE header with len=0x80000000 "
          "(negative as int32) + 100 bytes", str(Close()))
    def test_len_80000000(self):
        self.send_expect_close(pack("WRITE", b"", length=0x80000000) +
                               b"/a\0" + b"x" * 97)

    @spec("frame.len_0x80000000.unknown_type",
          "type 0x7fffffff header with len=0x80000000", str(Close()))
    def test_len_80000000_unknown_type(self):
        self.send_expect_close(pack(0x7fffffff, b"", length=0x80000000))

    @spec("frame.len_4096_accepted",
          "WRITE whose payload is exactly 4096 bytes (boundary, valid)",
          "reply OK; READ gives the value back")
    def test_len_4096_accepted(self):
        node = (BASE + "/big").encode()
        val = b"v" * (PAYLOAD_MAX - len(node) - 1)
        v = connect(self.d.socket)
        with v:
            rid = next(_req_ids)
            payload = node + b"\0" + val
            self.assertEqual(len(payload), PAYLOAD_MAX)
            v.send_raw(pack("WRITE", payload, rid))
            self.assert_outcome(v, Ok(), T["WRITE"], rid, 0)
            self.assertEqual(v.read(node.decode()), val)
        self.check_survivors()

    @spec("frame.truncated_header.close",
          "8 of 16 header bytes, then close()", "nothing to see; survivors")
    def test_truncated_header_close(self):
        v = connect(self.d.socket)
        v.send_raw(pack("READ", args(CANARY))[:8])
        v.close()
        self.check_survivors()

    @spec("frame.truncated_header.eof",
          "8 of 16 header bytes, then shutdown(SHUT_WR)", str(Close()))
    def test_truncated_header_eof(self):
        self.send_expect_close(pack("READ", args(CANARY))[:8], shutdown=True)

    @spec("frame.no_bytes.eof", "connect, shutdown(SHUT_WR) at once",
          str(Close()))
    def test_no_bytes_eof(self):
        self.send_expect_close(b"", shutdown=True)

    @spec("frame.short_payload.close",
          "header promising 100 bytes, 20 sent, then close()",
          "nothing to see; survivors")
    def test_short_payload_close(self):
        v = connect(self.d.socket)
        v.send_raw(pack("WRITE", b"", length=100) + BASE.encode() +
                   b"/short\0" + b"x" * 3)
        v.close()
        self.check_survivors()
        with connect(self.d.socket) as c:
            self.assertRaises(FileNotFoundError, c.read, BASE + "/short")

    @spec("frame.short_payload.eof",
          "header promising 100 bytes, 20 sent, then shutdown(SHUT_WR)",
          str(Close()) + "; the partial WRITE is not applied")
    def test_short_payload_eof(self):
        self.send_expect_close(pack("WRITE", b"", length=100) +
                               BASE.encode() + b"/short2\0" + b"x" * 2,
                               shutdown=True)
        with connect(self.d.socket) as c:
            self.assertRaises(FileNotFoundError, c.read, BASE + "/short2")

    @spec("frame.stall_in_payload",
          "WRITE header + 5 of 21 payload bytes, stall ~1.5 s (others are "
          "served meanwhile), then the rest",
          "no reply while stalled; then reply OK and the value is written")
    def test_stall_in_payload(self):
        node = BASE + "/stall"
        payload = node.encode() + b"\0hello"
        rid = next(_req_ids)
        frame = pack("WRITE", payload, rid)
        v = connect(self.d.socket)
        with v:
            v.send_raw(frame[:HDR.size + 5])
            for _ in range(3):
                self.check_survivors()
                time.sleep(0.5)
            self.assertEqual(v.pending(0.0), [], "reply to an incomplete "
                             "request")
            v.send_raw(frame[HDR.size + 5:])
            self.assert_outcome(v, Ok(), T["WRITE"], rid, 0)
            self.assertEqual(v.read(node), b"hello")
        self.check_survivors()

    @spec("frame.stall_after_full_header",
          "a complete READ header (len 16) and no payload byte, stall ~1.5 s, "
          "then the payload",
          "others served meanwhile; no reply while stalled; then the right "
          "READ reply")
    def test_stall_after_full_header(self):
        rid = next(_req_ids)
        frame = pack("READ", args(CANARY), rid)
        v = connect(self.d.socket)
        with v:
            v.send_raw(frame[:HDR.size])
            for _ in range(3):
                self.check_survivors()
                time.sleep(0.5)
            self.assertEqual(v.pending(0.0), [])
            v.send_raw(frame[HDR.size:])
            self.assert_outcome(v, Reply(CANARY_VAL), T["READ"], rid, 0)
        self.check_survivors()

    @spec("frame.header_only.close",
          "a complete WRITE header (len 40) and no payload, then close()",
          "nothing to see; survivors; nothing written")
    def test_header_only_close(self):
        v = connect(self.d.socket)
        v.send_raw(pack("WRITE", b"", length=40))
        v.close()
        self.check_survivors()

    @spec("frame.stall_in_header",
          "7 of 16 header bytes of a READ, stall ~1.5 s, then the rest",
          "no reply while stalled; then the right READ reply")
    def test_stall_in_header(self):
        rid = next(_req_ids)
        frame = pack("READ", args(CANARY), rid)
        v = connect(self.d.socket)
        with v:
            v.send_raw(frame[:7])
            for _ in range(3):
                self.check_survivors()
                time.sleep(0.5)
            self.assertEqual(v.pending(0.0), [])
            v.send_raw(frame[7:])
            self.assert_outcome(v, Reply(CANARY_VAL), T["READ"], rid, 0)
        self.check_survivors()

    @spec("frame.stall_many",
          "20 connections at once, each stalled mid-header (3..12 of 16 "
          "bytes) or mid-payload (1..10 bytes)",
          "others served; each completes correctly when resumed")
    def test_stall_many(self):
        vs = []
        try:
            for i in range(20):
                v = connect(self.d.socket)
                vs.append(v)
                rid = next(_req_ids)
                frame = pack("READ", args(CANARY), rid)
                cut = 3 + i if i < 10 else HDR.size + 1 + i % 10
                v.send_raw(frame[:cut])
                v.rest = frame[cut:]
                v.rid = rid
            self.check_survivors()
            for v in vs:
                v.send_raw(v.rest)
            for v in vs:
                self.assert_outcome(v, Reply(CANARY_VAL), T["READ"], v.rid, 0)
        finally:
            for v in vs:
                v.close()
        self.check_survivors()


# ========================================================== zero length
_ZERO = {
    "CONTROL": Err("EINVAL"), "DIRECTORY": Err("EINVAL"),
    "READ": Err("EINVAL"), "GET_PERMS": Err("EINVAL"),
    "WATCH": Err("EINVAL"), "UNWATCH": Err("EINVAL"),
    "TRANSACTION_START": Reply(pattern=rb"[1-9][0-9]*\0"),
    "TRANSACTION_END": Err("EINVAL"), "INTRODUCE": Err("EINVAL"),
    "RELEASE": Err("EINVAL"), "GET_DOMAIN_PATH": Err("EINVAL"),
    "WRITE": Err("EINVAL"), "MKDIR": Err("EINVAL"), "RM": Err("EINVAL"),
    "SET_PERMS": Err("EINVAL"), "WATCH_EVENT": Err("ENOSYS"),
    "ERROR": Err("ENOSYS"), "IS_DOMAIN_INTRODUCED": Err("EINVAL"),
    "RESUME": Err("EINVAL"), "SET_TARGET": Err("EINVAL"),
    "RESTRICT": Err("ENOSYS"), "RESET_WATCHES": Ok(),
    "DIRECTORY_PART": Err("EINVAL"),
    # not in 4.17 (ENOSYS); with Xen 4.22 semantics if implemented
    "GET_FEATURE": AnyOf(Err("ENOSYS"), Reply(pattern=rb"[0-9]+\0")),
    "SET_FEATURE": AnyOf(Err("ENOSYS"), Err("EINVAL")),
    "GET_QUOTA": AnyOf(Err("ENOSYS"), Reply(pattern=rb"[a-z -]*\0")),
    "SET_QUOTA": AnyOf(Err("ENOSYS"), Err("EINVAL")),
}
assert sorted(_ZERO) == sorted(TYPES)


def _abort_started_tx(tc, victim, tx, msg):
    new_tx = int(msg.payload.rstrip(b"\0"))
    tc.assertEqual(expect_ok(victim, "TRANSACTION_END", b"F\0", new_tx),
                   b"OK\0")


class TestZeroLength(BadInputBase):
    """len == 0 for every request type 0..26."""


add_cases(TestZeroLength, [
    MsgCase("zero_len.%s" % name, name, b"", _ZERO[name],
            after=_abort_started_tx if name == "TRANSACTION_START" else None)
    for name in TYPES])


if __name__ == "__main__":
    unittest.main()
