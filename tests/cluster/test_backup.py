#!/usr/bin/python3
"""cluster_backup: backup and restore, and recovery after the permanent
loss of a quorum (issue 14), on clusters from deploy/cluster.sh.

TestBackupRestore: a 3-member cluster writes on every host (values,
permissions, a transaction, a removed node); `xsadm cluster backup FILE`
writes a 0600 file; the daemon refuses a relative path; `xenstored
--restore` refuses a truncated file, a flipped byte in the state and in
the header, a wrong magic, an unknown version and a non-empty data
directory, each with the file's name and the reason, and creates nothing;
then the source is stopped and member 1 restores the file into a new,
empty data directory: its log says it restored the backup's index with the
backup's digest (the state re-encodes to the backup's very bytes), every
host tree (values and permissions, walked node by node) equals the
source's, a backup of the running restored member is the first one's
state byte for byte, it takes writes (its entries numbered above those its old data
directory wrote), and it grows with `xsadm cluster add`.

TestRecover: (1) a stopped member: three members write, all stop, two
data directories are destroyed, `xenstored --force-new-cluster` on the
third; (2) a running member of five: `xsadm cluster recover` is refused
while it leads, and, three members killed, while a fourth still answers;
that one killed too and the four data directories destroyed, it
recovers. Either way the
member serves alone with every acknowledged write, takes new writes, two
new members (fresh data directories, `cluster.sh new`) are added and
promoted, and `xsadm cluster verify` agrees.

Every daemon is stopped by PID (clusterlib), every wait is bounded, and
each test has an alarm.

    /usr/bin/python3 tests/cluster/test_backup.py -v     (XSR_BIN, XSR_KEEP=1)
"""
import json
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import BIN, CLUSTER_SH, Cluster, TEST_ALARM_S  # noqa: E402
from daemon import pid_alive, wait_for  # noqa: E402

XENSTORED = os.path.join(BIN, "xenstored")
HDR = 48  # sm.h: the backup header


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def write_forest(tc, c, ids, tag):
    """Values, permissions, a transaction and a removal on every host;
    returns {host: {path: value}} of what was acknowledged."""
    acked = {}
    for i in ids:
        host = "host%d" % i
        base = "/%s/h%d" % (tag, i)
        got = acked.setdefault(host, {})
        with c.conn(i) as conn:
            for k in range(5):
                conn.write("%s/k%d" % (base, k), "v%d-%d" % (i, k))
                got["%s/k%d" % (base, k)] = "v%d-%d" % (i, k)
            conn.write(base + "/guest/data", "owned by dom%d" % (i + 4))
            conn.set_perms(base + "/guest", ["n%d" % (i + 4), "r0"])
            conn.set_perms(base + "/guest/data", ["b%d" % (i + 4)])
            got[base + "/guest/data"] = "owned by dom%d" % (i + 4)
            conn.write(base + "/gone", "x")
            conn.rm(base + "/gone")
            tx = conn.start()
            conn.write(base + "/tx/a", "A", tx)
            conn.write(base + "/tx/b", "B", tx)
            conn.end(tx)
            got[base + "/tx/a"] = "A"
            got[base + "/tx/b"] = "B"
    return acked


def control_json(c, i, *words, socket=None):
    with clusterlib.Conn(socket or c.sock(i), timeout=30) as conn:
        return json.loads(conn.control("cluster", *words).rstrip(b"\0"))


def tree(c, via, host):
    """Every node of host's tree as seen by member via: {path: (value,
    permissions)}, walked with CONTROL cluster dir/read/perms."""
    out = {}
    todo = ["/"]
    while todo:
        path = todo.pop()
        v = control_json(c, via, "read", host, path)
        p = control_json(c, via, "perms", host, path)
        d = control_json(c, via, "dir", host, path)
        assert v["ok"] and p["ok"] and d["ok"], (host, path, v, p, d)
        assert "next" not in d, "too many children for this walk: %s" % path
        out[path] = (v["value"], tuple(p["perms"]))
        for k in d["children"]:
            todo.append(path.rstrip("/") + "/" + k)
    return out


def forest(c, via):
    hosts = control_json(c, via, "hosts")
    assert hosts["ok"], hosts
    return {h["name"]: tree(c, via, h["name"]) for h in hosts["hosts"]}


def restore(conf, backup, *extra, timeout=60):
    """xenstored --restore: (exit status, stderr); it daemonizes on success."""
    with tempfile.TemporaryFile() as err:
        p = subprocess.run([XENSTORED, "--restore", backup, "--config", conf]
                           + list(extra), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err, timeout=timeout)
        err.seek(0)
        return p.returncode, err.read().decode(errors="replace")


def add_member(tc, c, via, i):
    """cluster.sh new BASEDIR i, start it, add and promote it via `via`."""
    rc, out, _ = c.sh("new", c.base, i)
    m = re.match(r"^host%d raft (127\.0\.0\.1:\d+) peer (127\.0\.0\.1:\d+)$" % i,
                 out.strip())
    tc.assertTrue(m, out)
    raft, peer = m.groups()
    env = dict(os.environ, XSR_BIN=BIN)
    env.pop("XENSTORED_PATH", None)
    with tempfile.TemporaryFile() as launch_out:
        launcher = subprocess.Popen(["bash", CLUSTER_SH, "start", c.base, str(i)],
                                    env=env, stdin=subprocess.DEVNULL,
                                    stdout=launch_out, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            p = c.xsadm(via, "cluster", "add", i, raft, "--peer", peer,
                        "--name", "host%d" % i)
            tc.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            tc.assertEqual(launcher.wait(90), 0)
        finally:
            if launcher.poll() is None:
                launcher.kill()
                launcher.wait(10)
    p = c.xsadm(via, "cluster", "promote", i)
    tc.assertEqual(p.returncode, 0, p.stdout + p.stderr)
    c.members.append(i)


class Case(unittest.TestCase):
    maxDiff = None
    def setUp(self):
        def on_alarm(signum, frame):
            raise TimeoutError("%s took more than %d s" % (self.id(), 2 * TEST_ALARM_S))
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(2 * TEST_ALARM_S)
        self.addCleanup(signal.alarm, 0)

    def cluster(self, name, n=3):
        c = Cluster(name)
        self.addCleanup(c.down)
        c.up(n)
        return c

    def assert_log(self, c, i, pattern):
        text = c.log_since(i, 0)
        m = re.search(pattern, text)
        self.assertTrue(m, "no %r in host%d's log:\n%s" % (pattern, i, text[-3000:]))
        return m


class TestBackupRestore(Case):
    def test_backup_refusals_restore_grow(self):
        c = self.cluster("Backup")
        write_forest(self, c, c.members, "bk")
        leader = c.leader()
        via = next(i for i in c.members if i != leader)   # a follower's backup
        # the follower has applied every write (the last of each host's):
        # its backup and the walk of its trees below see the same state
        for i in c.members:
            c.wait_replica(via, "host%d" % i, "/bk/h%d/tx/b" % i, "B")
        backup = os.path.join(c.base, "forest.xsb")
        rc, doc, p = c.xsadm_json(via, "cluster", "backup", backup)
        self.assertEqual(rc, 0, p.stdout + p.stderr)
        self.assertTrue(doc["ok"], doc)
        self.assertEqual(doc["file"], backup)
        self.assertRegex(doc["digest"], r"^[0-9a-f]{32}$")
        st = os.stat(backup)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_size, doc["bytes"])
        self.assertEqual([n for n in os.listdir(c.base) if n.startswith("forest.xsb.")], [])
        with open(backup, "rb") as f:
            data = f.read()
        magic, version, hlen, index, term, plen = struct.unpack("<8sIIQQQ", data[:40])
        self.assertEqual((magic, version, hlen), (b"XSRBAKUP", 1, HDR))
        self.assertEqual((index, term, plen + HDR), (doc["index"], doc["term"], len(data)))
        self.assertEqual(struct.unpack("<I", data[40:44])[0], crc32c(data[HDR:]))
        # xsadm without --json says where the daemon wrote it
        rel = subprocess.run([clusterlib.XSADM, "--socket", c.sock(via), "cluster",
                              "backup", "forest2.xsb"], cwd=c.base,
                             stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=60, env=clusterlib.xsadm_env())
        self.assertEqual(rel.returncode, 0, rel.stderr)
        self.assertIn("written by the daemon to %s/forest2.xsb" % c.base, rel.stdout)
        self.assertTrue(os.path.exists(os.path.join(c.base, "forest2.xsb")))
        # the daemon itself refuses a relative path
        refused = control_json(c, via, "backup", "relative.xsb")
        self.assertFalse(refused["ok"], refused)
        self.assertIn("absolute", refused["error"])

        source = forest(c, via)
        self.assertEqual(sorted(source), ["host1", "host2", "host3"])
        for i in c.members:
            self.assertEqual(source["host%d" % i]["/bk/h%d/guest/data" % i],
                             ("owned by dom%d" % (i + 4), ("b%d" % (i + 4),)))
            self.assertNotIn("/bk/h%d/gone" % i, source["host%d" % i])
        c.sh("down", c.base)
        c.members = []

        # member 1 again, restored from the file alone into a new data
        # directory: its id is in the log already (its entries' numbers
        # must follow the session table's, or they would be duplicates)
        conf, data_dir = c.conf(1), os.path.join(c.dir(1), "data")
        shutil.rmtree(data_dir)
        os.makedirs(data_dir, 0o700)
        bad = {
            "truncated": (data[:len(data) - 7], r"truncated"),
            "flipped": (data[:HDR + 20] + bytes([data[HDR + 20] ^ 1]) + data[HDR + 21:],
                        r"checksum"),
            "header": (data[:16] + bytes([data[16] ^ 4]) + data[17:], r"header"),
            "magic": (b"XSRBAKUQ" + data[8:], r"not a xenstored backup"),
            "empty": (b"", r"not a xenstored backup"),
        }
        v2 = bytearray(data)
        v2[8:12] = struct.pack("<I", 2)
        v2[44:48] = struct.pack("<I", crc32c(bytes(v2[:44])))
        bad["version"] = (bytes(v2), r"version 2")
        for name, (content, why) in bad.items():
            path = os.path.join(c.base, "bad-%s.xsb" % name)
            with open(path, "wb") as f:
                f.write(content)
            rc, err = restore(conf, path)
            self.assertNotEqual(rc, 0, "%s accepted: %s" % (name, err))
            self.assertIn(path, err)
            self.assertRegex(err, why, name)
            self.assertEqual(os.listdir(data_dir), [], "%s left files" % name)
        busy = os.path.join(c.base, "busy-data")
        os.makedirs(busy)
        open(os.path.join(busy, "something"), "w").close()
        rc, err = restore(conf, backup, "--data-dir", busy)
        self.assertNotEqual(rc, 0, err)
        self.assertRegex(err, r"not empty")

        log_at = c.log_size(1)
        rc, err = restore(conf, backup)
        self.assertEqual(rc, 0, err + c.log_tails())
        c.members = [1]
        text = c.log_since(1, log_at)
        m = re.search(r"RESTORED from a backup.* at log index (\d+) "
                      r"\(term \d+, digest ([0-9a-f]{32}), byte-identical", text)
        self.assertTrue(m, text)
        self.assertEqual((int(m.group(1)), m.group(2)), (doc["index"], doc["digest"]))
        self.assertIn("from an earlier data directory of this id", text)
        c.wait_healthy(members=[1])
        # every host tree, node by node: values and permissions
        self.assertEqual(forest(c, 1), source)
        # the restored state was the backup's byte for byte (the line
        # above); since then the lone leader has removed the rows of
        # members 2 and 3, which its configuration lacks, and nothing else
        # changed a host tree
        wait_for(lambda: sorted(m["id"] for m in c.status(1)["members"]) == [1],
                 20, "the rows of members 2 and 3 to leave the table")
        again = os.path.join(c.base, "again.xsb")
        rc, doc2, p = c.xsadm_json(1, "cluster", "backup", again)
        self.assertEqual(rc, 0, p.stdout + p.stderr)
        self.assertGreater(doc2["index"], doc["index"])
        self.assertEqual(forest(c, 1), source)
        # it serves and takes writes (not mistaken for old duplicates)
        with c.conn(1) as conn:
            conn.write("/bk/h1/k0", "after restore")
            conn.write("/after/restore", "yes")
            self.assertEqual(conn.read("/bk/h1/k0"), b"after restore")
        self.assertEqual(c.read_replica(1, "host1", "/after/restore"), "yes")
        # and after a restart its entries still number above the log's:
        # the raised incarnation is in its identity (before, a restart
        # numbered them from the data directory's own count again, and the
        # log took them for duplicates: chaos seed 12 lost a cold start's
        # standalone writes so)
        with open(os.path.join(data_dir, "identity")) as f:
            inc = int(re.search(r"^incarnation=(\d+)$", f.read(), re.M).group(1))
        self.assertGreaterEqual(inc, 2)
        c.stop(1)
        log_at = c.log_size(1)
        c.start(1)
        c.wait_healthy(members=[1])
        self.assertRegex(c.log_since(1, log_at), r"incarnation %d," % (inc + 1))
        with c.conn(1) as conn:
            conn.write("/after/restart", "yes")
            conn.write("/bk/h1/k0", "after restart")
            self.assertEqual(conn.read("/bk/h1/k0"), b"after restart")
        self.assertEqual(c.read_replica(1, "host1", "/after/restart"), "yes")
        self.assertNotIn("from an earlier data directory",
                         c.log_since(1, log_at))
        # and grows with a new member
        add_member(self, c, 1, 4)
        c.wait_healthy(members=[1, 4])
        c.wait_replica(4, "host2", "/bk/h2/tx/b", "B")
        c.wait_replica(4, "host1", "/bk/h1/k0", "after restart")
        r = c.xs(4, "xenstore-write", "/own", "four")
        self.assertEqual(r.returncode, 0, r.stderr)
        c.wait_replica(1, "host4", "/own", "four")
        c.assert_agree(self, 4, [1, 4])


class TestRecover(Case):
    def check_recovered(self, c, survivor, acked, before, new_ids):
        c.members = [survivor]
        c.wait_healthy(members=[survivor])
        st = c.status(survivor)
        self.assertEqual(st["leader"], survivor, st)
        # every host tree as the survivor had it, node by node
        self.assertEqual(forest(c, survivor), before)
        for host, kv in acked.items():
            for path, value in kv.items():
                self.assertEqual(c.read_replica(survivor, host, path), value,
                                 "%s:%s lost" % (host, path))
        r = c.xs(survivor, "xenstore-write", "/after/recover", "yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        for i in new_ids:
            add_member(self, c, survivor, i)
        c.wait_healthy(members=[survivor] + new_ids)
        for i in new_ids:
            c.wait_replica(i, "host%d" % survivor, "/after/recover", "yes")
            for host, kv in acked.items():
                for path, value in kv.items():
                    c.wait_replica(i, host, path, value)
        c.assert_agree(self, survivor, [survivor] + new_ids)
        # the new members vote: the survivor alone is no quorum any more
        p = c.xsadm(new_ids[0], "cluster", "status")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_1_force_new_cluster_on_a_stopped_member(self):
        c = self.cluster("RecoverStopped")
        acked = write_forest(self, c, c.members, "rc")
        c.wait_replica(3, "host1", "/rc/h1/tx/b", "B")
        c.wait_replica(3, "host2", "/rc/h2/tx/b", "B")
        before = forest(c, 3)
        c.sh("down", c.base)
        c.members = []
        for i in (1, 2):
            shutil.rmtree(os.path.join(c.dir(i), "data"))
        # a member with an empty data directory has nothing to recover
        empty = os.path.join(c.base, "empty-data")
        os.makedirs(empty)
        p = subprocess.run([XENSTORED, "--force-new-cluster", "--config", c.conf(1),
                            "--data-dir", empty], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn("no log to recover", p.stderr)
        # with another "one-off" option, refused
        p = subprocess.run([XENSTORED, "--force-new-cluster", "--restore", "/x",
                            "--config", c.conf(3)], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        p = subprocess.run([XENSTORED, "--force-new-cluster", "--config", c.conf(3)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=90)
        self.assertEqual(p.returncode, 0, p.stderr + c.log_tails())
        self.assert_log(c, 3, r"FORCE NEW CLUSTER: .* member 3 .* only voter")
        self.check_recovered(c, 3, acked, before, [4, 5])

    def test_2_recover_a_running_member(self):
        c = self.cluster("RecoverRunning", 5)
        acked = write_forest(self, c, c.members, "rr")
        survivor = c.leader()
        others = [i for i in c.members if i != survivor]
        for i in others:
            c.wait_replica(survivor, "host%d" % i, "/rr/h%d/tx/b" % i, "B")
        before = forest(c, survivor)
        # while it has a leader (itself), refused
        p = c.xsadm(survivor, "cluster", "recover")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("quorum", p.stderr)
        # three of five lost: no leader, but a fourth voter still
        # answers: refused too, naming it
        for i in others[:3]:
            c.kill9(i)
        c.wait_leader(survivor, lambda leader: not leader, timeout=20,
                      what="the survivor to lose its leader")
        p = c.xsadm(survivor, "cluster", "recover")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"refused: host%d still answers" % others[3])
        self.assertTrue(c.alive(survivor))
        # now the others are lost for good
        c.kill9(others[3])
        for i in others:
            shutil.rmtree(os.path.join(c.dir(i), "data"))
        c.members = [survivor]
        pid = c.pid(survivor)
        p = c.xsadm(survivor, "cluster", "recover")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # the same process runs again: its pid file names it once it serves
        wait_for(lambda: c.pid(survivor) == pid and
                 "FORCE NEW CLUSTER" in c.log_since(survivor, 0) and
                 c.status_or_none(survivor) is not None, 60,
                 "host%d to serve again" % survivor)
        self.assertTrue(pid_alive(pid))
        self.assert_log(c, survivor, r"CLUSTER RECOVER asked for")
        self.check_recovered(c, survivor, acked, before, [6, 7])


tearDownModule = clusterlib.tear_down_module

if __name__ == "__main__":
    unittest.main(verbosity=2)
