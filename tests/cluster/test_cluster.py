#!/usr/bin/python3
"""End-to-end tests of a cluster of xenstored members.

Real daemons run on 127.0.0.1 (deploy/cluster.sh), driven by real clients:
Xen's xenstore-* tools and test-xenstore, the raw wire client of
tests/lib/xsproto.py, and xsadm. Every TestCase class runs one cluster in
its own temporary BASEDIR and stops every daemon by PID at the end, even on
failure (cluster.sh down, then SIGKILL of the PIDs in BASEDIR/host*/
xenstored.pid and of any daemon whose command line names BASEDIR; a reaper
process does the same if this process dies). Every wait is bounded, and a
per-test alarm bounds each test as a whole.

    /usr/bin/python3 tests/cluster/test_cluster.py -v            # all
    /usr/bin/python3 tests/cluster/test_cluster.py -v TestNoQuorum
    ctest -R cluster_e2e                                          # via CTest

Environment: XSR_BIN (binaries, default build/bin), XSR_KEEP=1 keeps the
BASEDIRs (and their logs), XSR_CLUSTER_STRICT=1 runs the tests of known
bugs as ordinary tests (by default they are expected failures, so that a
fix shows up as an "unexpected success").

Failover times and other measurements are printed at the end of each
file's classes.

This file runs the three files of the suite, file by file (one cluster per
class): test_cluster_basic.py (TestThreeMembers: clients, replicas, status,
test-xenstore and admin commands on a follower, a follower killed, the
leader SIGSTOPped), test_cluster_failover.py (TestLeaderFailover: kill -9
of the leader while clients write, catching up by snapshot;
TestFiveMembers: two failures; TestRestartAll; TestSnapshotWhileTaking;
TestNoQuorum: EIO after commit-timeout, reads served) and
test_cluster_membership.py (TestMembership: add, promote, remove while
clients write; TestRolesAndErrors: transfer, demote/promote, xsadm's errors
and exit codes; TestAdminOnLeader). The fixture is clusterlib.py.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import suite  # noqa: E402
import test_cluster_basic  # noqa: E402
import test_cluster_failover  # noqa: E402
import test_cluster_membership  # noqa: E402

suite.combine(globals(), (test_cluster_basic, test_cluster_failover,
                          test_cluster_membership))

if __name__ == "__main__":
    unittest.main(verbosity=2)
