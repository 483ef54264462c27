#!/usr/bin/python3
"""Differential test: replay xenstore request scripts (tests/diff/corpus/*.xst)
against two daemons over their Unix sockets and compare, byte for byte, every
message each connection receives (replies and watch events, in order).

    diff_test.py [--a c] [--b ours] [--corpus DIR] [-k SUBSTR] [-v]
                 [--dump] [--all] [--settle MS] [--timeout S] [-j N]

Kinds are those of tests/lib/daemon.py: "c" (Xen 4.17 cxenstored via refd),
"ours" (build/bin/xenstored, or $XSR_BIN/xenstored).  Every corpus file gets a
fresh pair of daemons, each in its own temporary directory, stopped by PID
afterwards whatever happens.  The script format is described in README.md.

Exit status: 0 if every case matched, 1 if any case differed or failed,
2 on usage / corpus syntax errors.
"""
import argparse
import errno
import glob
import os
import re
import select
import signal
import socket
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True      # do not leave __pycache__ in tests/lib
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from xsproto import HDR, Msg, T, TYPES, PAYLOAD_MAX, pack  # noqa: E402
from daemon import Daemon  # noqa: E402

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

DEFAULTS = {
    "settle_ms": 30,       # quiet period that ends a step on unsynchronised connections
    "straggle_ms": 5,      # quiet period after a successful sync barrier
    "settle_max_ms": 2000,  # upper bound for one step's settle phase
    "timeout_s": 5.0,      # bound for waiting for one reply
}


class ScriptError(Exception):
    def __init__(self, path, lineno, msg):
        Exception.__init__(self, "%s:%d: %s" % (path, lineno, msg))


# ---------------------------------------------------------------------------
# Corpus parsing
# ---------------------------------------------------------------------------

_ESC = {"0": 0, "n": 10, "t": 9, "r": 13, "\\": 92, '"': 34, "'": 39,
        "a": 7, "b": 8, "f": 12, "v": 11, "e": 27}


def unescape(s, where):
    """C-style escapes: \\0 \\n \\t \\r \\\\ \\" \\xNN \\NNN (octal)."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        i += 1
        if i >= len(s):
            raise ValueError("%s: dangling backslash" % where)
        c = s[i]
        if c == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", s[i + 1:])
            if not m:
                raise ValueError("%s: bad \\x escape" % where)
            out.append(int(m.group(0), 16))
            i += 1 + len(m.group(0))
        elif c in "01234567":
            m = re.match(r"[0-7]{1,3}", s[i:])
            v = int(m.group(0), 8)
            if v > 255:
                raise ValueError("%s: octal escape > 255" % where)
            out.append(v)
            i += len(m.group(0))
        elif c in _ESC:
            out.append(_ESC[c])
            i += 1
        else:
            raise ValueError("%s: unknown escape \\%s" % (where, c))
    return bytes(out)


# one piece of a payload token: b"..." | "..." | $var | bareword, then *N
_PIECE = re.compile(r'''(?P<raw>b)?"(?P<q>(?:[^"\\]|\\.)*)"|(?P<var>\$[A-Za-z_][A-Za-z0-9_]*)|(?P<bare>[^\s"+*]+)''')


def split_tokens(line):
    """Split a line into whitespace-separated tokens; quotes protect spaces;
    '#' at the start of a token begins a comment."""
    toks = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i].isspace():
            i += 1
        if i >= n or line[i] == "#":
            break
        j = i
        while j < n and not line[j].isspace():
            if line[j] == '"':
                j += 1
                while j < n and line[j] != '"':
                    j += 2 if line[j] == "\\" else 1
                if j >= n:
                    raise ValueError("unterminated string")
            j += 1
        toks.append(line[i:j])
        i = j
    return toks


class Token:
    """A payload token: list of pieces, concatenated.  Appends a NUL unless
    the first piece is a b"..." literal (or the line is a 'raw' line)."""

    def __init__(self, text, where):
        self.text = text
        self.pieces = []   # (kind, value, repeat)
        pos = 0
        while True:
            m = _PIECE.match(text, pos)
            if not m:
                raise ValueError("%s: cannot parse token %r at %r" % (where, text, text[pos:]))
            if m.group("var"):
                piece = ("var", m.group("var")[1:])
            elif m.group("bare") is not None:
                piece = ("bytes", m.group("bare").encode())
            else:
                piece = ("bytes", unescape(m.group("q"), where))
            if not self.pieces:
                self.terminated = m.group("raw") is None
            pos = m.end()
            rep = 1
            if pos < len(text) and text[pos] == "*":
                m2 = re.match(r"\*(\d+)", text[pos:])
                if not m2:
                    raise ValueError("%s: bad repeat in %r" % (where, text))
                rep = int(m2.group(1))
                pos += m2.end()
            self.pieces.append((piece[0], piece[1], rep))
            if pos == len(text):
                break
            if text[pos] != "+":
                raise ValueError("%s: junk in token %r at %r" % (where, text, text[pos:]))
            pos += 1

    def value(self, env, raw_line=False):
        out = b""
        for kind, v, rep in self.pieces:
            if kind == "var":
                if v not in env:
                    raise KeyError(v)
                v = str(env[v]).encode()
            out += v * rep
        if self.terminated and not raw_line:
            out += b"\0"
        return out


def parse_type(tok):
    up = tok.upper()
    if up.startswith("XS_"):
        up = up[3:]
    if up in T:
        return T[up]
    if up == "DEBUG":
        return T["CONTROL"]
    try:
        v = int(tok, 0)
    except ValueError:
        return None
    if not 0 <= v <= 0xFFFFFFFF:
        return None
    return v


class Step:
    def __init__(self, lineno, text, op, **kw):
        self.lineno = lineno
        self.text = text
        self.op = op        # open close req raw wait collect quiet settle
        self.__dict__.update(kw)


def parse_file(path):
    steps = []
    conns = set()
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        try:
            toks = split_tokens(line)
        except ValueError as e:
            raise ScriptError(path, lineno, str(e))
        if not toks:
            continue
        where = "in token"

        def err(msg):
            raise ScriptError(path, lineno, msg)

        def ms_arg(t):
            try:
                v = int(t)
            except ValueError:
                err("expected milliseconds, got %r" % t)
            if not 0 <= v <= 60000:
                err("milliseconds out of range (0..60000)")
            return v

        head = toks[0]
        if head in ("open", "close"):
            if len(toks) != 2:
                err("usage: %s NAME" % head)
            name = toks[1]
            if head == "open":
                if (not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", name)
                        or name in ("open", "close", "collect", "quiet", "settle")):
                    err("bad connection name %r" % name)
                conns.add(name)
            elif name not in conns:
                err("unknown connection %r" % name)
            steps.append(Step(lineno, text, head, conn=name))
            continue
        if head in ("collect", "quiet", "settle"):
            if len(toks) != 2:
                err("usage: %s MS" % head)
            steps.append(Step(lineno, text, head, conn=None, ms=ms_arg(toks[1])))
            continue
        if head not in conns:
            err("unknown connection or directive %r (open it first)" % head)
        conn = head
        if len(toks) < 2:
            err("missing request")
        verb = toks[1]
        if verb == "quiet":
            if len(toks) != 3:
                err("usage: NAME quiet MS")
            steps.append(Step(lineno, text, "quiet", conn=conn, ms=ms_arg(toks[2])))
            continue
        if verb == "wait":
            if len(toks) != 2:
                err("usage: NAME wait")
            steps.append(Step(lineno, text, "wait", conn=conn))
            continue
        if verb == "raw":
            rest = toks[2:]
            replies = 0
            if rest and rest[0].startswith("replies="):
                try:
                    replies = int(rest[0].split("=", 1)[1])
                except ValueError:
                    err("bad replies= count")
                rest = rest[1:]
            try:
                parts = [Token(t, where) for t in rest]
            except ValueError as e:
                err(str(e))
            if not parts:
                err("raw needs bytes")
            steps.append(Step(lineno, text, "raw", conn=conn, parts=parts, replies=replies))
            continue
        # request: NAME [opt=val|nowait ...] TYPE [payload tokens] [-> $var]
        opts = {"req": 0, "tx": 0, "len": None, "split": None, "nowait": False}
        i = 1
        while i < len(toks):
            t = toks[i]
            if t == "nowait":
                opts["nowait"] = True
            elif re.match(r"^(req|tx|len|split)=", t):
                k, v = t.split("=", 1)
                if v.startswith("$"):
                    if k != "tx" and k != "req":
                        err("only tx= and req= may use a variable")
                    opts[k] = ("var", v[1:])
                else:
                    try:
                        opts[k] = int(v, 0)
                    except ValueError:
                        err("bad number in %r" % t)
                    if not 0 <= opts[k] <= 0xFFFFFFFF:
                        err("%s out of u32 range" % k)
            else:
                break
            i += 1
        if i >= len(toks):
            err("missing message type")
        mtype = parse_type(toks[i])
        if mtype is None:
            err("unknown message type %r" % toks[i])
        rest = toks[i + 1:]
        capture = None
        if len(rest) >= 2 and rest[-2] == "->":
            if not re.match(r"^\$[A-Za-z_][A-Za-z0-9_]*$", rest[-1]):
                err("capture target must be $name")
            capture = rest[-1][1:]
            rest = rest[:-2]
        try:
            payload = [Token(t, where) for t in rest]
        except ValueError as e:
            err(str(e))
        if capture and opts["nowait"]:
            err("cannot capture from a nowait request")
        steps.append(Step(lineno, text, "req", conn=conn, type=mtype,
                          payload=payload, capture=capture, **opts))
    return steps


# ---------------------------------------------------------------------------
# Normalisation of deliberate differences.  ALL of them live here.
# ---------------------------------------------------------------------------

class Normaliser:
    """Per-run state for normalisers.  Each normaliser takes (run state,
    the request this message answers or None, the Msg) and returns a Msg."""

    def __init__(self):
        self.gen_labels = {}    # request path -> {generation bytes: label}


def norm_directory_part_generation(state, request, m):
    # (a) DIRECTORY_PART replies start with the node's generation count as a
    # decimal NUL-terminated string.  Its value is an implementation detail
    # (cxenstored uses a global modification counter); clients only compare
    # it between chunks.  Replace it by a label that is stable per node path
    # within one run: "changed vs unchanged" (and "same as an earlier value")
    # is still compared, the number itself is not.
    if m.type != T["DIRECTORY_PART"]:
        return m
    nul = m.payload.find(b"\0")
    if nul < 0:
        return m
    gen = m.payload[:nul]
    key = None
    if request is not None:
        key = request[1].split(b"\0", 1)[0]
    labels = state.gen_labels.setdefault(key, {})
    if gen not in labels:
        labels[gen] = len(labels)
    label = b"<gen#%d>" % labels[gen]
    return Msg(m.type, m.req_id, m.tx_id, label + m.payload[nul:])


NORMALISERS = [
    norm_directory_part_generation,
]


def normalise(state, request, m):
    for f in NORMALISERS:
        m = f(state, request, m)
    return m


# ---------------------------------------------------------------------------
# Running a script against one daemon
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Presentation
# ---------------------------------------------------------------------------

def esc(b, limit=240):
    out = []
    for ch in b[:limit]:
        if ch == 0:
            out.append("\\0")
        elif ch == 0x5c:
            out.append("\\\\")
        elif ch == 0x22:
            out.append('\\"')
        elif ch == 10:
            out.append("\\n")
        elif 0x20 <= ch < 0x7f:
            out.append(chr(ch))
        else:
            out.append("\\x%02x" % ch)
    s = '"' + "".join(out) + '"'
    if len(b) > limit:
        s += "...(+%d bytes)" % (len(b) - limit)
    return s


def type_name(t):
    return TYPES[t] if t < len(TYPES) else str(t)


def describe(e):
    if e.kind == "msg":
        m = e.data
        return "%-17s req=%d tx=%d len=%d %s" % (type_name(m.type), m.req_id, m.tx_id,
                                                  len(m.payload), esc(m.payload))
    if e.kind == "closed":
        return "<connection closed by daemon>"
    if e.kind == "timeout":
        return "<timeout: no reply>"
    if e.kind == "partial":
        return "<incomplete frame: %s>" % esc(e.data)
    return "<%s: %s>" % (e.kind, e.data)


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def step_label(steps, i):
    if i < len(steps):
        return "line %d: %s" % (steps[i].lineno, steps[i].text)
    return "(end of script: late messages)"


def print_transcript(steps, tr, out, label):
    out.write("  transcript of %s:\n" % label)
    for i, rec in enumerate(tr):
        if i < len(steps) or rec:
            out.write("    %s\n" % step_label(steps, i))
        for name in sorted(rec):
            for e in rec[name]:
                out.write("      %-4s <- %s\n" % (name, describe(e)))


def compare(steps, ta, tb, la, lb, out, max_report=5):
    """Returns number of differing steps; prints up to max_report."""
    bad = 0
    for i in range(max(len(ta), len(tb))):
        ra = ta[i] if i < len(ta) else {}
        rb = tb[i] if i < len(tb) else {}
        if ra == rb:
            continue
        bad += 1
        if bad > max_report:
            continue
        out.write("  MISMATCH at %s\n" % step_label(steps, i))
        for name in sorted(set(ra) | set(rb)):
            ea, eb = ra.get(name, []), rb.get(name, [])
            if ea == eb:
                continue
            k = first_diff(ea, eb)
            out.write("    connection %s (first difference at message #%d of this step):\n" % (name, k + 1))
            for j in range(max(len(ea), len(eb))):
                x = ea[j] if j < len(ea) else None
                y = eb[j] if j < len(eb) else None
                mark = "  " if x == y else "!!"
                out.write("     %s %-5s %s\n" % (mark, la, describe(x) if x else "<nothing>"))
                if x != y:
                    out.write("     %s %-5s %s\n" % (mark, lb, describe(y) if y else "<nothing>"))
                    if (x and y and x.kind == y.kind == "msg" and x.data.type == y.data.type
                            and x.data.payload != y.data.payload):
                        p = first_diff(x.data.payload, y.data.payload)
                        out.write("              payloads differ from byte %d\n" % p)
    if bad > max_report:
        out.write("  ... and %d more differing steps\n" % (bad - max_report))
    return bad


# ---------------------------------------------------------------------------
# Case driver
# ---------------------------------------------------------------------------

def run_on(daemon, steps, opts, result, key):
    try:
        r = Run(daemon.socket, steps, opts)
        r.run()
        result[key] = (r.transcript, r.assertions, daemon.alive(), None)
    except Exception:
        result[key] = (None, None, daemon.alive(), traceback.format_exc())


def daemon_logs(d):
    # "ours" writes BASE/daemon.log, refd writes BASE/log/out.log
    for p in (d.log, os.path.join(d.base, "log", "out.log")):
        try:
            with open(p, errors="replace") as f:
                txt = f.read()[-3000:]
            if txt.strip():
                return txt
        except OSError:
            pass
    return "(empty)"


def run_case(path, args, out):
    name = os.path.relpath(path, args.corpus)
    try:
        steps = parse_file(path)
    except ScriptError as e:
        out.write("ERROR %s\n  %s\n" % (name, e))
        return "error"
    opts = dict(DEFAULTS, settle_ms=args.settle, timeout_s=args.timeout)
    daemons = []
    result = {}
    kinds = [("A", args.a)] if args.dump else [("A", args.a), ("B", args.b)]
    t0 = time.monotonic()
    try:
        # start the daemons one after the other (refd may build its shim on
        # first use), then run the script against both at the same time
        for key, kind in kinds:
            d = Daemon(kind)
            daemons.append(d)
            try:
                d.start()
            except Exception as e:
                out.write("ERROR %s: cannot start daemon %s: %s\n" % (name, kind, _short(e, args.verbose)))
                return "error"
        threads = [threading.Thread(target=run_on, args=(d, steps, opts, result, key), daemon=True)
                   for (key, _), d in zip(kinds, daemons)]
        for t in threads:
            t.start()
        for t in threads:
            # every wait inside is bounded; this is a backstop
            t.join(args.case_timeout)
            if t.is_alive():
                out.write("ERROR %s: case did not finish within %ds\n" % (name, args.case_timeout))
                return "error"
        dt = time.monotonic() - t0
        for key, kind in kinds:
            tr, asserts, alive, exc = result[key]
            if exc:
                if not args.verbose:
                    exc = "".join(exc.strip().splitlines(True)[-3:]) + "\n"
                out.write("ERROR %s: running against %s failed:\n%s" % (name, kind, exc))
                return "error"
        la, lb = "A:" + args.a, "B:" + args.b
        if args.dump:
            out.write("DUMP %s (%s, %.1fs)\n" % (name, args.a, dt))
            print_transcript(steps, result["A"][0], out, la)
            return "ok"
        ta, tb = result["A"][0], result["B"][0]
        io = _Buf()
        bad = compare(steps, ta, tb, la, lb, io)
        problems = []
        for key, lbl in (("A", la), ("B", lb)):
            for _, txt in result[key][1]:
                problems.append("%s: %s" % (lbl, txt))
            # a case never expects a timeout (use 'quiet' to expect silence)
            for i, rec in enumerate(result[key][0]):
                if any(e.kind == "timeout" or (e.kind == "error" and "aborted" in str(e.data))
                       for es in rec.values() for e in es):
                    problems.append("%s: timed out at %s" % (lbl, step_label(steps, i)))
                    break
            if not result[key][2]:
                problems.append("%s: daemon is no longer running at the end of the case" % lbl)
        if bad or problems:
            out.write("FAIL %s (%d differing steps, %.1fs)\n" % (name, bad, dt))
            out.write(io.text())
            for p in problems:
                out.write("  %s\n" % p)
            if args.verbose:
                print_transcript(steps, ta, out, la)
                print_transcript(steps, tb, out, lb)
                for d in daemons:
                    out.write("  log of %s daemon (%s):\n    %s\n" % (
                        d.kind, d.base, daemon_logs(d).replace("\n", "\n    ")))
            return "fail"
        out.write("ok   %s (%d steps, %.1fs)\n" % (name, len(steps), dt))
        if args.verbose:
            print_transcript(steps, ta, out, la)
        return "ok"
    finally:
        for d in daemons:
            try:
                d.cleanup()
            except Exception as e:
                out.write("WARNING: could not stop %s daemon %s: %s\n" % (d.kind, d.base, e))


def _short(e, verbose):
    text = str(e) or type(e).__name__
    if not verbose:
        lines = text.strip().splitlines()
        if len(lines) > 6:
            text = "\n".join(lines[:2] + ["..."] + lines[-3:])
    return text


class _Buf:
    def __init__(self):
        self.parts = []

    def write(self, s):
        self.parts.append(s)

    def text(self):
        return "".join(self.parts)


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", default="c", help="first daemon kind (default c)")
    ap.add_argument("--b", default="ours", help="second daemon kind (default ours)")
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus"))
    ap.add_argument("-k", dest="match", action="append", default=[],
                    help="only cases whose name contains this (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print transcripts (and daemon logs on failure)")
    ap.add_argument("--all", action="store_true",
                    help="also run cases under known-diff/")
    ap.add_argument("--dump", action="store_true",
                    help="run only daemon A and print what it sent")
    ap.add_argument("--settle", type=int, default=DEFAULTS["settle_ms"],
                    help="quiet period in ms that ends each step (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=DEFAULTS["timeout_s"],
                    help="seconds to wait for one reply (default %(default)s)")
    ap.add_argument("--case-timeout", type=int, default=300,
                    help="backstop per case in seconds (default %(default)s)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args(argv)

    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)

    files = sorted(glob.glob(os.path.join(args.corpus, "*.xst")))
    if args.all:
        files += sorted(glob.glob(os.path.join(args.corpus, "known-diff", "*.xst")))
    if args.match:
        files = [f for f in files if any(m in os.path.relpath(f, args.corpus) for m in args.match)]
    if not files:
        print("no corpus files selected", file=sys.stderr)
        return 2
    if args.list:
        for f in files:
            print(os.path.relpath(f, args.corpus))
        return 0

    # syntax-check everything first, so a typo does not cost a whole run
    for f in files:
        try:
            parse_file(f)
        except ScriptError as e:
            print("corpus error: %s" % e, file=sys.stderr)
            return 2

    if args.dump:
        print("diff_test: dumping what %s sends, %d cases" % (args.a, len(files)))
    else:
        print("diff_test: %s vs %s, %d cases" % (args.a, args.b, len(files)))
    counts = {"ok": 0, "fail": 0, "error": 0}
    failed = []
    for f in files:
        r = run_case(f, args, sys.stdout)
        sys.stdout.flush()
        counts[r] += 1
        if r != "ok":
            failed.append(os.path.relpath(f, args.corpus))
    print("diff_test: %d ok, %d failed, %d errors" % (counts["ok"], counts["fail"], counts["error"]))
    if failed:
        print("failed: " + " ".join(failed))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
