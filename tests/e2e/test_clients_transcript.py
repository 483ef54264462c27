#!/usr/bin/python3
"""e2e_clients: one workload's wire transcripts, reference daemon vs ours.

TestWireTranscript: Xen's tools, test-xenstore and a pyxs script through a
recording proxy, first against Xen 4.17's C xenstored (refd), then against
the daemon under test; every connection's messages must be identical.
test_clients.py runs this file with the others; alone:

    /usr/bin/python3 tests/e2e/test_clients_transcript.py -v
"""
import difflib
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from clientlib import (BIG_NAMES, KIND, PYTHON, TEST_TIMEOUT, BgTool, Timeout,
                       deadline, import_pyxs, run_tool, start_daemon,
                       stop_daemon, tool_path)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import daemon as daemonlib  # noqa: E402
import xsproto  # noqa: E402

HDR = struct.Struct("=IIII")


class RecordingProxy:
    """Unix-socket proxy that forwards bytes unchanged between each client
    and the daemon and records every message, per connection."""

    def __init__(self, upstream, path):
        self.upstream = upstream
        self.path = path
        self.conns = []                 # per connection: list of entries
        self.lock = threading.Lock()
        self.stopping = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(16)
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping:
            r, _, _ = select.select([self.listener], [], [], 0.1)
            if not r:
                continue
            client, _ = self.listener.accept()
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            up.connect(self.upstream)
            with self.lock:
                log = []
                self.conns.append(log)
            t = threading.Thread(target=self._pump, args=(client, up, log), daemon=True)
            self.threads.append(t)
            t.start()

    def _pump(self, client, up, log):
        bufs = {client: b"", up: b""}
        try:
            while not self.stopping:
                r, _, _ = select.select([client, up], [], [], 0.1)
                for s in r:
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        with self.lock:
                            log.append(("closed-by", "client" if s is client else "daemon"))
                        return
                    (up if s is client else client).sendall(data)
                    bufs[s] += data
                    while len(bufs[s]) >= HDR.size:
                        t, rq, tx, n = HDR.unpack(bufs[s][:HDR.size])
                        if len(bufs[s]) < HDR.size + n:
                            break
                        payload = bufs[s][HDR.size:HDR.size + n]
                        bufs[s] = bufs[s][HDR.size + n:]
                        with self.lock:
                            log.append((">" if s is client else "<",
                                        xsproto.Msg(t, rq, tx, payload)))
        finally:
            client.close()
            up.close()

    def wait_closed(self, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if all(log and log[-1][0] == "closed-by" for log in self.conns):
                    return
            time.sleep(0.02)
        raise Timeout("proxy connections still open")

    def close(self):
        self.stopping = True
        for t in self.threads:
            t.join(5)
        self.listener.close()


PYXS_WORKLOAD = r"""
import sys, errno
import pyxs
from pyxs._internal import Op
path = sys.argv[1]
with pyxs.Client(unix_socket_path=path) as a, pyxs.Client(unix_socket_path=path) as b:
    m = a.monitor()
    m.watch(b"/px", b"tok")
    ev = [m.events.get(timeout=5)]
    a.write(b"/px/own", b"1")              # event caused by the watcher itself
    ev.append(m.events.get(timeout=5))
    b.write(b"/px/v", b"0")
    ev.append(m.events.get(timeout=5))
    a.transaction(); b.transaction()
    a.write(b"/px/v", a.read(b"/px/v") + b"a")
    b.write(b"/px/v", b.read(b"/px/v") + b"b")
    assert a.commit()
    ev.append(m.events.get(timeout=5))
    assert not b.commit()
    print(a.list(b"/px"), a.get_perms(b"/px/v"), a.read(b"/px/v"))
    try:
        a.read(b"/px/nope")
    except pyxs.PyXSError as e:
        assert e.args[0] == errno.ENOENT
    a.delete(b"/px")
    ev.append(m.events.get(timeout=5))
    m.unwatch(b"/px", b"tok")
    print(ev)
"""


class TestWireTranscript(unittest.TestCase):
    """The same client workload, recorded on the wire through a proxy,
    against the daemon under test and against Xen's C xenstored: requests
    and replies (types, req_ids, tx_ids, payloads, watch events and their
    position relative to replies) must be identical; each direction is
    compared in its own order.  Normalised: the pid
    that test-xenstore puts in its paths, and the generation number at the
    start of DIRECTORY_PART replies (only its consistency is checked)."""

    @classmethod
    def setUpClass(cls):
        if not os.access(daemonlib.REFD, os.X_OK):
            raise unittest.SkipTest("reference daemon launcher %s not found" % daemonlib.REFD)
        for name in ("xenstore-write", "xenstore-watch", "xenstore-control", "test-xenstore"):
            if not os.access(tool_path(name), os.X_OK):
                raise unittest.SkipTest("%s is not installed" % tool_path(name))
        import_pyxs()

    def setUp(self):
        cm = deadline(TEST_TIMEOUT, self.id())
        cm.__enter__()
        self.addCleanup(cm.__exit__, None, None, None)

    def workload(self, env, proxy_path, tool_log):
        """Run the client workload; the tools' exit codes and output go to
        tool_log (compared between daemons too).  Returns test-xenstore pids."""
        def sh(*argv, rc=0):
            p = run_tool(list(argv), env)
            tool_log.append("$ %s -> rc=%d stdout=%r stderr=%r"
                            % (" ".join(argv)[:200], p.returncode, p.stdout, p.stderr))
            if p.returncode != rc:
                self.surprises.append(tool_log[-1])
            return p
        pids = []
        sh("xenstore-write", "/tr/a", "1", "/tr/b", r"x\ty", "/tr/c/d", "")
        sh("xenstore-read", "/tr/a")
        sh("xenstore-read", "-p", "/tr/a", "/tr/b")
        sh("xenstore-read", "/tr/a", "/tr/nope", "/tr/b", rc=1)
        sh("xenstore-ls", "-f", "-p")
        sh("xenstore-ls", "/tr")
        sh("xenstore-list", "-p", "/tr", "/tr/c")
        sh("xenstore-list", "/tr/nope", rc=1)
        sh("xenstore-exists", "/tr/a")
        sh("xenstore-exists", "/tr/nope/x", rc=1)
        sh("xenstore-chmod", "-r", "/tr", "n0", "r3")
        sh("xenstore-chmod", "-u", "/tr/c/d", "b0", "w2")
        sh("xenstore-write", "/local/domain/0/trrel/x/y", "v")
        sh("xenstore-chmod", "-u", "trrel/x/y", "b0", rc=1)
        sh("xenstore-write", "trrel/z", "rel")
        sh("xenstore-rm", "-t", "/tr/c/d")
        sh("xenstore-rm", "/tr/nope/deeper", rc=1)
        sh("xenstore-rm", "/", rc=1)
        args = []
        for name in BIG_NAMES[:200]:
            args += ["/trbig/" + name, "v"]
        sh("xenstore-write", *args)
        sh("xenstore-list", "/trbig")
        # a watcher while other clients write (waiting for each event keeps
        # every connection's transcript deterministic)
        w = BgTool(["xenstore-watch", "-n", "6", "/tr", "trrel"], env)
        try:
            self.assertEqual([w.readline(), w.readline()], ["/tr", "trrel"])
            sh("xenstore-write", "/tr/w1", "1")
            self.assertEqual(w.readline(), "/tr/w1")
            sh("xenstore-write", "/tr/w2", "2", "/local/domain/0/trrel/w3", "3")
            self.assertEqual([w.readline(), w.readline()], ["/tr/w2", "trrel/w3"])
            sh("xenstore-rm", "/tr/w1")
            self.assertEqual(w.readline(), "/tr/w1")
            self.assertEqual(w.finish()[0], 0)
        finally:
            w.close()
        sh("xenstore-control", "check")
        sh("xenstore-control", "log", "off")
        sh("xenstore-control", "log", "on")
        sh("xenstore-control", "quota", "set", "nodes", "1000")
        p = subprocess.Popen([tool_path("test-xenstore")], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        pids.append(p.pid)
        out, err = p.communicate(timeout=120)
        tool_log.append("$ test-xenstore -> rc=%d stderr=%r" % (p.returncode, err))
        p = subprocess.run([PYTHON, "-c", PYXS_WORKLOAD, proxy_path], env=env,
                           capture_output=True, timeout=60)
        tool_log.append("$ pyxs workload -> rc=%d stdout=%r stderr=%r"
                        % (p.returncode, p.stdout, p.stderr[-2000:]))
        return pids

    def record(self, kind):
        self.surprises = []
        d = start_daemon(kind)
        tmp = tempfile.mkdtemp(prefix="xsr-e2e-proxy-")
        proxy = None
        try:
            proxy_path = os.path.join(tmp, "socket")
            proxy = RecordingProxy(d.socket, proxy_path)
            env = dict(d.env_for_clients(), XENSTORED_PATH=proxy_path)
            tool_log = []
            pids = self.workload(env, proxy_path, tool_log)
            proxy.wait_closed()
            self.assertTrue(d.alive(), d.log_text())
            return self.normalise(proxy.conns, pids), tool_log
        finally:
            if proxy:
                proxy.close()
            stop_daemon(d)
            for f in os.listdir(tmp):
                os.unlink(os.path.join(tmp, f))
            os.rmdir(tmp)

    def normalise(self, conns, pids):
        out = []
        for log in conns:
            lines = []
            gens = {}
            for entry in log:
                if entry[0] == "closed-by":
                    lines.append("closed by %s" % entry[1])
                    continue
                direction, m = entry
                payload = m.payload
                for pid in pids:
                    payload = payload.replace(b"xenstore-test/%d" % pid, b"xenstore-test/PID")
                if direction == "<" and m.type == xsproto.T["DIRECTORY_PART"]:
                    gen, rest = payload.split(b"\0", 1)
                    gens.setdefault(m.tx_id, set()).add(gen)
                    payload = b"GEN\0" + rest
                name = (xsproto.TYPES[m.type] if m.type < len(xsproto.TYPES)
                        else str(m.type))
                lines.append("%s %s req=%d tx=%d %r" % (direction, name, m.req_id,
                                                       m.tx_id, payload))
            for tx, g in gens.items():
                self.assertEqual(len(g), 1, "generation changed within one listing")
            # What the daemon sends is compared in its order (events
            # before or after replies), and what the client sends in its
            # own; where a received event falls between two requests is
            # the proxy's timing (xenstore-watch's second WATCH overtook
            # the first one's initial event once, on a loaded machine).
            out.append([l for l in lines if l.startswith(">")] +
                       ["(received:)"] +
                       [l for l in lines if not l.startswith(">")])
        return out

    def test_transcripts_identical(self):
        ref, ref_tools = self.record("c")
        # the workload itself must go as planned against the reference
        self.assertEqual(self.surprises, [], "unexpected exit codes (reference)")
        ours, our_tools = self.record(KIND)
        problems = []
        if ref_tools != our_tools:
            problems.append("client results differ:\n" + "\n".join(
                difflib.unified_diff(ref_tools, our_tools, "reference", KIND,
                                     lineterm="", n=1)))
        if len(ours) != len(ref):
            problems.append("%d client connections against the reference, %d against %s"
                            % (len(ref), len(ours), KIND))
        for i, (r, o) in enumerate(zip(ref, ours)):
            if r != o:
                problems.append("connection %d differs:\n%s" % (i + 1, "\n".join(
                    difflib.unified_diff(r, o, "reference", KIND, lineterm="", n=3))))
        if problems:
            self.fail("\n\n".join(problems)[:30000])



if __name__ == "__main__":
    unittest.main()
