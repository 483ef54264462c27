"""Raw xenstore wire-protocol client for tests (xs_wire.h framing).

One Conn is one socket connection. Replies and watch events are kept as
raw (type, req_id, tx_id, payload) tuples so tests can compare bytes.
Every wait is bounded.
"""
import errno
import os
import select
import socket
import struct
import time

TYPES = [
    "CONTROL", "DIRECTORY", "READ", "GET_PERMS", "WATCH", "UNWATCH",
    "TRANSACTION_START", "TRANSACTION_END", "INTRODUCE", "RELEASE",
    "GET_DOMAIN_PATH", "WRITE", "MKDIR", "RM", "SET_PERMS", "WATCH_EVENT",
    "ERROR", "IS_DOMAIN_INTRODUCED", "RESUME", "SET_TARGET", "RESTRICT",
    "RESET_WATCHES", "DIRECTORY_PART", "GET_FEATURE", "SET_FEATURE",
    "GET_QUOTA", "SET_QUOTA",
]
T = {name: i for i, name in enumerate(TYPES)}
HDR = struct.Struct("=IIII")
PAYLOAD_MAX = 4096


class Closed(Exception):
    """The daemon closed the connection."""


class Msg(tuple):
    """(type, req_id, tx_id, payload)"""
    __slots__ = ()

    def __new__(cls, type_, req_id, tx_id, payload):
        return tuple.__new__(cls, (type_, req_id, tx_id, payload))

    type = property(lambda s: s[0])
    req_id = property(lambda s: s[1])
    tx_id = property(lambda s: s[2])
    payload = property(lambda s: s[3])

    def __repr__(self):
        name = TYPES[self.type] if self.type < len(TYPES) else str(self.type)
        return "Msg(%s, req=%d, tx=%d, %r)" % (name, self.req_id, self.tx_id,
                                               self.payload)


def pack(type_, payload=b"", req_id=0, tx_id=0, length=None):
    if isinstance(type_, str):
        type_ = T[type_]
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    return HDR.pack(type_, req_id, tx_id, n) + payload


def args(*parts):
    """Payload of NUL-terminated strings: args("a", "b") == b"a\\0b\\0"."""
    out = b""
    for p in parts:
        out += (p.encode() if isinstance(p, str) else p) + b"\0"
    return out


class Conn:
    def __init__(self, path, timeout=5.0):
        self.path = path
        self.timeout = timeout
        # A full listen queue answers EAGAIN (Xen's daemon queues only one
        # pending connection): retry, bounded.
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(path)
                break
            except BlockingIOError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.buf = b""
        self.events = []     # watch events seen while waiting for replies

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, type_, payload=b"", req_id=0, tx_id=0):
        self.send_raw(pack(type_, payload, req_id, tx_id))

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply from %s" % self.path)
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            raise TimeoutError("no reply from %s" % self.path)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            raise Closed()
        self.buf += data

    def recv(self, timeout=None):
        """Next message (reply or event), raw."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < HDR.size:
            self._fill(deadline)
        t, r, x, n = HDR.unpack(self.buf[:HDR.size])
        while len(self.buf) < HDR.size + n:
            self._fill(deadline)
        payload = self.buf[HDR.size:HDR.size + n]
        self.buf = self.buf[HDR.size + n:]
        return Msg(t, r, x, payload)

    def reply(self, timeout=None):
        """Next message that is not a watch event (events go to .events)."""
        while True:
            m = self.recv(timeout)
            if m.type == T["WATCH_EVENT"]:
                self.events.append(m)
                continue
            return m

    def pending(self, wait=0.0):
        """Messages that arrive within `wait` seconds, without blocking more."""
        out = []
        deadline = time.monotonic() + wait
        while True:
            if len(self.buf) >= HDR.size:
                n = HDR.unpack(self.buf[:HDR.size])[3]
                if len(self.buf) >= HDR.size + n:
                    out.append(self.recv())
                    continue
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.sock], [], [], max(left, 0))
            if not r:
                return out
            data = self.sock.recv(65536)
            if not data:
                raise Closed()
            self.buf += data

    def request(self, type_, payload=b"", tx_id=0, req_id=0):
        self.send(type_, payload, req_id=req_id, tx_id=tx_id)
        return self.reply()

    # convenience: return payload or raise OSError(errno) on XS_ERROR
    def call(self, type_, payload=b"", tx_id=0):
        m = self.request(type_, payload, tx_id)
        if m.type == T["ERROR"]:
            name = m.payload.rstrip(b"\0").decode()
            raise OSError(getattr(errno, name, errno.EINVAL), name)
        return m.payload

    def read(self, path, tx=0):
        return self.call("READ", args(path), tx)

    def write(self, path, value, tx=0):
        if isinstance(value, str):
            value = value.encode()
        return self.call("WRITE", path.encode() + b"\0" + value, tx)

    def mkdir(self, path, tx=0):
        return self.call("MKDIR", args(path), tx)

    def rm(self, path, tx=0):
        return self.call("RM", args(path), tx)

    def directory(self, path, tx=0):
        p = self.call("DIRECTORY", args(path), tx)
        return [x.decode() for x in p.split(b"\0")[:-1]]

    def get_perms(self, path, tx=0):
        p = self.call("GET_PERMS", args(path), tx)
        return [x.decode() for x in p.split(b"\0")[:-1]]

    def set_perms(self, path, perms, tx=0):
        return self.call("SET_PERMS", args(path, *perms), tx)

    def watch(self, path, token):
        return self.call("WATCH", args(path, token))

    def unwatch(self, path, token):
        return self.call("UNWATCH", args(path, token))

    def start(self):
        return int(self.call("TRANSACTION_START", b"\0").rstrip(b"\0"))

    def end(self, tx, commit=True):
        return self.call("TRANSACTION_END", b"T\0" if commit else b"F\0", tx)

    def control(self, *words):
        return self.call("CONTROL", args(*words))
