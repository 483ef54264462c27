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

The files: diff_test.py (the options and the case driver), diff_parse.py
(the corpus parser), diff_run.py (one script against one daemon),
diff_normalise.py (the deliberate differences, all of them) and
diff_compare.py (comparing and printing transcripts).
"""
import argparse
import glob
import os
import signal
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True      # do not leave __pycache__ in tests/lib
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from daemon import Daemon  # noqa: E402

from diff_compare import compare, print_transcript, step_label  # noqa: E402
from diff_parse import ScriptError, parse_file  # noqa: E402
from diff_run import Run  # noqa: E402

DEFAULTS = {
    "settle_ms": 30,       # quiet period that ends a step on unsynchronised connections
    "straggle_ms": 5,      # quiet period after a successful sync barrier
    "settle_max_ms": 2000,  # upper bound for one step's settle phase
    "timeout_s": 5.0,      # bound for waiting for one reply
}


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
