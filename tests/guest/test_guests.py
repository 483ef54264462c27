#!/usr/bin/python3
"""Guests over shared rings: the test process plays Xen domains talking
xenbus to a xenstored through the shim's file model (tests/lib/simguest.py,
../shared/reference/xsshim.c), and dom0's toolstack over the Unix socket.

The expected values are those of Xen 4.17's C xenstored (Debian 12's
cxenstored 4.17.7, run through ../shared/reference/refd), measured with
this suite; each assertion says where the number comes from.

    python3 tests/guest/test_guests.py --daemon c -v         # the reference
    python3 tests/guest/test_guests.py --daemon ours -v      # ours (sim backend)
    XSR_DAEMON=o python3 tests/guest/test_guests.py -v TestQuotas

Every test gets a fresh daemon in its own temporary directory (shim dir =
BASE/shim), stopped by PID at the end (and at exit, if a test dies); every
wait is bounded and a per-test alarm bounds each test. XSR_KEEP=1 keeps
the directories.

This file runs the suite's files, one after the other:
test_guests_protocol.py (TestBasics, TestRestrictedDomains, TestWatches,
TestTransactions), test_guests_limits.py (TestQuotas, TestHostileRing,
TestFlood), test_guests_lifecycle.py (TestLifecycle, TestReconnect,
TestDom0Ring), test_guests_restart.py (TestRestart, TestCluster: ours
only) and test_guests_hostile.py (TestHostileGuest: ours only). GuestTest and the --daemon option are in guestlib.py.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import suite  # noqa: E402
from guestlib import KIND  # noqa: E402  (takes --daemon off the command line)
import test_guests_protocol  # noqa: E402
import test_guests_limits  # noqa: E402
import test_guests_lifecycle  # noqa: E402
import test_guests_restart  # noqa: E402
import test_guests_hostile  # noqa: E402

suite.combine(globals(), (test_guests_protocol, test_guests_limits,
                          test_guests_lifecycle, test_guests_restart,
                          test_guests_hostile))

if __name__ == "__main__":
    print("daemon under test: %s" % KIND, file=sys.stderr)
    unittest.main()
