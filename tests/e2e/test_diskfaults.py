#!/usr/bin/python3
"""Disk faults under our xenstored (issue 10, "Disk faults"):

- a full data disk (a 96 MB tmpfs): writers get EIO within the commit
  timeout, reads go on, writes resume by themselves once space returns,
  and nothing acknowledged is lost;
- a failed fsync (the LD_PRELOAD shim tests/lib/faultfs.c): the member
  stops, non-zero, with a clear log line, and every acknowledged write is
  there after a restart without the shim;
- a damaged or truncated snapshot: refused with a line naming the file,
  moved aside to NAME.damaged, the member starts from the older snapshot
  plus the log; alone, without the log behind it, the daemon refuses to
  start and changes nothing; in a 3-member cluster a member whose every
  snapshot is damaged is caught up by the leader.

Every daemon runs in its own temporary directory on Unix sockets (the
cluster on 127.0.0.1), every wait is bounded, every process is stopped by
PID, and the tmpfs is unmounted in tearDown.
"""
import errno
import glob
import json
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
from daemon import Daemon, BIN, REPO, wait_for  # noqa: E402
from xsproto import Conn, Closed  # noqa: E402

FAULTFS = os.environ.get("XSR_FAULTFS", os.path.join(BIN, "..", "lib", "libxsr_faultfs.so"))
SANITIZED = os.environ.get("XSR_SANITIZE", "0") not in ("", "0", "OFF", "FALSE")
CLUSTER_SH = os.path.join(REPO, "deploy", "cluster.sh")
XSADM = os.path.join(BIN, "xsadm")


def preload_env(trigger):
    """The environment that puts the shim under the daemon (after the
    sanitizer runtime, which must come first in an ASan build)."""
    libs = [FAULTFS]
    if SANITIZED:
        asan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
        libs.insert(0, asan)
    return {"LD_PRELOAD": " ".join(libs), "XSR_FAULTFS_TRIGGER": trigger}


def snapshots(raft_dir):
    """Snapshot data files, oldest first (libraft's order: term, index)."""
    out = []
    for meta in glob.glob(os.path.join(raft_dir, "snapshot-*-*-*.meta")):
        name = meta[:-len(".meta")]
        t, i, s = (int(x) for x in os.path.basename(name).split("-")[1:])
        if os.path.exists(name):
            out.append(((t, i, s), name))
    return [n for _, n in sorted(out)]


def flip_bytes(path, at=None, n=8):
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        at = len(data) // 2 if at is None else at
        for k in range(at, min(at + n, len(data))):
            data[k] ^= 0xA5
        f.seek(0)
        f.write(data)


def truncate_half(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


class FullDisk(unittest.TestCase):
    """The data directory on a 96 MB tmpfs that the test fills up."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-disk-")
        self.mnt = os.path.join(self.base, "disk")
        os.mkdir(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", self.mnt],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            shutil.rmtree(self.base, ignore_errors=True)
            self.skipTest("cannot mount a tmpfs (needs root): " + r.stderr.strip())
        self.d = Daemon("ours", base=self.base)
        self.d.data_dir = os.path.join(self.mnt, "data")  # log and run dir stay off it
        self.d.start()

    def tearDown(self):
        try:
            self.d.stop(signal.SIGKILL)
        finally:
            r = subprocess.run(["umount", self.mnt], capture_output=True, timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", self.mnt], capture_output=True, timeout=30)
            shutil.rmtree(self.base, ignore_errors=True)

    def fill(self):
        """Fill the tmpfs to the last byte."""
        path = os.path.join(self.mnt, "filler")
        chunk = b"\xff" * (1 << 20)
        with open(path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(chunk)
            except OSError as e:
                self.assertEqual(e.errno, errno.ENOSPC)
        with open(os.path.join(self.mnt, "filler2"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\xff" * 4096)
            except OSError:
                pass
        return path

    def test_full_disk_eio_then_resume(self):
        acked = {}
        with Conn(self.d.socket, timeout=30) as c:
            for i in range(50):
                c.write("/full/k%d" % i, "v%d" % i)
                acked["/full/k%d" % i] = b"v%d" % i
            self.fill()
            # libraft writes into preallocated segments: the writes that
            # still fit there succeed; then they fail with EIO
            big = "x" * 3000
            t0 = time.monotonic()
            failed_after = None
            for i in range(20000):
                key = "/full/big%d" % i
                try:
                    c.write(key, big)
                    acked[key] = big.encode()
                except OSError as e:
                    self.assertEqual(e.errno, errno.EIO, e)
                    failed_after = time.monotonic() - t0
                    break
                self.assertLess(time.monotonic() - t0, 60, "writes never failed")
            self.assertIsNotNone(failed_after, "writes never failed")
            # reads keep working while the disk is full
            t1 = time.monotonic()
            for key in list(acked)[:50]:
                self.assertEqual(c.read(key), acked[key])
            self.assertLess(time.monotonic() - t1, 5)
            self.assertTrue(self.d.alive(), self.d.log_text())
        # space returns: writes resume by themselves
        os.unlink(os.path.join(self.mnt, "filler"))
        os.unlink(os.path.join(self.mnt, "filler2"))
        deadline = time.monotonic() + 30
        resumed = False
        with Conn(self.d.socket, timeout=30) as c:
            while time.monotonic() < deadline:
                try:
                    c.write("/full/after", "ok")
                    resumed = True
                    break
                except OSError as e:
                    self.assertEqual(e.errno, errno.EIO, e)
                    time.sleep(0.2)
            self.assertTrue(resumed, "writes did not resume:\n" + self.d.log_text())
            acked["/full/after"] = b"ok"
            for key, value in acked.items():
                self.assertEqual(c.read(key), value, key)
        log = self.d.log_text()
        self.assertNotIn("fatal:", log)
        # libraft refuses the appends (RAFT_NOSPACE) or retries the write
        self.assertRegex(log, r"the disk of the log in .* is full")
        self.assertNotIn("cannot append to the log", log)
        # once a minute at most, not once a request (the retries above
        # were refused many times over)
        self.assertLessEqual(log.count(" is full ("), 2, log[-3000:])
        # and all of it is on disk
        self.d.stop(signal.SIGKILL)
        self.d.start()
        with Conn(self.d.socket, timeout=30) as c:
            for key, value in acked.items():
                self.assertEqual(c.read(key), value, key)


class FsyncError(unittest.TestCase):
    """fsync/fdatasync and the log's O_DSYNC writes fail once armed."""

    def setUp(self):
        if not os.path.exists(FAULTFS):
            self.skipTest("no %s (build the xsr_faultfs target)" % FAULTFS)
        self.base = tempfile.mkdtemp(prefix="xsr-fsync-")
        self.trigger = os.path.join(self.base, "arm")
        self.d = Daemon("ours", base=self.base, env=preload_env(self.trigger))
        self.d.start()

    def tearDown(self):
        self.d.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)

    def test_failed_fsync_stops_the_member(self):
        acked = {}
        with Conn(self.d.socket, timeout=20) as c:
            for i in range(100):
                c.write("/sync/k%d" % i, "v%d" % i)
                acked["/sync/k%d" % i] = b"v%d" % i
        open(self.trigger, "w").close()
        answered = None
        try:
            with Conn(self.d.socket, timeout=20) as c:
                c.write("/sync/doomed", "x")
                answered = "ok"
        except (OSError, Closed) as e:
            answered = e
        # the write is never acknowledged: the member stops
        self.assertNotEqual(answered, "ok")
        wait_for(lambda: not self.d.alive(), 15, "the daemon to stop")
        rc = self.d.stop()
        self.assertNotEqual(rc, 0)
        log = self.d.log_text()
        self.assertRegex(log, r"fatal: fsync of the log in \S+ failed \(EIO.*\): stopping; "
                              r"this member re-syncs from its log and its peers on restart")
        self.assertNotIn("ERROR: AddressSanitizer", log)
        # without the shim every acknowledged write is there
        self.d.env = None
        self.d.start()
        with Conn(self.d.socket, timeout=20) as c:
            for key, value in acked.items():
                self.assertEqual(c.read(key), value, key)
            c.write("/sync/after", "ok")
            self.assertEqual(c.read("/sync/after"), b"ok")


class DamagedSnapshot(unittest.TestCase):
    """A single node with snapshots every 16 entries."""

    TRAILING = 64  # the log reaches back past the older snapshot

    def setUp(self):
        self.d = Daemon("ours", args=["--snapshot-threshold", "16",
                                      "--snapshot-trailing", str(self.TRAILING)])
        self.d.start()
        self.raft = os.path.join(self.d.data_dir, "raft")

    def tearDown(self):
        self.d.cleanup()

    def write_some(self, n=100):
        acked = {}
        with Conn(self.d.socket, timeout=20) as c:
            for i in range(n):
                c.write("/snap/k%d" % i, "v%d" % i)
                acked["/snap/k%d" % i] = b"v%d" % i
        wait_for(lambda: len(snapshots(self.raft)) >= 2, 10, "two snapshots")
        self.d.stop(signal.SIGTERM)
        snaps = snapshots(self.raft)
        self.assertGreaterEqual(len(snaps), 2, os.listdir(self.raft))
        return acked, snaps

    def check_recovered(self, acked, bad, what):
        self.d.start()
        log = self.d.log_text()
        name = os.path.basename(bad)
        self.assertRegex(log, r"snapshot \S*/%s is damaged \(%s\): refused"
                         % (re.escape(name), what))
        self.assertIn("moved %s and its .meta aside to %s.damaged" % (bad, name), log)
        self.assertTrue(os.path.exists(bad + ".damaged"))
        self.assertTrue(os.path.exists(bad + ".meta.damaged"))
        self.assertFalse(os.path.exists(bad))
        self.assertIn("starting from the older snapshot", log)
        with Conn(self.d.socket, timeout=20) as c:
            for key, value in acked.items():
                self.assertEqual(c.read(key), value, key)
            c.write("/snap/after", "ok")
        # and it stays so
        self.d.stop(signal.SIGKILL)
        self.d.start()
        with Conn(self.d.socket, timeout=20) as c:
            self.assertEqual(c.read("/snap/after"), b"ok")
            self.assertEqual(c.read("/snap/k99"), b"v99")

    def test_flipped_bytes_newest_refused_older_used(self):
        acked, snaps = self.write_some()
        flip_bytes(snaps[-1])
        self.check_recovered(acked, snaps[-1], "checksum mismatch")

    def test_truncated_newest_refused_older_used(self):
        acked, snaps = self.write_some()
        truncate_half(snaps[-1])
        self.check_recovered(acked, snaps[-1], r"\d+ bytes instead of \d+: truncated or extended")

    def test_damaged_meta_refused_older_used(self):
        acked, snaps = self.write_some()
        flip_bytes(snaps[-1] + ".meta", at=40, n=2)
        self.check_recovered(acked, snaps[-1], r"\.meta checksum mismatch")


class DamagedSnapshotNoLog(DamagedSnapshot):
    """Alone, with the log behind the newest snapshot compacted away."""

    TRAILING = 4

    def test_refuses_and_changes_nothing(self):
        acked, snaps = self.write_some()
        flip_bytes(snaps[-1])
        before = sorted(os.listdir(self.raft))
        with self.assertRaises(RuntimeError):
            self.d.start(timeout=20)
        log = self.d.log_text()
        self.assertRegex(log, r"snapshot \S*/%s is damaged \(checksum mismatch\): refused"
                         % re.escape(os.path.basename(snaps[-1])))
        self.assertIn("cannot recover alone", log)
        self.assertIn("nothing was changed on disk", log)
        self.assertEqual(sorted(os.listdir(self.raft)), before)

    # the recoveries above need the log behind the older snapshot
    test_flipped_bytes_newest_refused_older_used = None
    test_truncated_newest_refused_older_used = None
    test_damaged_meta_refused_older_used = None


class ClusterDamagedSnapshot(unittest.TestCase):
    """3 members (deploy/cluster.sh) that snapshot every 16 entries and keep
    4: a follower whose every snapshot is damaged is caught up by the
    leader."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="xsr-dsc-")
        self.env = dict(os.environ, XSR_BIN=BIN)
        self.env.pop("XENSTORED_PATH", None)
        self.sh("up", "3", self.base)
        self.sh("down", self.base)
        for i in (1, 2, 3):
            conf = os.path.join(self.base, "host%d" % i, "xenstored.conf")
            with open(conf) as f:
                text = f.read()
            text = text.replace("[xenstored]\n", "[xenstored]\nsnapshot-threshold = 16\n"
                                "snapshot-trailing = 4\n", 1)
            with open(conf, "w") as f:
                f.write(text)
        self.sh("up", "3", self.base)

    def tearDown(self):
        try:
            self.sh("down", self.base)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def sh(self, *argv):
        p = subprocess.run(["/bin/bash", CLUSTER_SH] + list(argv), capture_output=True,
                           text=True, timeout=120, env=self.env, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, "cluster.sh %s: %s%s" % (argv, p.stdout, p.stderr))
        return p.stdout

    def sock(self, i):
        return os.path.join(self.base, "host%d" % i, "run", "socket")

    def xsadm(self, i, *argv):
        env = dict(self.env)
        if SANITIZED:
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        return subprocess.run([XSADM, "--socket", self.sock(i), "--json"] + list(argv),
                              capture_output=True, text=True, timeout=60, env=env,
                              stdin=subprocess.DEVNULL)

    def status(self, i):
        p = self.xsadm(i, "cluster", "status")
        try:
            return json.loads(p.stdout) if p.returncode == 0 else None
        except ValueError:
            return None

    def healthy(self):
        st = self.status(1) or self.status(2) or self.status(3)
        if not st or not st.get("leader"):
            return None
        ms = st["members"]
        if len(ms) != 3 or not all(m.get("reachable") and m.get("serving") for m in ms):
            return None
        return st["leader"]

    def log(self, i):
        with open(os.path.join(self.base, "host%d" % i, "xenstored.log"), errors="replace") as f:
            return f.read()

    def test_follower_with_damaged_snapshots_catches_up(self):
        wait_for(self.healthy, 30, "a healthy cluster")
        leader = self.healthy()
        f = next(i for i in (3, 2, 1) if i != leader)
        other = next(i for i in (1, 2, 3) if i not in (leader, f))
        with Conn(self.sock(f), timeout=20) as c:
            for i in range(60):
                c.write("/dsc/f%d" % i, "f%d" % i)
        with Conn(self.sock(other), timeout=20) as c:
            for i in range(60):
                c.write("/dsc/o%d" % i, "o%d" % i)
        raft = os.path.join(self.base, "host%d" % f, "data", "raft")
        wait_for(lambda: len(snapshots(raft)) >= 1, 15, "a snapshot on host%d" % f)
        self.sh("stop", self.base, str(f))
        snaps = snapshots(raft)
        self.assertTrue(snaps)
        for s in snaps:
            flip_bytes(s)
        # the others go on meanwhile (and compact their logs)
        with Conn(self.sock(other), timeout=20) as c:
            for i in range(60, 100):
                c.write("/dsc/o%d" % i, "o%d" % i)
        self.sh("start", self.base, str(f))
        log = self.log(f)
        for s in snaps:
            self.assertRegex(log, r"snapshot \S*/%s is damaged \(checksum mismatch\): refused"
                             % re.escape(os.path.basename(s)))
            self.assertTrue(os.path.exists(s + ".damaged"))
            self.assertTrue(os.path.exists(s + ".meta.damaged"))
        self.assertIn("the leader catches this member up", log)
        wait_for(self.healthy, 30, "a healthy cluster again")
        # its own host's tree is back, from the leader
        with Conn(self.sock(f), timeout=20) as c:
            for i in range(60):
                self.assertEqual(c.read("/dsc/f%d" % i), b"f%d" % i)
            c.write("/dsc/f-after", "ok")
        deadline = time.monotonic() + 30
        while True:
            p = self.xsadm(f, "cluster", "verify")
            doc = json.loads(p.stdout) if p.stdout.strip() else {}
            if p.returncode == 0 and doc.get("ok") and doc.get("agree"):
                break
            self.assertLess(time.monotonic(), deadline, "verify: %s %s" % (p.stdout, p.stderr))
            time.sleep(0.5)
        self.assertEqual({m["status"] for m in doc["members"]}, {"ok"}, doc)


if __name__ == "__main__":
    unittest.main(verbosity=2)
