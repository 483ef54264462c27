#!/usr/bin/python3
"""The daemon's command line and start-up, as an administrator meets them:
--help documents every option it accepts, bad input is refused with a clear
message, the config file and the options of Xen's xenstored work, the
read-only socket refuses changes, and daemonizing returns only once the
daemon serves.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from daemon import Daemon, BIN, wait_for, pid_alive  # noqa: E402
from xsproto import Conn, args, T  # noqa: E402

XENSTORED = os.path.join(BIN, "xenstored")


def run(argv, env=None, timeout=30):
    e = dict(os.environ)
    e.pop("XENSTORED_PATH", None)
    if env:
        e.update(env)
    return subprocess.run([XENSTORED] + argv, capture_output=True, text=True,
                          timeout=timeout, env=e, stdin=subprocess.DEVNULL)


class Help(unittest.TestCase):
    def test_help_lists_every_option(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        out = r.stdout
        # every long option the daemon accepts appears in --help
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "node", "options.c")) as f:
            src = f.read()
        table = src[src.index("long_opts[] = {"):src.index("{NULL, 0, NULL, 0}")]
        longs = re.findall(r'\{"([a-z-]+)",', table)
        self.assertGreater(len(longs), 20)
        for name in longs:
            self.assertIn("--" + name, out, name)
        self.assertEqual(run(["-H"]).returncode, 0)
        self.assertEqual(run(["-h"]).stdout, out)

    def test_version(self):
        """--version of every binary: CMake's project version, exit 0;
        --help mentions it."""
        top = os.path.join(os.path.dirname(__file__), "..", "..", "CMakeLists.txt")
        with open(top) as f:
            want = re.search(r"project\(xenstored-raft VERSION ([0-9.]+)", f.read()).group(1)
        for tool in ("xenstored", "xsadm", "xsbench"):
            path = os.path.join(BIN, tool)
            e = dict(os.environ)
            e.pop("XENSTORED_PATH", None)
            r = subprocess.run([path, "--version"], capture_output=True, text=True,
                               timeout=30, env=e, stdin=subprocess.DEVNULL)
            self.assertEqual((r.returncode, r.stdout, r.stderr),
                             (0, "%s (xenstored-raft) %s\n" % (tool, want), ""), tool)
            r = subprocess.run([path, "--help"], capture_output=True, text=True,
                               timeout=30, env=e, stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 0, tool)
            self.assertIn("--version", r.stdout, tool)

    def test_bad_options_are_refused(self):
        for argv, msg in [
            (["--no-such-option"], "unrecognized option"),
            (["-E", "12x"], 'invalid value "12x" for --entry-nb'),
            (["-Q", "bogus=1"], 'unknown quota "bogus=1"'),
            (["-Q", "memory"], "quotas are given as"),
            (["-w", "bogus=3"], 'unknown timeout'),
            (["--snapshot-threshold", "0"], "must be at least 1"),
            (["--live-update"], "not supported"),
            (["extra-argument"], "no arguments expected"),
            (["--config", "/nonexistent/xenstored.conf"], "cannot read config file"),
        ]:
            r = run(argv)
            self.assertEqual(r.returncode, 1, argv)
            self.assertIn(msg, r.stderr, argv)


class Config(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-opt-")

    def tearDown(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def write(self, name, text):
        p = os.path.join(self.base, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_config_file_and_override(self):
        trace = os.path.join(self.base, "trace.log")
        conf = self.write("x.conf", "[xenstored]\nentry-nb = 77\ntrace-file = %s\n" % trace)
        d = Daemon("ours", base=self.base, args=["--config", conf, "-W", "33"])
        d.start()
        try:
            with Conn(d.socket) as c:
                q = c.control("quota").decode()
                self.assertRegex(q, r"nodes\s+:\s+77 ")
                self.assertRegex(q, r"watches\s+:\s+33 ")
                c.write("/traced", "x")
            self.assertTrue(os.path.exists(trace))
            with open(trace) as f:
                text = f.read()
            self.assertRegex(text, r"IN 0x[0-9a-f]+ \d{8} \d\d:\d\d:\d\d WRITE \(/traced x\)")
            self.assertRegex(text, r"OUT 0x[0-9a-f]+ \d{8} \d\d:\d\d:\d\d WRITE \(OK \)")
        finally:
            d.stop()

    def test_config_errors(self):
        bad = self.write("bad.conf", "[xenstored]\nno-such-key = 1\n")
        r = run(["--config", bad])
        self.assertEqual(r.returncode, 1)
        self.assertIn('unknown key "no-such-key"', r.stderr)
        bad = self.write("bad2.conf", "[xenstored]\nentry-nb = lots\n")
        r = run(["--config", bad])
        self.assertEqual(r.returncode, 1)
        self.assertIn('invalid value "lots"', r.stderr)
        bad = self.write("bad3.conf", "[xenstored\n")
        r = run(["--config", bad])
        self.assertEqual(r.returncode, 1)
        self.assertIn("syntax error on line 1", r.stderr)
        # the cluster sections are checked too
        for text, msg in [
            ("[bogus]\nx = 1\n", "unknown section [bogus]"),
            ("[cluster]\nmember = 1 h1 127.0.0.1:1 127.0.0.1:2\n",
             "needs a [member] section"),
            ("[member]\nid = 1\nname = h1\n", "needs id, name, raft-address"),
            ("[member]\nid = 0\n", "bad member id"),
            ("[member]\nname = bad name!\n", 'bad name "bad name!"'),
            ("[member]\nraft-address = nowhere\n", 'bad raft address "nowhere"'),
            ("[cluster]\nmember = 1 h1 127.0.0.1:1\n", "member = ID NAME RAFT-ADDRESS"),
            ("[cluster]\nkey = 1234\n", "replaced by TLS certificates"),
            ("[member]\nid = 1\nname = h1\nraft-address = 127.0.0.1:1\n"
             "peer-address = 127.0.0.1:2\n[cluster]\n",
             "needs TLS credentials"),
            ("[member]\nid = 1\nname = h1\nraft-address = 127.0.0.1:1\n"
             "peer-address = 127.0.0.1:2\n[cluster]\nca-file = /x\n",
             "needs all of ca-file, cert-file and key-file"),
            ("[cluster]\ninsecure = maybe\n", "insecure = true or false"),
            ("[member]\nid = 1\nname = h1\nraft-address = 127.0.0.1:1\n"
             "peer-address = 127.0.0.1:2\n[cluster]\nheartbeat-timeout = 900\n",
             "below election-timeout"),
            ("[cluster]\nmember = 1 h1 127.0.0.1:1 127.0.0.1:2\n"
             "member = 1 h2 127.0.0.1:3 127.0.0.1:4\n", "listed twice"),
        ]:
            bad = self.write("c.conf", text)
            r = run(["--config", bad])
            self.assertEqual(r.returncode, 1, text)
            self.assertIn(msg, r.stderr, text)


class Sockets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon("ours").start()

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def test_read_only_socket(self):
        with Conn(self.d.socket) as rw:
            rw.write("/ro/x", "1")
        self.assertEqual(os.stat(self.d.socket).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(self.d.socket_ro).st_mode & 0o777, 0o600)
        with Conn(self.d.socket_ro) as ro:
            self.assertEqual(ro.read("/ro/x"), b"1")
            self.assertEqual(ro.directory("/ro"), ["x"])
            for t, payload in [("WRITE", b"/ro/x\0no"), ("MKDIR", args("/ro/y")),
                               ("RM", args("/ro/x")), ("SET_PERMS", args("/ro/x", "b5")),
                               ("CONTROL", args("check")), ("SET_QUOTA", args("nodes", "9")),
                               ("INTRODUCE", args("5", "0", "9")), ("RELEASE", args("5"))]:
                m = ro.request(t, payload)
                self.assertEqual((m.type, m.payload), (T["ERROR"], b"EACCES\0"), t)
            # watches and read-only transactions work
            ro.watch("/ro", "tok")
            tx = ro.start()
            self.assertEqual(ro.read("/ro/x", tx), b"1")
            m = ro.request("WRITE", b"/ro/x\0no", tx_id=tx)
            self.assertEqual(m.payload, b"EACCES\0")
            ro.end(tx)
        with Conn(self.d.socket) as rw:
            self.assertEqual(rw.read("/ro/x"), b"1")

    def test_relative_paths_are_dom0s(self):
        with Conn(self.d.socket) as c:
            c.write("rel/a", "1")
            self.assertEqual(c.read("/local/domain/0/rel/a"), b"1")


# A client run as an unprivileged user (nobody, group nogroup): prints
# "ok <reply payload>" or "refused <errno name>" for a READ, or WRITE.
AS_NOBODY = r"""
import errno, socket, struct, sys
path, op = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(path)
except OSError as e:
    print("refused", errno.errorcode[e.errno]); sys.exit(0)
if op == "read":
    body = b"/acc/x\0"; t = 2
else:
    body = b"/acc/x\0nobody"; t = 11
s.sendall(struct.pack("<IIII", t, 1, 0, len(body)) + body)
h = s.recv(16)
t, _, _, n = struct.unpack("<IIII", h)
p = b""
while len(p) < n:
    p += s.recv(n - len(p))
print("error" if t == 16 else "ok", p.rstrip(b"\0").decode())
"""


class SocketAccess(unittest.TestCase):
    """Both sockets are root's alone by default (as Xen's); a group may be
    given socket_ro, for reading only. Files with requests' payloads are
    0600. Clients run as nobody through setpriv."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-access-")
        os.chmod(self.base, 0o755)  # so that only the sockets' modes decide
        self.d = None

    def tearDown(self):
        if self.d:
            self.d.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)

    def as_nobody(self, path, op):
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                            "--clear-groups", "/usr/bin/python3", "-c",
                            AS_NOBODY, path, op],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def start(self, args=()):
        self.d = Daemon("ours", base=self.base,
                        args=["-T", os.path.join(self.base, "trace"),
                              "--log-file", os.path.join(self.base, "log")] +
                        list(args)).start()
        with Conn(self.d.socket) as c:
            c.write("/acc/x", "root's")

    def test_nobody_reaches_no_socket_by_default(self):
        self.start()
        for path in (self.d.socket, self.d.socket_ro):
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, path)
            self.assertEqual(self.as_nobody(path, "read"), "refused EACCES",
                             path)
        # what holds requests' payloads is root's alone
        for name in ("trace", "log"):
            mode = os.stat(os.path.join(self.base, name)).st_mode & 0o777
            self.assertEqual(mode, 0o600, name)
        with Conn(self.d.socket) as c:
            c.control("memreport", os.path.join(self.base, "report"))
        mode = os.stat(os.path.join(self.base, "report")).st_mode & 0o777
        self.assertEqual(mode, 0o600)

    def test_a_group_may_read_through_socket_ro(self):
        self.start(["--socket-ro-group", "nogroup"])
        self.assertEqual(os.stat(self.d.socket_ro).st_mode & 0o777, 0o660)
        self.assertEqual(self.as_nobody(self.d.socket_ro, "read"),
                         "ok root's")
        self.assertEqual(self.as_nobody(self.d.socket_ro, "write"),
                         "error EACCES")
        self.assertEqual(self.as_nobody(self.d.socket, "read"),
                         "refused EACCES")
        with Conn(self.d.socket) as c:
            self.assertEqual(c.read("/acc/x"), b"root's")

    def test_an_unknown_group_is_refused(self):
        r = run(["--data-dir", os.path.join(self.base, "data"),
                 "--run-dir", os.path.join(self.base, "run"), "-N",
                 "--socket-ro-group", "no-such-group-xsr"])
        self.assertEqual(r.returncode, 1)
        self.assertIn('no group "no-such-group-xsr"', r.stderr)


class StartUp(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-start-")
        self.pid = None

    def tearDown(self):
        if self.pid and pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(self.pid), 10, "daemon to die")
        shutil.rmtree(self.base, ignore_errors=True)

    def test_daemonize_returns_when_serving(self):
        pidfile = os.path.join(self.base, "pid")
        run_dir = os.path.join(self.base, "run")
        r = run(["--data-dir", os.path.join(self.base, "data"), "--run-dir", run_dir,
                 "--pid-file", pidfile, "-P"])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(pidfile) as f:
            self.pid = int(f.read())
        self.assertEqual(r.stdout.strip(), str(self.pid))
        # serving as soon as the command returned
        with Conn(os.path.join(run_dir, "socket")) as c:
            self.assertEqual(c.directory("/"), ["tool"])
        os.kill(self.pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(self.pid), 10, "daemon to stop")
        self.assertFalse(os.path.exists(pidfile))

    def test_daemonize_reports_failure(self):
        data = os.path.join(self.base, "data")
        os.makedirs(data)
        with open(os.path.join(data, "identity"), "w") as f:
            f.write("host=other\nid=1\nincarnation=1\n")
        r = run(["--data-dir", data, "--run-dir", os.path.join(self.base, "run"),
                 "--host-name", "mine"])
        self.assertEqual(r.returncode, 1)
        self.assertIn('belongs to host "other", not "mine"', r.stderr)

    def test_xenstored_path_names_the_socket(self):
        sock = os.path.join(self.base, "mysock")
        d = Daemon("ours", base=self.base)
        # no --run-dir here: start by hand
        pidfile = os.path.join(self.base, "p")
        env = {"XENSTORED_PATH": sock, "XENSTORED_RUNDIR": os.path.join(self.base, "rd")}
        r = run(["--data-dir", d.data_dir, "--pid-file", pidfile], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(pidfile) as f:
            self.pid = int(f.read())
        self.assertTrue(os.path.exists(sock))
        self.assertTrue(os.path.exists(sock + "_ro"))
        # Xen's client finds it the same way
        out = subprocess.run(["xenstore-ls", "/"], env=dict(os.environ, XENSTORED_PATH=sock),
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("tool", out.stdout)


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, b"%d\\n" % os.getpid())
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


# A client run as an unprivileged user (nobody, group nogroup): prints
# "ok <reply payload>" or "refused <errno name>" for a READ, or WRITE.
AS_NOBODY = r"""
import errno, socket, struct, sys
path, op = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(path)
except OSError as e:
    print("refused", errno.errorcode[e.errno]); sys.exit(0)
if op == "read":
    body = b"/acc/x\0"; t = 2
else:
    body = b"/acc/x\0nobody"; t = 11
s.sendall(struct.pack("<IIII", t, 1, 0, len(body)) + body)
h = s.recv(16)
t, _, _, n = struct.unpack("<IIII", h)
p = b""
while len(p) < n:
    p += s.recv(n - len(p))
print("error" if t == 16 else "ok", p.rstrip(b"\0").decode())
"""


class SocketAccess(unittest.TestCase):
    """Both sockets are root's alone by default (as Xen's); a group may be
    given socket_ro, for reading only. Files with requests' payloads are
    0600. Clients run as nobody through setpriv."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-access-")
        os.chmod(self.base, 0o755)  # so that only the sockets' modes decide
        self.d = None

    def tearDown(self):
        if self.d:
            self.d.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)

    def as_nobody(self, path, op):
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                            "--clear-groups", "/usr/bin/python3", "-c",
                            AS_NOBODY, path, op],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def start(self, args=()):
        self.d = Daemon("ours", base=self.base,
                        args=["-T", os.path.join(self.base, "trace"),
                              "--log-file", os.path.join(self.base, "log")] +
                        list(args)).start()
        with Conn(self.d.socket) as c:
            c.write("/acc/x", "root's")

    def test_nobody_reaches_no_socket_by_default(self):
        self.start()
        for path in (self.d.socket, self.d.socket_ro):
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, path)
            self.assertEqual(self.as_nobody(path, "read"), "refused EACCES",
                             path)
        # what holds requests' payloads is root's alone
        for name in ("trace", "log"):
            mode = os.stat(os.path.join(self.base, name)).st_mode & 0o777
            self.assertEqual(mode, 0o600, name)
        with Conn(self.d.socket) as c:
            c.control("memreport", os.path.join(self.base, "report"))
        mode = os.stat(os.path.join(self.base, "report")).st_mode & 0o777
        self.assertEqual(mode, 0o600)

    def test_a_group_may_read_through_socket_ro(self):
        self.start(["--socket-ro-group", "nogroup"])
        self.assertEqual(os.stat(self.d.socket_ro).st_mode & 0o777, 0o660)
        self.assertEqual(self.as_nobody(self.d.socket_ro, "read"),
                         "ok root's")
        self.assertEqual(self.as_nobody(self.d.socket_ro, "write"),
                         "error EACCES")
        self.assertEqual(self.as_nobody(self.d.socket, "read"),
                         "refused EACCES")
        with Conn(self.d.socket) as c:
            self.assertEqual(c.read("/acc/x"), b"root's")

    def test_an_unknown_group_is_refused(self):
        r = run(["--data-dir", os.path.join(self.base, "data"),
                 "--run-dir", os.path.join(self.base, "run"), "-N",
                 "--socket-ro-group", "no-such-group-xsr"])
        self.assertEqual(r.returncode, 1)
        self.assertIn('no group "no-such-group-xsr"', r.stderr)


class StartUp(unittest.TestCase):
    """Starting wherever Xen's daemon starts: a dom0 whose host name is not
    set yet, a restart while the previous daemon still exits."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-start-")
        self.data = os.path.join(self.base, "data")
        self.log = os.path.join(self.base, "log")
        self.pids = []

    def tearDown(self):
        for pid in self.pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: not pid_alive(pid), 10, "pid %d to die" % pid)
        shutil.rmtree(self.base, ignore_errors=True)

    def start(self, extra=(), uts_name=None):
        """Start daemonized; returns the CompletedProcess (pid recorded)."""
        pidfile = os.path.join(self.base, "pid")
        argv = [XENSTORED, "--data-dir", self.data, "--run-dir",
                os.path.join(self.base, "run"), "--pid-file", pidfile,
                "--log-file", self.log] + list(extra)
        if uts_name is not None:
            # a UTS namespace of its own, so the host name can be anything
            # (hostname(1) refuses names like "(none)"; the kernel does not)
            argv = ["unshare", "--uts", "/usr/bin/python3", "-c",
                    "import os, socket, sys; socket.sethostname(sys.argv[1]); "
                    "os.execv(sys.argv[2], sys.argv[2:])", uts_name] + argv
        e = dict(os.environ)
        e.pop("XENSTORED_PATH", None)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           env=e, stdin=subprocess.DEVNULL)
        if r.returncode == 0:
            with open(pidfile) as f:
                self.pids.append(int(f.read()))
        return r

    def stop(self):
        pid = self.pids.pop()
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(pid), 10, "daemon to stop")

    def identity_host(self):
        with open(os.path.join(self.data, "identity")) as f:
            return re.search(r"^host=(.*)$", f.read(), re.M).group(1)

    def read_log(self):
        with open(self.log) as f:
            return f.read()

    def test_unset_host_name(self):
        r = self.start(uts_name="(none)")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.identity_host(), "dom0")
        self.assertIn('system host name "(none)" is not usable as this '
                      'host\'s name: using "dom0"', self.read_log())
        with Conn(os.path.join(self.base, "run", "socket")) as c:
            c.write("/kept", "yes")
        self.stop()
        # the name is recorded: a host name set later changes nothing
        r = self.start(uts_name="laterhost")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.identity_host(), "dom0")
        with Conn(os.path.join(self.base, "run", "socket")) as c:
            self.assertEqual(c.read("/kept"), b"yes")
        self.stop()

    def test_sanitised_host_name(self):
        r = self.start(uts_name="my box")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.identity_host(), "my-box")
        self.stop()

    def test_bad_explicit_host_name_is_refused(self):
        r = self.start(extra=["--host-name", "bad name"])
        self.assertEqual(r.returncode, 1)
        self.assertIn('--host-name "bad name" is not valid', r.stderr)

    def hold_lock(self, seconds):
        os.makedirs(self.data, exist_ok=True)
        p = subprocess.Popen(["/usr/bin/python3", "-c", HOLD_LOCK,
                              os.path.join(self.data, "lock"), str(seconds)],
                             stdout=subprocess.PIPE, text=True)
        self.pids.append(p.pid)
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.wait, 20)
        self.assertEqual(p.stdout.readline().strip(), "locked")
        return p

    def test_waits_for_an_exiting_daemon(self):
        holder = self.hold_lock(1.5)
        t = time.monotonic()
        r = self.start()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(time.monotonic() - t, 1.0)
        log = self.read_log()
        self.assertIn("is locked by xenstored pid %d: waiting up to 10 s"
                      % holder.pid, log)
        self.assertIn("lock taken after", log)
        self.stop()

    def test_second_start_is_harmless(self):
        # Debian's /etc/init.d/xen knows only Xen's daemons as running: a
        # second `start` runs us again; like Xen's C xenstored (whose pid
        # file is locked) we exit 0 at once and leave the first alone
        r = self.start()
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = self.pids[-1]
        t = time.monotonic()
        r = self.start()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(time.monotonic() - t, 5)
        self.assertIn("already running (pid %d, pid file" % pid, r.stderr)
        self.assertEqual(self.pids[-1], pid)
        self.assertTrue(pid_alive(pid))
        with Conn(os.path.join(self.base, "run", "socket")) as c:
            self.assertEqual(c.directory("/"), ["tool"])
        self.stop()

    def test_refuses_a_live_holder_after_the_wait(self):
        holder = self.hold_lock(60)
        t = time.monotonic()
        r = self.start()
        took = time.monotonic() - t
        self.assertEqual(r.returncode, 1)
        self.assertIn("is in use by another xenstored", r.stderr)
        self.assertIn("held by pid %d for 10 s" % holder.pid, r.stderr)
        self.assertGreater(took, 9.5)
        self.assertLess(took, 30)
        holder.kill()


if __name__ == "__main__":
    unittest.main(verbosity=2)
