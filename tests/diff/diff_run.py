"""diff_test.py's runner: one script against one daemon's Unix socket,
step by step, with a sync barrier after each step, recorded as a
transcript of what every connection received.
"""
import os
import select
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from xsproto import HDR, Msg, T, pack  # noqa: E402

from diff_normalise import Normaliser, normalise  # noqa: E402

EVENT = T["WATCH_EVENT"]
ERROR = T["ERROR"]

# Sync barrier: after each step the harness sends this side-effect-free
# request on every live connection whose framing it trusts, and waits for
# its reply.  A daemon queues the events a request causes on a connection
# before replies to requests processed later on that connection, so once the
# barrier reply is in, everything the step caused has been received.  Barrier
# replies are not recorded.
BARRIER_TYPE = T["GET_DOMAIN_PATH"]
BARRIER_REQ_ID = 0xB0A1B0A1
BARRIER_PAYLOAD = b"0\0"


class Entry(tuple):
    """One recorded observation: (kind, data).
    kind: "msg" (data = normalised Msg), "closed" (daemon closed the socket),
    "timeout" (no reply within the bound), "error" (harness-side problem,
    data = text), "partial" (trailing bytes of an incomplete frame)."""
    __slots__ = ()

    def __new__(cls, kind, data=None):
        return tuple.__new__(cls, (kind, data))

    kind = property(lambda s: s[0])
    data = property(lambda s: s[1])


class Client:
    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.buf = b""
        self.dead = False       # daemon closed it (or we did)
        self.sent = []          # FIFO of (type, payload) awaiting replies
        self.dirty = False      # raw bytes / odd lengths sent: no barriers
        self.barriers = 0       # barrier replies still expected

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.dead = True
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data, deadline):
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("send timed out")
            _, w, _ = select.select([], [self.sock], [], left)
            if not w:
                continue
            n = self.sock.send(view)
            view = view[n:]

    def take(self):
        """Next complete message in the buffer, or None."""
        if len(self.buf) < HDR.size:
            return None
        t, r, x, n = HDR.unpack(self.buf[:HDR.size])
        if len(self.buf) < HDR.size + n:
            return None
        m = Msg(t, r, x, self.buf[HDR.size:HDR.size + n])
        self.buf = self.buf[HDR.size + n:]
        return m

    def fill(self):
        """Read what is available.  Returns False on EOF."""
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return True
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            return False
        self.buf += data
        return True


class Run:
    """Executes one script against one daemon socket, producing a transcript:
    a list, one item per step, of {conn name: [Entry, ...]}."""

    def __init__(self, socket_path, steps, opts):
        self.path = socket_path
        self.steps = steps
        self.opts = opts
        self.clients = {}
        self.env = {}
        self.norm = Normaliser()
        self.transcript = []
        self.assertions = []     # (step index, text) for failed 'quiet'

    # -- recording ----------------------------------------------------------
    def _record(self, rec, name, entry):
        rec.setdefault(name, []).append(entry)

    def _on_msg(self, rec, name, m):
        c = self.clients[name]
        if (c.barriers and m.type == BARRIER_TYPE and m.req_id == BARRIER_REQ_ID
                and m.tx_id == 0):
            c.barriers -= 1
            return m
        request = None
        if m.type != EVENT and c.sent:
            request = c.sent.pop(0)
        self._record(rec, name, Entry("msg", normalise(self.norm, request, m)))
        return m

    def _on_eof(self, rec, name):
        c = self.clients[name]
        if c.buf:
            self._record(rec, name, Entry("partial", c.buf))
            c.buf = b""
        self._record(rec, name, Entry("closed"))
        c.close()

    def _drain_buffer(self, rec, name):
        c = self.clients[name]
        got = []
        while True:
            m = c.take()
            if m is None:
                return got
            got.append(self._on_msg(rec, name, m))

    def _live(self):
        return [n for n, c in self.clients.items() if not c.dead]

    def poll(self, rec, timeout):
        """Wait up to timeout for input on any live client; record complete
        messages.  Returns list of (name, msg) received."""
        live = self._live()
        got = []
        if not live:
            if timeout > 0:
                time.sleep(timeout)
            return got
        r, _, _ = select.select([self.clients[n] for n in live], [], [],
                                max(timeout, 0))
        for c in r:
            name = next(n for n in live if self.clients[n] is c)
            if not c.fill():
                for m in self._drain_buffer(rec, name):
                    got.append((name, m))
                self._on_eof(rec, name)
                got.append((name, None))
                continue
            msgs = self._drain_buffer(rec, name)
            for m in msgs:
                got.append((name, m))
            if not msgs and c.buf:
                got.append((name, "partial"))   # data arrived: not quiet
        return got

    def settle(self, rec):
        """End of a step: sync barrier on every clean live connection, then
        collect until quiet (short quiet if all live connections synced)."""
        deadline = time.monotonic() + self.opts["timeout_s"]
        synced = True
        for name in self._live():
            c = self.clients[name]
            if c.dirty:
                synced = False
                continue
            try:
                c.send(pack(BARRIER_TYPE, BARRIER_PAYLOAD, req_id=BARRIER_REQ_ID), deadline)
                c.barriers += 1
            except (OSError, TimeoutError):
                synced = False     # EOF will be noticed by the polling below
        while True:
            waiting = [n for n in self._live() if self.clients[n].barriers]
            if not waiting:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                for n in waiting:
                    self._record(rec, n, Entry("timeout", "sync barrier"))
                    self.clients[n].barriers = 0
                    self.clients[n].dirty = True
                break
            self.poll(rec, left)
        quiet = self.opts["straggle_ms" if synced else "settle_ms"]
        return self.quiet_collect(rec, quiet, self.opts["settle_max_ms"])

    def quiet_collect(self, rec, quiet_ms, max_ms):
        """Collect on all connections until nothing arrives for quiet_ms
        (bounded by max_ms)."""
        quiet = quiet_ms / 1000.0
        bound = time.monotonic() + max_ms / 1000.0
        n = 0
        while True:
            t = min(quiet, bound - time.monotonic())
            if t <= 0:
                return n
            got = self.poll(rec, t)
            if not got:
                return n
            n += len(got)

    def collect_for(self, rec, ms):
        """Collect on all connections for exactly ms milliseconds."""
        end = time.monotonic() + ms / 1000.0
        n = 0
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return n
            n += len(self.poll(rec, left))

    def wait_replies(self, rec, name):
        """Wait until every request sent on `name` has been answered."""
        deadline = time.monotonic() + self.opts["timeout_s"]
        c = self.clients[name]
        while c.sent and not c.dead:
            left = deadline - time.monotonic()
            if left <= 0:
                self._record(rec, name, Entry("timeout"))
                c.sent = []
                return
            self.poll(rec, left)

    # -- steps --------------------------------------------------------------
    def _resolve(self, v):
        if isinstance(v, tuple):
            if v[1] not in self.env:
                raise KeyError(v[1])
            return self.env[v[1]]
        return v

    def run(self):
        timeouts = 0
        for step in self.steps:
            rec = {}
            try:
                self.do_step(step, rec)
            except Exception as e:    # harness-side, recorded and compared
                self._record(rec, step.conn or "*", Entry("error", "%s: %s" % (type(e).__name__, e)))
            self.transcript.append(rec)
            # a hung daemon would cost a timeout per step: give up early
            timeouts += sum(1 for es in rec.values() for e in es if e.kind == "timeout")
            if timeouts >= 3:
                self.transcript.append({"*": [Entry("error", "script aborted after %d timeouts" % timeouts)]})
                break
        # final sweep: anything still arriving belongs to a pseudo step
        rec = {}
        self.settle(rec)
        self.transcript.append(rec)
        for c in self.clients.values():
            c.close()
        return self.transcript

    def do_step(self, step, rec):
        op = step.op
        if op == "open":
            if step.conn in self.clients and not self.clients[step.conn].dead:
                raise RuntimeError("connection %s already open" % step.conn)
            self.clients[step.conn] = Client(self.path, self.opts["timeout_s"])
            self.settle(rec)
            return
        if op == "close":
            self.clients[step.conn].close()
            self.settle(rec)
            return
        if op == "settle":
            self.opts = dict(self.opts, settle_ms=step.ms, straggle_ms=min(step.ms, self.opts["straggle_ms"]))
            return
        if op == "collect":
            self.collect_for(rec, step.ms)
            return
        if op == "quiet":
            self.collect_for(rec, step.ms)
            names = [step.conn] if step.conn else list(self.clients)
            extra = [n for n in names if rec.get(n)]
            if extra:
                self.assertions.append(
                    (len(self.transcript), "line %d: messages arrived on %s during '%s'"
                     % (step.lineno, ",".join(extra), step.text)))
            return
        c = self.clients.get(step.conn)
        if c is None or c.dead:
            self._record(rec, step.conn, Entry("error", "not sent: connection closed"))
            return
        deadline = time.monotonic() + self.opts["timeout_s"]
        if op == "wait":
            self.wait_replies(rec, step.conn)
            self.settle(rec)
            return
        if op == "raw":
            # no waiting: replies are collected by a later step ('wait')
            data = b"".join(p.value(self.env, raw_line=True) for p in step.parts)
            c.sent.extend([(None, b"")] * step.replies)
            c.dirty = True
            self._send(rec, step.conn, data, deadline)
            return
        assert op == "req"
        try:
            payload = b"".join(p.value(self.env) for p in step.payload)
            req_id = self._resolve(step.req)
            tx_id = self._resolve(step.tx)
        except KeyError as e:
            self._record(rec, step.conn, Entry("error", "not sent: unbound variable $%s" % e.args[0]))
            return
        data = pack(step.type, payload, req_id=req_id, tx_id=tx_id, length=step.len)
        c.sent.append((step.type, payload))
        if step.len is not None or step.split is not None:
            c.dirty = True
        if step.split is not None and 0 < step.split < len(data):
            # first part, let the daemon see it alone, then the rest
            if not self._send(rec, step.conn, data[:step.split], deadline):
                return
            self.settle(rec)
            if c.dead:
                return
            data = data[step.split:]
            deadline = time.monotonic() + self.opts["timeout_s"]
        if not self._send(rec, step.conn, data, deadline):
            return
        if step.nowait:
            # no reading at all: the reply is collected by a later step
            return
        before = len(rec.get(step.conn, []))
        self.wait_replies(rec, step.conn)
        if step.capture:
            reply = [e.data for e in rec.get(step.conn, [])[before:]
                     if e.kind == "msg" and e.data.type != EVENT]
            if reply and reply[0].type == step.type:
                v = reply[0].payload.split(b"\0", 1)[0]
                try:
                    self.env[step.capture] = int(v.decode())
                except (ValueError, UnicodeDecodeError):
                    pass
            else:
                self.env.pop(step.capture, None)
        self.settle(rec)

    def _send(self, rec, name, data, deadline):
        c = self.clients[name]
        try:
            c.send(data, deadline)
            return True
        except (BrokenPipeError, ConnectionResetError):
            # The daemon already closed it.  Whether that shows up here or as
            # EOF while reading is a race, so only the EOF is recorded.
            self.quiet_collect(rec, self.opts["settle_ms"], self.opts["settle_max_ms"])
            if not c.dead:
                self._on_eof(rec, name)
            return False
        except TimeoutError:
            self._record(rec, name, Entry("timeout"))
            return False
