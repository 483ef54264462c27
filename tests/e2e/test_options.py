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
            ("[cluster]\nkey = 1234\n", "32 hex digits"),
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
        self.assertEqual(os.stat(self.d.socket_ro).st_mode & 0o777, 0o666)
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
