#!/usr/bin/python3
"""The benchmark cannot rot: deploy/bench.sh --smoke runs every workload
against our daemon, our 3-member cluster, Xen 4.17's C xenstored and
oxenstored (and etcd if it is installed), prints the table, and leaves no
process or temporary directory behind. xsbench --help names every workload
it accepts.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("XSR_BIN", os.path.join(REPO, "build", "bin"))

WORKLOADS = ["read", "dir100", "overwrite", "write-one", "write-many"]
MODES = {"seq": (1, 1), "pipe32": (1, 32), "c8": (8, 1), "c64": (64, 1)}


class Help(unittest.TestCase):
    def test_help_names_every_workload(self):
        out = subprocess.run([os.path.join(BIN, "xsbench"), "--help"],
                             capture_output=True, text=True, timeout=10).stdout
        with open(os.path.join(REPO, "tests", "bench", "xsbench.c")) as f:
            src = f.read()
        table = src[src.index("workloads[] = {"):]
        table = table[:table.index("};")]
        names = re.findall(r'\{"([a-z0-9-]+)",', table)
        self.assertGreater(len(names), 8)
        for n in names:
            self.assertRegex(out, r"\n  %s " % re.escape(n), n)
        # and the options it parses
        opts = re.findall(r'\{"([a-z-]+)", (?:required|no)_argument',
                          src[src.index("longopts[] = {"):])
        for o in opts:
            self.assertIn("--" + o, out, o)

    def test_bad_usage(self):
        xsbench = os.path.join(BIN, "xsbench")
        for argv in ([], ["no-such-workload"], ["-c", "0", "read"], ["-t", "x", "read"]):
            r = subprocess.run([xsbench] + argv, capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, argv)


class Smoke(unittest.TestCase):
    def test_smoke_run(self):
        tmp = tempfile.mkdtemp(prefix="xsr-bench-test-")
        try:
            self._run(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _run(self, tmp):
        out = os.path.join(tmp, "out")
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        env = dict(os.environ, XSR_BIN=BIN, TMPDIR=work)
        env.pop("XENSTORED_PATH", None)
        plot = os.path.join(out, "latency.png")
        args = [os.path.join(REPO, "deploy", "bench.sh"), "--smoke", "--out", out]
        if shutil.which("gnuplot"):
            args += ["--plot", plot]
        r = subprocess.run(args, capture_output=True, text=True, timeout=600,
                           env=env, stdin=subprocess.DEVNULL)
        sys.stdout.write(r.stdout[-6000:])
        sys.stderr.write(r.stderr[-4000:])
        self.assertEqual(r.returncode, 0, "bench.sh --smoke failed")

        # the table was printed, with the targets and the floors
        self.assertIn("ops/s", r.stdout)
        self.assertIn("targets (issue 6):", r.stdout)
        self.assertRegex(r.stdout, r"fdatasync p50 [0-9.]+ us")
        self.assertRegex(r.stdout, r"failover: .* [0-9]+ ms")
        self.assertRegex(r.stdout, r"restart and serve with [0-9]+ nodes: [0-9.]+ s")
        self.assertNotIn("FAILED", r.stdout)
        # issue 16's figure: the store move at INTRODUCE, with the C row
        self.assertRegex(r.stdout, r"\ncluster +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +-?[0-9.]+ +-?[0-9.]+")
        self.assertRegex(r.stdout, r"\nc +[0-9.]+ +[0-9.]+ +- ")
        self.assertIn("target (issue 16)", r.stdout)
        for w in WORKLOADS:
            for m in MODES:
                for daemon in ("ours (1 node)", "C xenstored 4.17"):
                    self.assertRegex(r.stdout, r"\n%s +%s +%s +[0-9]" % (
                        re.escape(w), m, re.escape(daemon)), (w, m, daemon))

        # every workload ran against ours and the C daemon, without errors
        rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl")) if l.strip()]
        self.assertFalse([x for x in rows if x.get("failed")])
        runs = {}
        for x in rows:
            if "conns" in x:
                runs.setdefault((x["workload"], x["conns"], x["depth"], x["label"]), []).append(x)
        expect = [(w, c, d) for w in WORKLOADS for (c, d) in MODES.values()]
        expect += [("txn", 8, 1), ("boot", 1, 1)]
        for (w, c, d) in expect:
            for label in ("ours", "c", "o", "leader", "follower"):
                if label in ("leader", "follower") and w in ("read", "dir100"):
                    continue
                got = runs.get((w, c, d, label))
                self.assertTrue(got, (w, c, d, label))
                for x in got:
                    self.assertGreater(x["ops"], 0, x)
                    if label in ("ours", "c", "leader", "follower"):
                        self.assertEqual(x["errors"], 0, x)
                    if w == "txn":
                        self.assertTrue(x["verified"], x)
        if shutil.which("etcd"):
            self.assertTrue(runs.get(("overwrite", 64, 1, "etcd")))
        if shutil.which("gnuplot"):
            self.assertGreater(os.path.getsize(plot), 1000)

        # nothing left behind
        self.assertEqual(os.listdir(work), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
