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
import socket
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
        self.assertIn("bad3.conf:1: syntax error", r.stderr)
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


def listening_port():
    """A socket listening on a free 127.0.0.1 port (the caller closes it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class ConfigReport(unittest.TestCase):
    """Every bad value of the file with FILE:LINE and key, all at once;
    --check-config; a member's entry against its member = line; addresses
    and bind errors before the data directory is touched."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-cfg-")
        self.data = os.path.join(self.base, "data")
        self.rund = os.path.join(self.base, "run")

    def tearDown(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def write(self, text, name="x.conf"):
        p = os.path.join(self.base, name)
        with open(p, "w") as f:
            f.write("[xenstored]\ndata-dir = %s\nrun-dir = %s\n" % (self.data, self.rund) + text)
        return p

    def member(self, raft, peer, extra="", members=None, name="x.conf"):
        if members is None:
            members = "member = 1 host1 %s %s\n" % (raft, peer)
        return self.write("[member]\nid = 1\nname = host1\nraft-address = %s\n"
                          "peer-address = %s\n[cluster]\ninsecure = true\n%s%s"
                          % (raft, peer, extra, members), name)

    def untouched(self):
        self.assertFalse(os.path.exists(self.data), "the data directory was created")
        self.assertFalse(os.path.exists(self.rund), "the run directory was created")

    def test_every_bad_value_with_file_line_and_key(self):
        conf = self.write("entry-nb = lots\n"                 # 4
                          "no-such-key = 1\n"                 # 5
                          "no-fork = maybe\n"                 # 6
                          "[member]\n"                        # 7
                          "id = 0\n"                          # 8
                          "name = bad name!\n"                # 9
                          "raft-address = localhost:7301\n"   # 10
                          "[cluster]\n"                       # 11
                          "election-timeout = -5\n"           # 12
                          "standalone = perhaps\n"            # 13
                          "bogus = 1\n"                       # 14
                          "[weird]\n"                         # 15
                          "x = 1\n"                           # 16
                          "no equals sign here\n")            # 17
        for extra in ([], ["--check-config"]):
            r = run(["--config", conf] + extra)
            self.assertEqual(r.returncode, 1, r.stderr)
            for want in [
                    'x.conf:4: [xenstored] entry-nb: invalid value "lots"',
                    'x.conf:5: [xenstored] no-such-key: unknown key "no-such-key"',
                    'x.conf:6: [xenstored] no-fork: no-fork wants true or false',
                    'x.conf:8: [member] id: bad member id "0"',
                    'x.conf:9: [member] name: bad name "bad name!"',
                    'x.conf:10: [member] raft-address: bad raft address "localhost:7301"',
                    'x.conf:12: [cluster] election-timeout: invalid value "-5"',
                    'x.conf:13: [cluster] standalone: standalone = true or false',
                    'x.conf:14: [cluster] bogus: unknown key "bogus" in [cluster]',
                    'x.conf:16: unknown section [weird]',
                    'x.conf:17: syntax error']:
                self.assertIn(conf[:-len("x.conf")] + want, r.stderr)
            self.assertEqual("ok" in r.stdout, False)
            self.untouched()
        # the command line's errors too, in the same run
        r = run(["--config", conf, "-E", "12x"])
        self.assertIn('invalid value "12x" for --entry-nb', r.stderr)
        self.assertIn("x.conf:4:", r.stderr)

    def test_check_config_ok(self):
        conf = self.write("entry-nb = 5\n")
        r = run(["--config", conf, "--check-config", "-W", "3"])
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "ok: a cluster of one, data in %s\n" % self.data)
        self.untouched()
        raft, peer = ("127.0.0.1:%d" % p for p in free_ports(2))
        conf = self.member(raft, peer)
        r = run(["--config", conf, "--check-config"])
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "ok: cluster member host1, data in %s\n" % self.data)
        self.untouched()
        # a bad command line is an error of the check too
        r = run(["--config", conf, "--check-config", "-E", "x"])
        self.assertEqual(r.returncode, 1)
        self.assertNotIn("ok", r.stdout)
        self.untouched()

    def test_check_config_of_missing_credentials(self):
        raft, peer = ("127.0.0.1:%d" % p for p in free_ports(2))
        conf = self.write("[member]\nid = 1\nname = host1\nraft-address = %s\n"
                          "peer-address = %s\n[cluster]\nca-file = %s/ca.pem\n"
                          "cert-file = %s/m.pem\nkey-file = %s/m.key\n"
                          % (raft, peer, self.base, self.base, self.base))
        r = run(["--config", conf, "--check-config"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("TLS credentials", r.stderr)
        self.untouched()

    def test_member_entry_against_its_line(self):
        raft, peer, other_raft, other_peer = ("127.0.0.1:%d" % p for p in free_ports(4))
        for members, wants in [
                ("member = 1 host9 %s %s\n" % (raft, peer),
                 ["[member] name = host1, but line 11 lists member 1 with host9"]),
                ("member = 1 host1 %s %s\n" % (other_raft, other_peer),
                 ["[member] raft-address = %s, but line 11 lists member 1 with %s" % (raft, other_raft),
                  "[member] peer-address = %s, but line 11 lists member 1 with %s" % (peer, other_peer)]),
                ("member = 2 host1 %s %s\n" % (other_raft, other_peer),
                 ["line 11 lists host1 as member 2"]),
                ("member = 1 host1 %s %s\nmember = 2 host2 %s %s\n" % (raft, peer, peer, other_peer),
                 ["x.conf:12: [cluster] member: member 2 (host2) is listed twice: the same "
                  "address as on line 11"]),
        ]:
            conf = self.member(raft, peer, members=members)
            for extra in ([], ["--check-config"]):
                r = run(["--config", conf] + extra)
                self.assertEqual(r.returncode, 1, members)
                for want in wants:
                    self.assertIn(want, r.stderr, members)
                self.untouched()
        # a member not among the initial ones (it waits to be added) is fine
        conf = self.member(raft, peer, members="member = 2 host2 %s %s\n" % (other_raft, other_peer))
        r = run(["--config", conf, "--check-config"])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_addresses(self):
        for addr in ["127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1", ":7301", "localhost:7301",
                     "1.2.3:7301", "::1:7301", "[::1]:x", "[nope]:7301", "127.0.0.1:7301x"]:
            conf = self.member(addr, "127.0.0.1:7302", members="")
            r = run(["--config", conf, "--check-config"])
            self.assertEqual(r.returncode, 1, addr)
            self.assertIn('x.conf:7: [member] raft-address: bad raft address "%s"' % addr,
                          r.stderr, addr)
        conf = self.member("127.0.0.1:7301", "127.0.0.1:7302",
                           members="member = 2 h2 127.0.0.1:1 bad\n")
        r = run(["--config", conf, "--check-config"])
        self.assertIn('x.conf:11: [cluster] member: bad peer address "bad"', r.stderr)
        conf = self.member("127.0.0.1:7301", "127.0.0.1:7301")
        r = run(["--config", conf, "--check-config"])
        self.assertIn("raft and peer addresses must differ", r.stderr)

    def test_port_in_use_is_a_bind_error_before_the_data_directory(self):
        s, port = listening_port()
        try:
            other = "127.0.0.1:%d" % free_ports(1)[0]
            busy = "127.0.0.1:%d" % port
            for which, line, conf in [("peer", 8, self.member(other, busy, name="p.conf")),
                                      ("raft", 7, self.member(busy, other, name="r.conf"))]:
                for extra in (["-N"], [], ["--check-config"]):
                    t = time.monotonic()
                    r = run(["--config", conf] + extra)
                    self.assertLess(time.monotonic() - t, 5)
                    self.assertEqual(r.returncode, 1, extra)
                    self.assertIn("cannot bind [member] %s-address %s (%s:%d): "
                                  "Address already in use" % (which, busy, conf, line),
                                  r.stderr)
                    self.untouched()
        finally:
            s.close()

    def test_port_of_an_exiting_daemon_is_waited_for(self):
        """The port is held while the data directory's lock is (this
        member's previous daemon, exiting): the start waits, then serves."""
        import fcntl
        s, port = listening_port()
        raft = "127.0.0.1:%d" % free_ports(1)[0]
        conf = self.member(raft, "127.0.0.1:%d" % port)
        os.makedirs(self.data)
        lock = open(os.path.join(self.data, "lock"), "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        log = open(os.path.join(self.base, "log"), "wb")
        p = subprocess.Popen([XENSTORED, "-N", "--config", conf], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log, start_new_session=True,
                             env={k: v for k, v in os.environ.items() if k != "XENSTORED_PATH"})
        log.close()
        try:
            time.sleep(1.0)
            self.assertIsNone(p.poll())
            s.close()
            lock.close()  # the previous daemon is gone
            wait_for(lambda: os.path.exists(os.path.join(self.rund, "socket")) or
                     p.poll() is not None, 30, "the daemon to serve")
            self.assertIsNone(p.poll())
        finally:
            s.close()
            lock.close()
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        with open(os.path.join(self.base, "log")) as f:
            text = f.read()
        self.assertIn("peer-address 127.0.0.1:%d is in use and the data directory" % port, text)

    def test_address_not_of_this_host(self):
        # TEST-NET-1 (RFC 5737): on no host; the bind fails, nothing listens
        raft = "127.0.0.1:%d" % free_ports(1)[0]
        conf = self.member(raft, "192.0.2.1:7302")
        for extra in (["-N"], ["--check-config"]):
            r = run(["--config", conf] + extra)
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot bind [member] peer-address 192.0.2.1:7302", r.stderr)
            self.assertIn("not an address of this host", r.stderr)
            self.untouched()

    def test_help_documents_the_file(self):
        out = run(["--help"]).stdout
        for key in ["[xenstored]", "[member]", "[cluster]", "id = N", "name = HOST",
                    "raft-address", "peer-address", "member = ID NAME RAFT-ADDRESS PEER-ADDRESS",
                    "ca-file", "cert-file", "key-file", "insecure", "election-timeout",
                    "heartbeat-timeout", "commit-timeout", "adopt-after", "standalone =",
                    "standalone-after", "cold-start-wait", "--check-config"]:
            self.assertIn(key, out)
        # every [cluster] key the parser knows is in --help
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "node", "options.c")) as f:
            src = f.read()
        body = src[src.index("static int cluster_key("):src.index("/* [member]'s own entry")]
        for key in re.findall(r'!strcmp\(key, "([a-z-]+)"\)', body):
            if key != "key":  # the old shared key: refused, with a pointer
                self.assertIn(key, out)


PKG_DIR = os.environ.get("XSR_PKG_DIR")


@unittest.skipUnless(PKG_DIR, "XSR_PKG_DIR: the build with packaged defaults")
class PackagedDefaults(unittest.TestCase):
    """A daemon built with XSR_DEFAULT_CONFIG and XSR_DEFAULT_DATA_DIR
    (tests/CMakeLists.txt points both into the build tree), started as
    Debian's /etc/init.d/xen starts it: `$XENSTORED --pid-file FILE`, and
    nothing else (the test adds only $XENSTORED_RUNDIR, for the socket)."""

    def setUp(self):
        self.bin = os.path.join(PKG_DIR, "bin", "xenstored")
        self.conf = os.path.join(PKG_DIR, "xenstored.conf")
        self.data = os.path.join(PKG_DIR, "data")
        self.clean()
        self.base = tempfile.mkdtemp(prefix="xsr-pkg-")
        self.pidfile = os.path.join(self.base, "xenstore.pid")
        self.env = dict(os.environ)
        self.env.pop("XENSTORED_PATH", None)
        self.env["XENSTORED_RUNDIR"] = os.path.join(self.base, "run")

    def clean(self):
        shutil.rmtree(self.data, ignore_errors=True)
        if os.path.exists(self.conf):
            os.unlink(self.conf)

    def tearDown(self):
        try:
            with open(self.pidfile) as f:
                pid = int(f.read())
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not pid_alive(pid), 15, "the daemon to stop")
        except (OSError, ValueError):
            pass
        self.clean()
        shutil.rmtree(self.base, ignore_errors=True)

    def run_pkg(self, argv):
        return subprocess.run([self.bin] + argv, capture_output=True, text=True, timeout=60,
                              env=self.env, stdin=subprocess.DEVNULL)

    def start_and_stop(self):
        """Start as the init script does; return the quota report."""
        r = self.run_pkg(["--pid-file", self.pidfile])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.pidfile) as f:
            pid = int(f.read())
        with Conn(os.path.join(self.base, "run", "socket")) as c:
            c.write("/pkg", "1")
            quota = c.control("quota").decode()
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(pid), 15, "the daemon to stop")
        self.assertTrue(os.path.isdir(os.path.join(self.data, "raft")))
        return quota

    def test_no_config_file(self):
        self.assertRegex(self.start_and_stop(), r"nodes\s+:\s+1000 ")
        out = self.run_pkg(["--help"]).stdout
        self.assertIn("(default %s)" % self.data, out)
        self.assertIn("(default: %s, if it" % self.conf, out)
        r = self.run_pkg(["--check-config"])
        self.assertEqual(r.stdout, "ok: a cluster of one, data in %s\n" % self.data)

    def test_default_config_file(self):
        with open(self.conf, "w") as f:
            f.write("# as packaged\n[xenstored]\nentry-nb = 77\n")
        os.chmod(self.conf, 0o600)
        r = self.run_pkg(["--check-config"])
        self.assertEqual((r.returncode, r.stdout), (0, "ok: a cluster of one, data in %s\n" % self.data))
        self.assertRegex(self.start_and_stop(), r"nodes\s+:\s+77 ")
        # --config names another file: the default is not read
        other = os.path.join(self.base, "other.conf")
        with open(other, "w") as f:
            f.write("[xenstored]\nentry-nb = 55\n")
        r = self.run_pkg(["--config", other, "--check-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.conf, "w") as f:
            f.write("[xenstored]\nentry-nb = many\n")
        r = self.run_pkg(["--pid-file", self.pidfile])
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:2: [xenstored] entry-nb: invalid value" % self.conf, r.stderr)
        r = self.run_pkg(["--config", other, "--check-config"])
        self.assertEqual(r.returncode, 0, r.stderr)


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


class Daemonize(unittest.TestCase):
    """Without -N the command returns once the daemon serves, or fails with
    the daemon's reason; XENSTORED_PATH names the socket."""

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

    def test_a_crash_leaves_its_stack_in_the_log(self):
        # glibc's "double free" aborts; a segfault is a segfault: either
        # way the log names the signal and the stack, the process still
        # dies of the signal (in sanitizer builds their own report does)
        for sig in (signal.SIGABRT, signal.SIGSEGV):
            r = self.start()
            self.assertEqual(r.returncode, 0, r.stderr)
            pid = self.pids.pop()
            os.kill(pid, sig)
            wait_for(lambda: not pid_alive(pid), 10, "the daemon to die")
            if os.environ.get("XSR_SANITIZE") == "1":
                continue
            log = self.read_log()
            self.assertIn("xenstored: fatal signal %d: stack" % sig, log)
            self.assertRegex(log, r"xenstored\(\+0x[0-9a-f]+\)")
            self.assertIn("libuv.so", log)

    def test_start_right_after_kill9_is_a_new_daemon(self):
        # a daemon killed a moment ago may still hold the lock and be
        # named by the pid file while the kernel tears it down: it does not
        # answer, so this is no "already running" (TestRestartAll met it)
        for _ in range(5):
            r = self.start()
            self.assertEqual(r.returncode, 0, r.stderr)
            old = self.pids[-1]
            os.kill(old, signal.SIGKILL)
            r = self.start()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("already running", r.stderr)
            self.assertNotEqual(self.pids[-1], old)
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
