"""chaos.py's clients and the history they record: on every host, socket
clients and a sim guest read, write, remove and transact on the host's
keys and watch their directory; every operation and every watch event
goes to history.jsonl (tests/chaos/HISTORY.md).
"""
import itertools
import json
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import simguest as sg  # noqa: E402
import xsproto  # noqa: E402
from xsproto import T, args  # noqa: E402

from cluster import now_ns  # noqa: E402

OP_TIMEOUT = 5.0         # seconds before an operation is given up (info)
# errors that mean the request definitely took no effect
DEFINITE = {"EACCES", "EINVAL", "EEXIST", "E2BIG", "EQUOTA", "EPERM",
            "ENOSYS", "EBUSY", "ENOTEMPTY", "EISDIR", "EROFS", "ENOENT"}


# ---------------------------------------------------------------------------
# The history file


class History:
    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.counts = {"ok": 0, "fail": 0, "info": 0, "event": 0}

    def next_id(self):
        with self.lock:
            return next(self.ids)

    def put(self, rec):
        line = json.dumps(rec)
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()
            if rec["type"] == "op":
                self.counts[rec["status"]] += 1
            elif rec["type"] == "event":
                self.counts["event"] += 1

    def close(self):
        with self.lock:
            self.f.close()


# ---------------------------------------------------------------------------
# Clients


def err_name(m):
    return m.payload.rstrip(b"\0").decode(errors="replace")


class Client(threading.Thread):
    """One client of one host: random read/write/rm/txn on the host's keys,
    a watch on the chaos directory. Subclasses say how to talk (socket or
    ring)."""

    def __init__(self, h, name, host, keys, watch_path, seed, halt):
        super().__init__(daemon=True, name=name)
        self.h = h
        self.cname = name
        self.host = host
        self.keys = keys
        self.watch_path = watch_path
        self.rng = random.Random(seed)
        self.halt = halt
        self.session = 0
        self.token = "t-" + name.replace("/", "-")
        self.error = None
        self.pace = 0.03

    # transport: connect() -> bool, rpc(type, payload, tx) -> Msg (or raises
    # TimeoutError / ConnectionError on an unknown outcome), lost()
    def record_event(self, m):
        parts = m.payload.split(b"\0")
        self.h.put({"type": "event", "client": self.cname, "host": self.host,
                    "path": parts[0].decode(errors="replace"),
                    "token": parts[1].decode(errors="replace") if len(parts) > 1 else "",
                    "time": now_ns(), "session": self.session})

    def register_watch(self):
        t0 = now_ns()
        m = self.rpc("WATCH", args(self.watch_path, self.token), 0)
        if m.type == T["ERROR"] and err_name(m) != "EEXIST":
            raise ConnectionError("WATCH: %s" % err_name(m))
        self.h.put({"type": "watch", "client": self.cname, "host": self.host,
                    "path": self.watch_path, "token": self.token, "time": t0,
                    "complete": now_ns(), "session": self.session})

    def op(self, f, key):
        rec = {"type": "op", "id": self.h.next_id(), "client": self.cname,
               "host": self.host, "f": f, "key": key, "value": None,
               "invoke": None, "complete": None, "status": None, "out": None,
               "error": None}
        if f in ("write", "txn"):
            rec["value"] = "v%d" % rec["id"]
        return rec

    def finish(self, rec, status, out=None, error=None):
        rec["complete"] = now_ns()
        rec["status"] = status
        rec["out"] = out
        rec["error"] = error
        self.h.put(rec)

    def classify(self, rec, m, f):
        """Record the outcome of a single-request operation from its reply."""
        if m.type != T["ERROR"]:
            out = m.payload.decode(errors="replace") if f == "read" else None
            return self.finish(rec, "ok", out)
        e = err_name(m)
        if f == "read" and e == "ENOENT":
            return self.finish(rec, "ok", None)
        if e in DEFINITE:
            return self.finish(rec, "fail", None, e)
        return self.finish(rec, "info", None, e)

    def do_one(self):
        key = self.rng.choice(self.keys)
        f = self.rng.choices(["read", "write", "rm", "txn"], [4, 3, 1, 2])[0]
        rec = self.op(f, key)
        rec["invoke"] = now_ns()
        try:
            if f == "read":
                m = self.rpc("READ", args(key), 0)
            elif f == "write":
                m = self.rpc("WRITE", key.encode() + b"\0" + rec["value"].encode(), 0)
            elif f == "rm":
                m = self.rpc("RM", args(key), 0)
            else:
                return self.do_txn(rec, key)
        except (TimeoutError, ConnectionError, OSError, xsproto.Closed, sg.RingError) as e:
            self.finish(rec, "info", None, type(e).__name__)
            self.lost()
            return
        self.classify(rec, m, f)

    def do_txn(self, rec, key):
        sent_end = False
        try:
            m = self.rpc("TRANSACTION_START", b"\0", 0)
            if m.type == T["ERROR"]:
                return self.finish(rec, "fail", None, "start: " + err_name(m))
            tx = int(m.payload.rstrip(b"\0"))
            m = self.rpc("READ", args(key), tx)
            if m.type == T["ERROR"] and err_name(m) != "ENOENT":
                self.rpc("TRANSACTION_END", b"F\0", tx)
                return self.finish(rec, "fail", None, "read: " + err_name(m))
            out = None if m.type == T["ERROR"] else m.payload.decode(errors="replace")
            m = self.rpc("WRITE", key.encode() + b"\0" + rec["value"].encode(), tx)
            if m.type == T["ERROR"]:
                self.rpc("TRANSACTION_END", b"F\0", tx)
                return self.finish(rec, "fail", None, "write: " + err_name(m))
            sent_end = True
            m = self.rpc("TRANSACTION_END", b"T\0", tx)
        except (TimeoutError, ConnectionError, OSError, xsproto.Closed, sg.RingError) as e:
            # before its end a transaction cannot have taken effect
            self.finish(rec, "info" if sent_end else "fail", None, type(e).__name__)
            self.lost()
            return
        if m.type != T["ERROR"]:
            return self.finish(rec, "ok", out)
        e = err_name(m)
        if e in DEFINITE or e == "EAGAIN":
            return self.finish(rec, "fail", None, e)
        return self.finish(rec, "info", None, e)

    def run(self):
        try:
            while not self.halt.is_set():
                if not self.ready():
                    self.halt.wait(0.2)
                    continue
                self.do_one()
                self.halt.wait(self.rng.uniform(0, 2 * self.pace))
            self.drain()
        except Exception as e:  # noqa: BLE001 - a harness bug: reported
            self.error = "%s: %r" % (self.cname, e)
            import traceback
            traceback.print_exc()


class SockClient(Client):
    def __init__(self, h, name, host, path, keys, watch_path, seed, halt):
        super().__init__(h, name, host, keys, watch_path, seed, halt)
        self.path = path
        self.conn = None
        self.req = 0

    def ready(self):
        if self.conn is not None:
            return True
        try:
            self.conn = xsproto.Conn(self.path, timeout=OP_TIMEOUT)
        except OSError:
            self.conn = None
            return False
        self.session += 1
        try:
            self.register_watch()
        except (TimeoutError, ConnectionError, OSError, xsproto.Closed):
            self.lost()
            return False
        return True

    def lost(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def rpc(self, type_, payload, tx):
        if self.conn is None:
            raise ConnectionError("not connected")
        self.req = (self.req + 1) & 0xFFFFFFFF or 1
        self.conn.send(type_, payload, req_id=self.req, tx_id=tx)
        end = time.monotonic() + OP_TIMEOUT
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply")
            m = self.conn.recv(left)
            if m.type == T["WATCH_EVENT"]:
                self.record_event(m)
            elif m.req_id == self.req:
                return m

    def drain(self):
        if self.conn:
            try:
                for m in self.conn.pending(0.2):
                    if m.type == T["WATCH_EVENT"]:
                        self.record_event(m)
            except (OSError, xsproto.Closed):
                pass
            self.lost()


class GuestClient(Client):
    """The sim guest of a host: its ring survives restarts of its member;
    it counts a new session (and registers its watch again, EEXIST being
    fine: the daemon keeps a ring's watches) each time its member is killed."""

    def __init__(self, h, name, host, cluster, i, guest, keys, watch_path, seed, halt):
        super().__init__(h, name, host, keys, watch_path, seed, halt)
        self.c = cluster
        self.i = i
        self.g = guest
        self.seen_epoch = None

    def ready(self):
        ep = self.c.epoch[self.i]
        if ep == self.seen_epoch:
            return True
        if self.i in self.c.expected_down:
            return False
        if not os.path.exists(self.g.sim.file("notify")):
            self.g.sim.open_notify()
        try:
            self.register_watch()
        except (TimeoutError, ConnectionError, OSError, sg.RingError):
            return False
        self.seen_epoch = ep
        return True

    def lost(self):
        pass

    def record_event(self, m):
        # a new session begins when the member is killed (see restored())
        self.session = self.c.epoch[self.i] + 1
        super().record_event(m)

    def register_watch(self):
        self.session = self.c.epoch[self.i] + 1
        super().register_watch()

    def restored(self, t_start, t_served):
        """The restarted daemon restores the ring's watch itself (and fires
        it once): that registration is the new session's, from the start
        of the launch to the moment the member serves."""
        self.h.put({"type": "watch", "client": self.cname, "host": self.host,
                    "path": self.watch_path, "token": self.token, "time": t_start,
                    "complete": t_served, "session": self.c.epoch[self.i] + 1})

    def rpc(self, type_, payload, tx):
        g = self.g
        rid = g.send(type_, payload, tx_id=tx, timeout=OP_TIMEOUT)
        end = time.monotonic() + OP_TIMEOUT
        while True:
            g.poll_replies()
            while g.inbox:
                m = g.inbox.popleft()
                if m.type == T["WATCH_EVENT"]:
                    self.record_event(m)
                elif m.req_id == rid:
                    return m
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply on the ring")
            g.sim.wait(min(sg.POLL, left))

    def drain(self):
        try:
            for m in self.g.pending(0.2):
                if m.type == T["WATCH_EVENT"]:
                    self.record_event(m)
        except (OSError, sg.RingError):
            pass
