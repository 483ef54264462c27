"""Play Xen guest domains talking xenbus to a xenstored through the file
model of ../shared/reference/xsshim.c (the "sim" ring backend).

The shim directory DIR holds (see xsshim.c's header):
  evtchn    FIFO the daemon reads: writing a 4-byte native uint32 local
            port = an event on that port (port 1 = VIRQ_DOM_EXC)
  notify    FIFO we create and keep open for reading: the daemon's
            xenevtchn_notify(local_port) writes the port there
  ring-<D>  the 4096-byte xenstore page of domain D (mmap MAP_SHARED)
  ports     "bind_interdomain domid=D remote=R local=L" lines; the last
            line for D is D's current local port
  dying     whitespace-separated domids reported as dying
  domains   (our daemon) domids that exist, as XSSHIM_DOMAINS for the shim

SimDir is that directory; Guest is one domain's end of its ring (also
dom0's kernel on ring-0); introduce() does what libxl does to create and
introduce a domain; launch() starts a daemon (ours, or Xen 4.17's C or
OCaml xenstored through refd) with its shim dir at BASE/shim.

Notifications are only a hint: every wait polls the page with a short
sleep as well, and every wait is bounded.
"""
import collections
import ctypes
import errno
import os
import select
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import mmap

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import daemon as daemonlib  # noqa: E402
from xsproto import T, TYPES, HDR, Msg, args, PAYLOAD_MAX  # noqa: E402,F401

PAGE = 4096
RING = 1024
VIRQ_PORT = 1
DOM0_REMOTE_PORT = 7

# struct xenstore_domain_interface
OFF_REQ, OFF_RSP = 0, 1024
OFF = {"req_cons": 2048, "req_prod": 2052, "rsp_cons": 2056, "rsp_prod": 2060,
       "server_features": 2064, "connection": 2068, "error": 2072,
       "evtchn_port": 2076}
U32 = struct.Struct("=I")

XENSTORE_CONNECTED, XENSTORE_RECONNECT = 0, 1
ERROR_NONE, ERROR_COMM, ERROR_RINGIDX, ERROR_PROTO = 0, 1, 2, 3

DEFAULT_TIMEOUT = 5.0
POLL = 0.005          # fallback polling period when no notification comes


class XsError(OSError):
    """An XS_ERROR reply: .name is the xenstore error string ("EACCES")."""

    def __init__(self, name, msg=None):
        self.name = name
        self.msg = msg
        super().__init__(getattr(errno, name, errno.EINVAL), name)


class RingError(Exception):
    """The page is inconsistent (bad indexes) or the daemon flagged an error."""


def _deadline(timeout):
    return time.monotonic() + (DEFAULT_TIMEOUT if timeout is None else timeout)


# ---------------------------------------------------------------------------
# The shim directory


class SimDir:
    def __init__(self, path, notify=True):
        self.path = os.path.abspath(path)
        os.makedirs(self.path, exist_ok=True)
        self.notify_fd = -1
        self.notified = collections.Counter()   # local port -> notifications seen
        self._evt_fd = -1
        self._evt_ino = None
        self._lock = threading.Lock()    # guests may run in threads
        self._partial = b""
        if notify:
            self.open_notify()

    def file(self, name):
        return os.path.join(self.path, name)

    # -- notifications from the daemon --------------------------------
    def open_notify(self):
        """mkfifo DIR/notify and keep it open (O_RDWR: never EOF, and the
        daemon's writes never see EPIPE while we live)."""
        p = self.file("notify")
        try:
            st = os.lstat(p)
            if not stat.S_ISFIFO(st.st_mode):
                os.unlink(p)
                os.mkfifo(p, 0o600)
        except FileNotFoundError:
            os.mkfifo(p, 0o600)
        if self.notify_fd >= 0:
            os.close(self.notify_fd)
        self.notify_fd = os.open(p, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self._partial = b""

    def drain(self):
        """Read every queued notification into self.notified; True if any."""
        with self._lock:
            return self._drain()

    def _drain(self):
        if self.notify_fd < 0:
            return False
        got = False
        while True:
            try:
                data = os.read(self.notify_fd, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            got = True
            data = self._partial + data
            n = len(data) // 4 * 4
            for (port,) in struct.iter_unpack("=I", data[:n]):
                self.notified[port] += 1
            self._partial = data[n:]
        return got

    def wait(self, timeout):
        """Sleep up to `timeout` seconds, less if a notification arrives."""
        if timeout <= 0:
            self.drain()
            return
        if self.notify_fd < 0:
            time.sleep(timeout)
            return
        r, _, _ = select.select([self.notify_fd], [], [], timeout)
        if r:
            self.drain()

    def wait_until(self, pred, timeout=None, what="condition"):
        """Poll pred() (waking early on notifications) until true; bounded."""
        end = _deadline(timeout)
        while True:
            v = pred()
            if v:
                return v
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for %s" % what)
            self.wait(min(POLL, left))

    # -- events to the daemon ------------------------------------------
    def kick(self, port):
        """Deliver an event on daemon-side `port`. False if nobody reads the
        evtchn FIFO (daemon gone) or the FIFO is full (events pending)."""
        if port is None:
            return False
        with self._lock:
            return self._kick(port)

    def _kick(self, port):
        p = self.file("evtchn")
        try:
            ino = os.stat(p).st_ino
        except FileNotFoundError:
            return False
        if self._evt_fd >= 0 and ino != self._evt_ino:
            os.close(self._evt_fd)
            self._evt_fd = -1
        if self._evt_fd < 0:
            try:
                self._evt_fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:          # ENXIO: no reader
                return False
            self._evt_ino = ino
        try:
            os.write(self._evt_fd, U32.pack(port))
            return True
        except BlockingIOError:
            return False
        except OSError:              # EPIPE: the reader went away
            os.close(self._evt_fd)
            self._evt_fd = -1
            return False

    def virq(self):
        """VIRQ_DOM_EXC: the daemon re-checks which domains are dying."""
        return self.kick(VIRQ_PORT)

    # -- bookkeeping files ----------------------------------------------
    def bindings(self):
        """[(domid, remote, local)] from DIR/ports, in order."""
        out = []
        try:
            with open(self.file("ports")) as f:
                for line in f:
                    kv = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
                    try:
                        out.append((int(kv["domid"]), int(kv["remote"]), int(kv["local"])))
                    except (KeyError, ValueError):
                        pass
        except FileNotFoundError:
            pass
        return out

    def local_port(self, domid):
        """The daemon-side port of domid's ring (last binding), or None."""
        port = None
        for d, _, local in self.bindings():
            if d == domid:
                port = local
        return port

    def dying(self):
        try:
            with open(self.file("dying")) as f:
                return [int(w) for w in f.read().split()]
        except FileNotFoundError:
            return []

    def set_dying(self, domids):
        tmp = self.file("dying.tmp")
        with open(tmp, "w") as f:
            f.write(" ".join(str(d) for d in domids) + "\n")
        os.replace(tmp, self.file("dying"))

    def kill_domain(self, domid):
        """Mark domid dying and raise VIRQ_DOM_EXC."""
        self.set_dying(sorted(set(self.dying()) | {domid}))
        self.virq()

    def close(self):
        for fd in (self.notify_fd, self._evt_fd):
            if fd >= 0:
                os.close(fd)
        self.notify_fd = self._evt_fd = -1


# ---------------------------------------------------------------------------
# One domain's end of its ring


class Guest:
    """Domain `domid`'s xenbus end of ring-<domid> in `simdir`.

    create=True creates the page file and zeroes it (do that BEFORE the
    INTRODUCE); dom0's kernel ring is Guest(simdir, 0, create=False).
    """

    def __init__(self, simdir, domid, create=True, timeout=DEFAULT_TIMEOUT):
        self.sim = simdir
        self.domid = domid
        self.timeout = timeout
        self.path = simdir.file("ring-%d" % domid)
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, 0)       # zeroed page
                os.ftruncate(fd, PAGE)
            elif os.fstat(fd).st_size < PAGE:
                raise RingError("%s is not a page" % self.path)
            self.page = mmap.mmap(fd, PAGE, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        # The index words must be loaded and stored as whole aligned 32-bit
        # words: struct.pack_into may copy byte by byte, and the daemon
        # would then see torn indexes (and flag XENSTORE_ERROR_RINGIDX).
        self._words = (ctypes.c_uint32 * 8).from_buffer(self.page, 2048)
        self.inbuf = b""                   # rsp bytes not yet a whole message
        self.inbox = collections.deque()   # whole messages not yet returned
        self.events = []                   # watch events put aside by reply()
        self.next_req_id = 1
        self.kicks = 0

    def forget(self):
        """Drop partial and queued input (after the daemon reset the ring)."""
        self.inbuf = b""
        self.inbox.clear()
        self.events = []

    def close(self):
        self._words = None
        try:
            self.page.close()
        except (BufferError, ValueError):
            pass

    # -- the page ---------------------------------------------------------
    def get(self, field):
        return self._words[(OFF[field] - 2048) // 4]

    def set(self, field, value):
        self._words[(OFF[field] - 2048) // 4] = value & 0xFFFFFFFF

    req_cons = property(lambda s: s.get("req_cons"))
    req_prod = property(lambda s: s.get("req_prod"))
    rsp_cons = property(lambda s: s.get("rsp_cons"))
    rsp_prod = property(lambda s: s.get("rsp_prod"))
    server_features = property(lambda s: s.get("server_features"))
    connection = property(lambda s: s.get("connection"))
    error = property(lambda s: s.get("error"))

    def indexes(self):
        return tuple(self.get(f) for f in ("req_cons", "req_prod", "rsp_cons", "rsp_prod"))

    def port(self):
        """Current daemon-side port (re-read from the ports log every time)."""
        return self.sim.local_port(self.domid)

    def kick(self):
        self.kicks += 1
        return self.sim.kick(self.port())

    def wait_until(self, pred, timeout=None, what="condition"):
        return self.sim.wait_until(pred, self.timeout if timeout is None else timeout,
                                   "dom%d: %s" % (self.domid, what))

    # -- producing requests ---------------------------------------------
    def req_space(self):
        used = (self.req_prod - self.req_cons) & 0xFFFFFFFF
        return RING - used if used <= RING else 0

    def put(self, data, kick=True, partial=False):
        """Copy `data` into req if it fits (partial=True: as much as fits),
        advance req_prod, kick. Returns the number of bytes written (0 if
        nothing was)."""
        prod = self.req_prod
        n = min(len(data), self.req_space())
        if n < len(data) and not partial:
            return 0
        if n:
            off = prod % RING
            first = min(n, RING - off)
            self.page[OFF_REQ + off:OFF_REQ + off + first] = data[:first]
            if n > first:
                self.page[OFF_REQ:OFF_REQ + n - first] = data[first:n]
            self.set("req_prod", prod + n)
            if kick:
                self.kick()
        return n

    def write_bytes(self, data, timeout=None, chunk=None, pause=0.0):
        """Write the whole byte stream, in pieces of at most `chunk` bytes
        (each followed by a kick, then `pause` seconds), waiting for the
        daemon to consume when the ring is full."""
        end = _deadline(self.timeout if timeout is None else timeout)
        pos = 0
        while pos < len(data):
            piece = data[pos:pos + chunk] if chunk else data[pos:]
            n = self.put(piece, partial=True)
            pos += n
            if pause and n:
                time.sleep(pause)
            if pos < len(data) and not n:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("dom%d: ring full, daemon does not consume "
                                       "(req_cons=%d req_prod=%d, error=%d)"
                                       % (self.domid, self.req_cons, self.req_prod, self.error))
                self.poll_replies()     # the daemon may wait for rsp space
                self.sim.wait(min(POLL, left))
                self.kick()

    def send(self, type_, payload=b"", req_id=None, tx_id=0, timeout=None,
             chunk=None, pause=0.0):
        """Queue one request (pipelining allowed); returns its req_id."""
        if isinstance(type_, str):
            type_ = T[type_]
        if isinstance(payload, str):
            payload = payload.encode()
        if req_id is None:
            req_id = self.next_req_id
            self.next_req_id = (self.next_req_id + 1) & 0xFFFFFFFF or 1
        self.write_bytes(HDR.pack(type_, req_id, tx_id, len(payload)) + payload,
                         timeout, chunk, pause)
        return req_id

    # -- consuming replies and events -------------------------------------
    def poll_replies(self):
        """Move whatever the daemon produced into the inbox, free the space
        (advance rsp_cons) and kick. Returns the number of bytes taken."""
        cons, prod = self.rsp_cons, self.rsp_prod
        n = (prod - cons) & 0xFFFFFFFF
        if n == 0:
            return 0
        if n > RING:
            raise RingError("dom%d: rsp_prod %d - rsp_cons %d > %d"
                            % (self.domid, prod, cons, RING))
        off = cons % RING
        first = min(n, RING - off)
        data = bytes(self.page[OFF_RSP + off:OFF_RSP + off + first])
        if n > first:
            data += bytes(self.page[OFF_RSP:OFF_RSP + n - first])
        self.set("rsp_cons", cons + n)
        self.kick()
        self.inbuf += data
        while len(self.inbuf) >= HDR.size:
            t, r, x, ln = HDR.unpack_from(self.inbuf)
            if len(self.inbuf) < HDR.size + ln:
                break
            self.inbox.append(Msg(t, r, x, self.inbuf[HDR.size:HDR.size + ln]))
            self.inbuf = self.inbuf[HDR.size + ln:]
        return n

    def recv(self, timeout=None):
        """Next message in arrival order (reply or watch event)."""
        if not self.inbox:
            self.wait_until(lambda: self.poll_replies() or self.inbox, timeout,
                            "a message (indexes %r, error %d)" % (self.indexes(), self.error))
            while not self.inbox:
                self.wait_until(lambda: self.poll_replies() or self.inbox, timeout,
                                "the rest of a message")
        return self.inbox.popleft()

    def reply(self, timeout=None):
        """Next message that is not a watch event (events go to .events)."""
        while True:
            m = self.recv(timeout)
            if m.type == T["WATCH_EVENT"]:
                self.events.append(m)
                continue
            return m

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def pending(self, wait=0.0):
        """All messages that arrive within `wait` seconds (raw, in order)."""
        end = time.monotonic() + wait
        out = []
        while True:
            self.poll_replies()
            while self.inbox:
                out.append(self.inbox.popleft())
            left = end - time.monotonic()
            if left <= 0:
                return out
            self.sim.wait(min(POLL, left))

    def pending_events(self, wait=0.0):
        """Watch events received so far and within `wait` seconds, as
        (path, token) string pairs; replies arriving meanwhile are kept."""
        keep = []
        for m in self.pending(wait):
            if m.type == T["WATCH_EVENT"]:
                self.events.append(m)
            else:
                keep.append(m)
        self.inbox.extendleft(reversed(keep))
        evs = [event_args(m) for m in self.events]
        self.events = []
        return evs

    def wait_event(self, timeout=None, pred=None):
        """The first queued or arriving event (path, token) matching pred."""
        end = _deadline(self.timeout if timeout is None else timeout)
        while True:
            for i, m in enumerate(self.events):
                ev = event_args(m)
                if pred is None or pred(ev):
                    del self.events[i]
                    return ev
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("dom%d: no watch event" % self.domid)
            self.events.extend(self.pending_raw_events(min(0.05, left)))

    def events_n(self, n, timeout=None, quiet=0.3):
        """Wait for n watch events, then return them (path, token) plus any
        more that arrive within `quiet` seconds."""
        end = _deadline(self.timeout if timeout is None else timeout)
        out = []
        while len(out) < n:
            out.append(self.wait_event(max(end - time.monotonic(), 0.001)))
        return out + self.pending_events(quiet)

    def pending_raw_events(self, wait):
        keep, evs = [], []
        for m in self.pending(wait):
            (evs if m.type == T["WATCH_EVENT"] else keep).append(m)
        self.inbox.extendleft(reversed(keep))
        return evs

    # -- requests with a reply ------------------------------------------------
    def request(self, type_, payload=b"", tx_id=0, timeout=None):
        rid = self.send(type_, payload, tx_id=tx_id, timeout=timeout)
        m = self.reply(timeout)
        if m.req_id != rid:
            raise RingError("dom%d: reply for req_id %d, expected %d: %r"
                            % (self.domid, m.req_id, rid, m))
        return m

    def call(self, type_, payload=b"", tx_id=0, timeout=None):
        return check(self.request(type_, payload, tx_id, timeout))

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
        return strings(self.call("DIRECTORY", args(path), tx))

    def get_perms(self, path, tx=0):
        return strings(self.call("GET_PERMS", args(path), tx))

    def set_perms(self, path, perms, tx=0):
        return self.call("SET_PERMS", args(path, *perms), tx)

    def watch(self, path, token):
        return self.call("WATCH", args(path, token))

    def unwatch(self, path, token):
        return self.call("UNWATCH", args(path, token))

    def reset_watches(self):
        return self.call("RESET_WATCHES", b"")

    def start(self):
        return int(self.call("TRANSACTION_START", b"\0").rstrip(b"\0"))

    def end(self, tx, commit=True):
        return self.call("TRANSACTION_END", b"T\0" if commit else b"F\0", tx)

    def get_domain_path(self, domid):
        return self.call("GET_DOMAIN_PATH", args(str(domid))).rstrip(b"\0").decode()

    def introduce(self, domid, gfn, port):
        return self.call("INTRODUCE", args(str(domid), str(gfn), str(port)))

    def is_domain_introduced(self, domid):
        return self.call("IS_DOMAIN_INTRODUCED", args(str(domid))).rstrip(b"\0").decode()

    # -- hostile helpers ----------------------------------------------------
    def inject(self, data, at=None, advance=True, kick=True):
        """Write raw bytes at stream offset `at` (default req_prod) without
        checking for space; optionally advance req_prod past them."""
        pos = self.req_prod if at is None else at
        for i, b in enumerate(data):
            self.page[OFF_REQ + (pos + i) % RING] = b
        if advance:
            self.set("req_prod", pos + len(data))
        if kick:
            self.kick()


def check(m):
    """Payload of a reply, or XsError for an XS_ERROR."""
    if m.type == T["ERROR"]:
        name = m.payload.rstrip(b"\0").decode(errors="replace")
        raise XsError(name, m)
    return m.payload


def strings(payload):
    return [x.decode() for x in payload.split(b"\0")[:-1]]


def event_args(m):
    parts = m.payload.split(b"\0")
    return (parts[0].decode(), parts[1].decode() if len(parts) > 1 else "")


# ---------------------------------------------------------------------------
# libxl-like domain creation and introduction

GUEST_DIRS = ("device", "control", "data", "drivers", "feature", "attr", "error")


def remote_port_for(domid):
    return 1000 + domid


def introduce(conn, simdir, domid, remote_port=None, gfn=None, dirs=GUEST_DIRS,
              guest=None, keys=None):
    """Create /local/domain/<domid> as libxl does (n0 r<domid>, guest-owned
    subdirectories n<domid>, ~/domid, ~/store/*, and `keys`: {relative path:
    value}, e.g. {"vm": "/vm/<uuid>"}), create and zero ring-<domid>,
    INTRODUCE it over `conn` (a privileged xsproto.Conn) and return the Guest.
    Pass `guest` to re-introduce an existing Guest without zeroing its page."""
    if remote_port is None:
        remote_port = remote_port_for(domid)
    if gfn is None:
        gfn = 0xFEFFF - domid
    if guest is None:
        guest = Guest(simdir, domid)
    home = "/local/domain/%d" % domid
    # libxl__domain_make removes the old home first: surviving nodes would
    # keep ACL entries for the previous user of the domid, which the daemon
    # then ignores (XSA-322)
    try:
        conn.rm(home)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
    conn.write(home, b"")
    conn.set_perms(home, ["n0", "r%d" % domid])
    for d in dirs:
        conn.write(home + "/" + d, b"")
        conn.set_perms(home + "/" + d, ["n%d" % domid])
    conn.write(home + "/domid", str(domid))
    conn.write(home + "/store/port", str(remote_port))
    conn.write(home + "/store/ring-ref", str(gfn))
    for k, v in (keys or {}).items():
        conn.write(home + "/" + k, v)
    conn.call("INTRODUCE", args(str(domid), str(gfn), str(remote_port)))
    return guest


def dom0_kernel(simdir):
    """dom0's kernel xenbus end: the daemon's own ring-0 (do not zero it)."""
    return Guest(simdir, 0, create=False)


# ---------------------------------------------------------------------------
# Daemons: the one place that knows how each kind is started


class _RefDaemon(daemonlib.Daemon):
    """daemonlib.Daemon whose refd gets our environment (XSSHIM_DOMAINS)."""

    def _start_ref(self, timeout):
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        out = subprocess.run([daemonlib.REFD, "start", self.kind, self.base] + self.args,
                             check=True, capture_output=True, text=True,
                             timeout=timeout + 60, env=env).stdout
        self.pid = int(out.split()[1])


class SimDaemon:
    """A daemon serving its Unix socket and sim rings in BASE/shim."""

    def __init__(self, kind, base, domains=None, args=()):
        self.kind = kind
        self.base = base
        self.shim = os.path.join(base, "shim")
        self.domains = domains
        env = {}
        if domains is not None:
            env["XSSHIM_DOMAINS"] = domains
        if kind == "ours":
            self.d = daemonlib.Daemon("ours", base=base, env=env,
                                      args=["--ring-backend", "sim:" + self.shim] + list(args))
        else:
            self.d = _RefDaemon(kind, base=base, env=env, args=list(args))
        self.socket = self.d.socket

    @property
    def pid(self):
        return self.d.pid

    def restartable(self):
        """Can it be restarted with its guests still attached?"""
        return self.kind == "ours"

    def start(self):
        if self.kind == "ours":
            os.makedirs(self.shim, exist_ok=True)
            if self.domains is not None:
                with open(os.path.join(self.shim, "domains"), "w") as f:
                    f.write(self.domains + "\n")
        # refd wipes BASE/shim: SimDir (notify FIFO) must be opened after this
        self.d.start()
        return self

    def alive(self):
        return self.d.alive()

    def stop(self, sig=signal.SIGTERM):
        return self.d.stop(sig)

    def kill9(self):
        return self.d.stop(signal.SIGKILL)

    def log_text(self):
        if self.kind == "ours":
            return self.d.log_text()
        try:
            with open(os.path.join(self.base, "log", "out.log"), errors="replace") as f:
                return f.read()[-8000:]
        except OSError:
            return "(no log)"


def launch(kind, base, domains=None, args=()):
    """Start a daemon of `kind` ("ours", "c", "o") in `base` with its shim
    dir at base/shim; `domains` restricts which domids exist ("0-5,7")."""
    return SimDaemon(kind, base, domains, args).start()
