#!/usr/bin/python3
"""Bad-input test: hostile or malformed bytes on the Unix socket never take
the daemon down.

For every case a fresh *victim* connection sends the bad bytes and the test
asserts the outcome the victim sees: a specific reply (usually XS_ERROR with a
given name, with req_id and tx_id echoed) or the daemon closing the
connection within CLOSE_TIMEOUT. Then, after every case:
  (a) a *bystander* connection, open since the class started, still gets the
      right answer to a READ;
  (b) a brand-new connection can connect, WRITE and READ back;
  (c) the daemon process is alive.

Malformed requests are "primed": right before the bad request the victim
READs a missing node, so a daemon that answers with a stale errno (Xen 4.17
does, see XENSTORE-FACTS.md section 8) answers ENOENT/ENOMEM instead of
EINVAL and is caught. The stale_errno0 cases prime with a *successful*
request instead, which makes the reference daemon abort.

One daemon per test class; if a case kills it, that case fails and the next
case starts a fresh one.

Daemon kind: env XSR_DAEMON ("ours" by default, "c" = Xen 4.17 cxenstored via
tests/lib/daemon.py). Expected outcomes are those of OUR daemon. When
XSR_DAEMON=c, cases listed in REFERENCE_CRASHES (the reference aborts or
hangs) are skipped and cases listed in REFERENCE_DIFFERS expect what the
reference was observed to do (the survival checks still run for them).

Run:  XSR_DAEMON=c /usr/bin/python3 tests/e2e/test_badinput.py [-v]
      /usr/bin/python3 tests/e2e/test_badinput.py --table   (print the cases)

This file runs the suite's files, one after the other, and checks that the
reference tables name only known cases: test_badinput_framing.py
(TestFraming, TestZeroLength), test_badinput_args.py (TestMalformedArgs,
TestPaths), test_badinput_types.py (TestTypesAndTransactions,
TestStaleErrno) and test_badinput_floods.py (TestFloods). The outcomes, the
reference tables, the case registry and the base class are in
badinputlib.py.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import suite  # noqa: E402
from badinputlib import REFERENCE_CRASHES, REFERENCE_DIFFERS, SPECS  # noqa: E402
import test_badinput_framing  # noqa: E402
import test_badinput_args  # noqa: E402
import test_badinput_types  # noqa: E402
import test_badinput_floods  # noqa: E402

suite.combine(globals(), (test_badinput_framing, test_badinput_args,
                          test_badinput_types, test_badinput_floods))


def _check_tables():
    for k in list(REFERENCE_CRASHES) + list(REFERENCE_DIFFERS):
        assert k in SPECS, "reference table names unknown case %r" % k


_check_tables()


def print_table():
    print("%-50s | %-60s | %s" % ("case", "sent", "expected (ours)"))
    for cid, (sent, exp) in SPECS.items():
        ref = ""
        if cid in REFERENCE_CRASHES:
            ref = "   [reference: CRASH: %s]" % REFERENCE_CRASHES[cid]
        elif cid in REFERENCE_DIFFERS:
            o, why = REFERENCE_DIFFERS[cid]
            ref = "   [reference: %s - %s]" % (o, why)
        print("%-50s | %-60s | %s%s" % (cid, sent, exp, ref))


if __name__ == "__main__":
    if "--table" in sys.argv:
        print_table()
        sys.exit(0)
    unittest.main()
