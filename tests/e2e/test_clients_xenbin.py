#!/usr/bin/python3
"""e2e_clients: Xen's programs in /usr/lib/xen-4.17/bin against the daemon.

TestControl (xenstore-control: check, log, logfile, print, help, quota),
TestXenstoreTest (test-xenstore, libxenstore's own test program).
test_clients.py runs this file with the others; alone:

    /usr/bin/python3 tests/e2e/test_clients_xenbin.py -v
"""
import errno
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from clientlib import (DaemonCase, control_domain_table, control_quota_table,
                       run_tool, tool_path)


# ---------------------------------------------------------------------------
# xenstore-control


HELP_COMMANDS = ("check", "log", "quota", "quota-soft", "help")
DEFAULT_QUOTAS = {"nodes": 1000, "watches": 128, "transactions": 10,
                  "outstanding": 20, "transaction-nodes": 1024,
                  "memory": 2621440, "node-size": 2048, "path-max": 2048,
                  "permissions": 5}


class TestControl(DaemonCase):
    needs = ("xenstore-control", "xenstore-write", "xenstore-rm")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        p = run_tool(["xenstore-control", "quota", "0"], cls.env)
        cls.fresh_dom0 = (p.returncode, p.stdout.decode(errors="replace"))

    def ctl(self, *args, **kw):
        return self.xs("xenstore-control", *args, **kw).decode()

    def test_check(self):
        self.ctl("check", out="OK\n")
        self.ctl("check", "extra", rc=3, err=None)

    def test_quota_defaults(self):
        out = self.ctl("quota")
        self.assertEqual(control_quota_table(out), DEFAULT_QUOTAS)
        soft = self.ctl("quota-soft")
        self.assertEqual(control_quota_table(soft), {"memory": 2097152})

    def test_quota_set(self):
        self.ctl("quota", "set", "nodes", "2000", out="OK\n")
        self.addCleanup(run_tool, ["xenstore-control", "quota", "set", "nodes", "1000"],
                        self.env)
        self.assertEqual(control_quota_table(self.ctl("quota"))["nodes"], 2000)
        self.ctl("quota", "set", "memory", "3000000", out="OK\n")
        self.addCleanup(run_tool, ["xenstore-control", "quota", "set", "memory",
                                   str(DEFAULT_QUOTAS["memory"])], self.env)
        self.assertEqual(control_quota_table(self.ctl("quota"))["memory"], 3000000)
        # value 0 / unknown name are EINVAL: the tool prints the help text
        for bad in (("nodes", "0"), ("no-such-quota", "5")):
            err = self.xsp("xenstore-control", "quota", "set", *bad, rc=3, out="",
                           err=None).stderr.decode()
            self.assertTrue(err.startswith("Command not supported. Valid commands are:\n"), err)
        self.assertEqual(control_quota_table(self.ctl("quota"))["nodes"], 2000)

    def test_quota_soft_set(self):
        self.ctl("quota-soft", "set", "memory", "1048576", out="OK\n")
        self.addCleanup(run_tool, ["xenstore-control", "quota-soft", "set", "memory",
                                   "2097152"], self.env)
        self.assertEqual(control_quota_table(self.ctl("quota-soft")), {"memory": 1048576})

    def test_quota_domain0(self):
        rc, text = self.fresh_dom0
        self.assertEqual(rc, 0, text)
        domid, fresh = control_domain_table(text)
        self.assertEqual(domid, 0)
        self.assertEqual(sorted(fresh), sorted(["nodes", "watches", "transactions",
                                                "outstanding", "memory"]))
        # a fresh daemon has '/', '/tool' and '/tool/xenstored'
        self.assertEqual(fresh["nodes"], 3)
        self.assertEqual(fresh["watches"], 0)
        self.assertEqual(fresh["transactions"], 0)
        self.assertGreater(fresh["memory"], 0)

        def nodes():
            return control_domain_table(self.ctl("quota", "0"))[1]["nodes"]
        before = nodes()
        self.xs("xenstore-write", "/qc/a/b", "x")
        self.assertEqual(nodes(), before + 3)
        self.xs("xenstore-rm", "/qc")
        self.assertEqual(nodes(), before)

    def test_quota_unknown_domain(self):
        self.ctl("quota", "4242", rc=3, out="",
                 err="Error %d when trying to execute command.\n" % errno.ENOENT)

    def test_log_switch(self):
        self.ctl("log", "off", out="OK\n")
        self.ctl("log", "on", out="OK\n")
        err = self.xsp("xenstore-control", "log", rc=3, out="", err=None).stderr.decode()
        self.assertTrue(err.startswith("Command not supported."), err)

    def test_logfile_and_print(self):
        d = tempfile.mkdtemp(prefix="xsr-e2e-log-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "trace.log")
        self.ctl("logfile", path, out="OK\n")
        self.ctl("print", "hello-from-e2e", out="OK\n")
        self.assertTrue(os.path.exists(path))
        self.ctl("log", "off", out="OK\n")

    def test_help(self):
        out = self.ctl("help")
        self.assertTrue(out.endswith("\n\n"), repr(out))
        names = [line.split("\t", 1)[0] for line in out[:-2].split("\n")
                 if "\t" in line]
        for cmd in HELP_COMMANDS:
            self.assertIn(cmd, names, out)

    def test_unknown_command(self):
        help_out = self.ctl("help")
        self.xs("xenstore-control", "no-such-command", "arg", rc=3, out="",
                err="Command not supported. Valid commands are:\n" + help_out)

    def test_client_side_errors(self):
        self.xs("xenstore-control", rc=2, err=None)
        env = dict(self.env, XENSTORED_PATH=os.path.join(self.daemon.base, "nope"))
        self.xs("xenstore-control", "check", rc=1, env=env,
                err="Failed to contact Xenstored.\n")


# ---------------------------------------------------------------------------
# test-xenstore


TEST_NAMES = ["read 1", "read 2000", "write 1", "write 2000", "dir", "rm node",
              "rm dir", "ta empty", "ta empty x", "ta rmw", "ta rmw x", "ta err"]


class TestXenstoreTest(DaemonCase):
    needs = ("test-xenstore",)

    def tearDown(self):
        # the program cleans up after itself (in a transaction loop)
        self.assert_missing("/local/domain/0/xenstore-test")
        super().tearDown()

    def test_list(self):
        out = self.xs("test-xenstore", "-l").decode()
        names = [line.split(":")[0].rstrip() for line in out.splitlines()]
        self.assertEqual(names, TEST_NAMES)

    def test_all(self):
        out = self.xs("test-xenstore", timeout=120).decode()
        lines = out.splitlines()
        self.assertEqual(len(lines), 12, out)
        for name, line in zip(TEST_NAMES, lines):
            self.assertRegex(line, r"^%s *: \d+ ns$" % re.escape(name))

    def test_iterations(self):
        for name in ("ta err", "read 2000", "ta rmw", "rm dir", "dir"):
            out = self.xs("test-xenstore", "-t", name, "-i", "100", timeout=120).decode()
            self.assertRegex(out, r"^%s *: avg: \d+ ns \(\d+ ns \.\. \d+ ns\)\n$"
                             % re.escape(name))

    def test_random_mix(self):
        self.xs("test-xenstore", "-r", "2", timeout=60)

    def test_twice_concurrently(self):
        # two instances at once (different pids, same parent directory)
        argv = [tool_path("test-xenstore"), "-t", "ta err", "-i", "200"]
        procs = [subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
        try:
            for p in procs:
                out, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 0, (out, err))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)

    def test_no_daemon(self):
        env = dict(self.env, XENSTORED_PATH=os.path.join(self.daemon.base, "nope"))
        self.xs("test-xenstore", rc=2, env=env, err=None,
                out=None)


# ---------------------------------------------------------------------------

if __name__ == "__main__":
    unittest.main()
