#!/usr/bin/python3
"""e2e_badinput: floods.

TestFloods: random bytes, random well-framed requests, pipelining without
reading, XSA-324, connection churn, events never read. test_badinput.py
runs this file with the others; alone:

    XSR_DAEMON=c /usr/bin/python3 tests/e2e/test_badinput_floods.py [-v]
"""
import os
import random
import socket
import struct
import sys
import threading
import time
import unittest

from badinputlib import (BASE, CANARY, CANARY_VAL, PROMPT, REPLY_TIMEOUT,
                         BadInputBase, Close, _req_ids, connect, raw_connect,
                         receive, spec)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from xsproto import HDR, PAYLOAD_MAX, T, args, pack  # noqa: E402

RAW_SEEDS = (1, 2, 3, 4)
FRAMED_SEEDS = (1, 2, 3)
# types the framed fuzzer may send: no INTRODUCE/RELEASE/RESUME/SET_TARGET/
# CONTROL/SET_FEATURE/SET_QUOTA (privileged, host-state changing)
FUZZ_TYPES = (1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 20, 21,
              22, 23, 25, 27, 1000, 0xffff)
FUZZ_ALPHABET = b"/abc@_-\0\0\0"


class TestFloods(BadInputBase):
    """Random bytes, pipelining without reading, XSA-324, connection churn."""

    @classmethod
    def class_setup(cls, conn):
        conn.write(BASE + "/pipe", b"p" * 1000)

    def _raw_random(self, seed):
        data = random.Random(seed).randbytes(1 << 20)
        n = HDR.unpack(data[:HDR.size])[3]
        self.assertGreater(n, PAYLOAD_MAX, "seed %d: first header is "
                           "plausible; pick another seed" % seed)
        v = connect(self.d.socket)
        try:
            try:
                v.sock.settimeout(10)
                v.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass            # the daemon dropped us mid-send: fine
            except socket.timeout:
                pass            # it stopped reading us: Close() decides
            self.assert_outcome(v, Close(), 0, 0, 0)
        finally:
            v.close()
        self.check_survivors()

    def _framed_random(self, seed):
        rnd = random.Random(seed)
        v = connect(self.d.socket)
        total = frames = 0
        try:
            while total < (1 << 20):
                t = rnd.choice(FUZZ_TYPES)
                n = rnd.randint(0, PAYLOAD_MAX)
                if rnd.random() < 0.5:
                    payload = rnd.randbytes(n)
                else:
                    payload = bytes(rnd.choice(FUZZ_ALPHABET)
                                    for _ in range(min(n, 200)))
                tx = 0 if rnd.random() < 0.9 else rnd.randrange(1 << 32)
                rid = next(_req_ids)
                frame = pack(t, payload, rid, tx)
                v.send_raw(frame)
                m = receive(v, REPLY_TIMEOUT)
                self.assertNotIsInstance(
                    m, str, "seed %d frame %d (type %d, len %d): %s" %
                    (seed, frames, t, len(payload), m))
                self.assertIn(m.type, (t, T["ERROR"]), (seed, frames, m))
                self.assertEqual((m.req_id, m.tx_id), (rid, tx),
                                 (seed, frames, m))
                self.assertLessEqual(len(m.payload), PAYLOAD_MAX)
                total += len(frame)
                frames += 1
        finally:
            v.close()
        self.check_survivors()

    @spec("flood.pipeline_10000_unread",
          "10000 pipelined READs (1000-byte value) without reading replies, "
          "then close", "each bystander READ answered within %gs while the "
          "flood is processed; the flooder's first 100 replies are correct "
          "and in order; daemon alive after the close" % PROMPT)
    def test_pipeline_10000_unread(self):
        path = BASE + "/pipe"
        val = b"p" * 1000
        p = connect(self.d.socket)
        frames = b"".join(pack("READ", args(path), req_id=i)
                          for i in range(10000))
        state = {}

        def sender():
            try:
                p.sock.sendall(frames)
                state["sent"] = time.monotonic()
            except OSError as e:  # timeout (daemon stopped reading) / closed
                state["err"] = e

        p.sock.settimeout(30)
        th = threading.Thread(target=sender, daemon=True)
        start = time.monotonic()
        th.start()
        lat = []
        try:
            # Probe while the flood is sent and processed: until 1 s after
            # the sender finished, or 5 s if the daemon pushes back (stops
            # reading the flooder), which is allowed.
            while True:
                t0 = time.monotonic()
                try:
                    self.bystander_read(timeout=PROMPT)
                except TimeoutError:
                    self.fail("bystander not answered within %gs during "
                              "the flood" % PROMPT)
                lat.append(time.monotonic() - t0)
                now = time.monotonic()
                sent = state.get("sent")
                if sent and now > sent + 1.0:
                    break
                if "err" in state or now > start + 5.0:
                    break
                time.sleep(0.02)
            self.assertNotIn("err", state)
            self.assertLess(max(lat), PROMPT)
            for i in range(100):
                m = p.recv(REPLY_TIMEOUT)
                self.assertEqual((m.type, m.req_id, m.payload),
                                 (T["READ"], i, val))
        finally:
            try:
                p.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            p.close()
            th.join(10)
        time.sleep(0.2)
        self.check_survivors()

    @spec("flood.xsa324_event_over_4096",
          "WATCH /badinput/w with a token making path+token exactly 4096; "
          "write a child /badinput/w/<100 chars> (event would be 4197 bytes)",
          "WATCH OK + 4096-byte initial event; the child write is OK and no "
          "event is sent for it (dropped); a later write of /badinput/w "
          "itself still delivers a 4096-byte event; watcher usable")
    def test_xsa324(self):
        wpath = BASE + "/w"
        token = "t" * (PAYLOAD_MAX - len(wpath) - 2)
        with connect(self.d.socket) as w:
            w.write(wpath, "")
            self.assertEqual(len(args(wpath, token)), PAYLOAD_MAX)
            self.assertEqual(w.watch(wpath, token), b"OK\0")
            evs = [m for m in w.pending(1.0)] + w.events
            w.events = []
            self.assertEqual([(m.type, len(m.payload)) for m in evs],
                             [(T["WATCH_EVENT"], PAYLOAD_MAX)])
            with connect(self.d.socket) as x:
                x.write(wpath + "/" + "c" * 100, "x")
            got = w.pending(1.0)
            self.assertEqual(got, [], "an event > 4096 bytes was sent or "
                             "something else arrived")
            self.assertEqual(w.read(CANARY), CANARY_VAL)
            with connect(self.d.socket) as x:
                x.write(wpath, "again")
            evs = [m for m in w.pending(1.0)] + w.events
            self.assertEqual([(m.type, m.payload) for m in evs],
                             [(T["WATCH_EVENT"], args(wpath, token))])
            self.assertEqual(w.unwatch(wpath, token), b"OK\0")
        self.check_survivors()

    @spec("flood.connection_churn_1000",
          "1000 connections opened and closed abruptly (mix: nothing sent; "
          "half a header; a full READ left unread; WATCH then RST via "
          "SO_LINGER 0; header promising 4000 bytes with 10 sent)",
          "survivors after the loop; loop takes < 60 s")
    def test_connection_churn(self):
        t0 = time.monotonic()
        linger0 = struct.pack("ii", 1, 0)
        for i in range(1000):
            s = raw_connect(self.d.socket)
            try:
                k = i % 5
                if k == 1:
                    s.sendall(pack("READ", args(CANARY))[:5])
                elif k == 2:
                    s.sendall(pack("READ", args(CANARY)))
                elif k == 3:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
                    s.sendall(pack("WATCH", args("/", "churn%d" % i)))
                elif k == 4:
                    s.sendall(pack("WRITE", b"", length=4000) + b"/badinput/")
            except (BrokenPipeError, ConnectionResetError):
                pass
            s.close()
            if i % 100 == 99:
                self.assertTrue(self.d.alive(), "daemon died at %d" % i)
        self.assertLess(time.monotonic() - t0, 60)
        self.check_survivors()

    @spec("flood.events_unread",
          "WATCH /badinput/ev with a 3000-byte token, never read; another "
          "connection pipelines 500 WRITEs to 500 distinct children "
          "(~1.5 MB of events queued for the sleeper), then the sleeper "
          "closes", "all 500 WRITEs answered OK in order; bystander served "
          "within %gs; daemon alive (what the sleeper gets is "
          "unspecified)" % PROMPT)
    def test_events_unread(self):
        w = connect(self.d.socket)
        try:
            w.watch(BASE + "/ev", "k" * 3000)
            with connect(self.d.socket) as x:
                for i in range(500):
                    x.send("WRITE", (BASE + "/ev/%d" % i).encode() + b"\0v",
                           req_id=i)
                for i in range(500):
                    m = x.reply(REPLY_TIMEOUT)
                    self.assertEqual((m.type, m.req_id, m.payload),
                                     (T["WRITE"], i, b"OK\0"))
                self.bystander_read(timeout=PROMPT)
        finally:
            w.close()
        time.sleep(0.2)
        self.check_survivors()


for _s in RAW_SEEDS:
    setattr(TestFloods, "test_random_raw_seed%d" % _s, spec(
        "flood.random_raw.seed%d" % _s,
        "1 MiB of random.Random(%d).randbytes(); its first header has "
        "len > 4096" % _s, str(Close()))(
            lambda self, s=_s: self._raw_random(s)))
for _s in FRAMED_SEEDS:
    setattr(TestFloods, "test_random_framed_seed%d" % _s, spec(
        "flood.random_framed.seed%d" % _s,
        "~1 MiB of well-framed requests (len <= 4096) with random types "
        "from FUZZ_TYPES, random/path-like payloads, 10%% random tx_ids, "
        "seed %d, one at a time" % _s,
        "exactly one reply per request, in order, type = request type or "
        "ERROR, req_id/tx_id echoed, len <= 4096; connection stays open")(
            lambda self, s=_s: self._framed_random(s)))



if __name__ == "__main__":
    unittest.main()
