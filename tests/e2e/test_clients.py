#!/usr/bin/python3
"""End-to-end tests: Xen's own client tools against a xenstore daemon.

The daemon under test comes from $XSR_DAEMON: "ours" (default, our
xenstored from $XSR_BIN) or "c" (Xen 4.17's C xenstored run through
../shared/reference/refd).  The suite is written so that it passes against
the reference daemon; a drop-in replacement must pass it unchanged.

Clients exercised (Debian's Xen 4.17 packages):
  * the xenstore-* commands (xenstore-utils) and xenstore-control,
  * /usr/lib/xen-4.17/bin/test-xenstore (libxenstore's own test program),
  * python3-pyxs (a pure-Python client with its own framing code),
and a differential check: the same workload is run through a recording
proxy against the daemon under test and against the reference daemon, and
the two wire transcripts must be identical.

Every daemon is started fresh per TestCase class and stopped by PID; every
wait is bounded (subprocess timeouts, select timeouts, a per-test alarm).
Run:  XSR_DAEMON=c /usr/bin/python3 tests/e2e/test_clients.py [-v] [Class.test]

This file runs the suite's files, one after the other: test_clients_utils.py
(TestReadWrite, TestLsList, TestRmExists, TestChmod, TestWatch: the
xenstore-* commands), test_clients_xenbin.py (TestControl, TestXenstoreTest:
xenstore-control and test-xenstore), test_clients_pyxs.py (TestPyxs) and
test_clients_transcript.py (TestWireTranscript). What they share is in
clientlib.py.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import suite  # noqa: E402
import test_clients_utils  # noqa: E402
import test_clients_xenbin  # noqa: E402
import test_clients_pyxs  # noqa: E402
import test_clients_transcript  # noqa: E402

suite.combine(globals(), (test_clients_utils, test_clients_xenbin,
                          test_clients_pyxs, test_clients_transcript))

if __name__ == "__main__":
    unittest.main()
