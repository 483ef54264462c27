#!/usr/bin/python3
"""e2e_clients: python3-pyxs (its own framing code) against the daemon.

TestPyxs: errnos, transactions and their conflicts, watches with
monitor(), libxl-style retry loops, req_id echoed. test_clients.py runs
this file with the others; alone:

    /usr/bin/python3 tests/e2e/test_clients_pyxs.py -v
"""
import copy
import errno
import os
import sys
import threading
import time
import unittest

from clientlib import DaemonCase, EVENT_TIMEOUT, deadline, import_pyxs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import xsproto  # noqa: E402


class TestPyxs(DaemonCase):
    needs = ()

    @classmethod
    def setUpClass(cls):
        cls.pyxs, cls.Op = import_pyxs()
        super().setUpClass()

    def client(self):
        c = self.pyxs.Client(unix_socket_path=self.sock)
        with deadline(EVENT_TIMEOUT, "pyxs connect"):
            c.connect()
        self.addCleanup(c.close)
        return c

    def assertErrno(self, err, fn, *args):
        with self.assertRaises(self.pyxs.PyXSError) as cm:
            with deadline(EVENT_TIMEOUT, "pyxs request"):
                fn(*args)
        self.assertEqual(cm.exception.args[0], err, cm.exception)
        return cm.exception

    def next_event(self, monitor, timeout=EVENT_TIMEOUT):
        with deadline(timeout, "pyxs watch event"):
            return next(monitor.wait())

    def no_event(self, monitor, wait=0.3):
        time.sleep(wait)
        self.assertTrue(monitor.events.empty(), list(monitor.events.queue))

    def test_basic(self):
        c = self.client()
        c.write(b"/py/a", b"1")
        c[b"/py/b"] = b"two"
        self.assertEqual(c.read(b"/py/a"), b"1")
        self.assertEqual(c[b"/py/b"], b"two")
        self.assertEqual(c.list(b"/py"), [b"a", b"b"])
        self.assertEqual(c.list(b"/py/a"), [])
        self.assertTrue(c.exists(b"/py/a"))
        self.assertFalse(c.exists(b"/py/nope"))
        self.assertEqual(c.read(b"/py/nope", b"dflt"), b"dflt")
        c.mkdir(b"/py/dir/sub")
        self.assertEqual(c.read(b"/py/dir/sub"), b"")
        c.write(b"/py/dir/sub", b"keep")
        c.mkdir(b"/py/dir/sub")                     # existing: untouched
        self.assertEqual(c.read(b"/py/dir/sub"), b"keep")
        self.assertEqual(c.get_perms(b"/py/a"), [b"n0"])
        c.set_perms(b"/py/a", [b"r0", b"w3"])
        self.assertEqual(c.get_perms(b"/py/a"), [b"r0", b"w3"])
        walked = [(p, v) for p, v, _ in c.walk(b"/py")]
        self.assertEqual(walked, [(b"/py", b""), (b"/py/a", b"1"), (b"/py/b", b"two"),
                                  (b"/py/dir", b""), (b"/py/dir/sub", b"keep")])
        c.delete(b"/py/dir")
        del c[b"/py/b"]
        self.assertEqual(c.list(b"/py"), [b"a"])
        c.delete(b"/py/nope")                       # missing, parent exists
        self.assertEqual(c.get_domain_path(7), b"/local/domain/7")

    def test_errors(self):
        c = self.client()
        Op = self.Op
        self.assertErrno(errno.ENOENT, c.read, b"/pye/nope")
        self.assertErrno(errno.ENOENT, c.list, b"/pye/nope")
        self.assertErrno(errno.ENOENT, c.delete, b"/pye/nope/deeper")
        self.assertErrno(errno.ENOENT, c.get_perms, b"/pye/nope")
        self.assertErrno(errno.ENOENT, c.set_perms, b"/pye/nope", [b"n0"])
        # bypass pyxs' own path checks: the daemon says EINVAL
        self.assertErrno(errno.EINVAL, c.execute_command, Op.READ, b"/bad path\x00")
        self.assertErrno(errno.EINVAL, c.execute_command, Op.WRITE, b"/trailing/\x00", b"v")
        self.assertErrno(errno.EINVAL, c.execute_command, Op.SET_PERMS,
                         b"/tool\x00", b"x0\x00")
        self.assertErrno(errno.EINVAL, c.delete, b"/")
        # transaction ids: unknown id / end without transaction -> ENOENT
        c.tx_id = 4711
        self.assertErrno(errno.ENOENT, c.execute_command, Op.READ, b"/tool\x00")
        c.tx_id = 0
        self.assertErrno(errno.ENOENT, c.execute_command, Op.TRANSACTION_END, b"T\x00")
        # nesting: TRANSACTION_START inside a transaction -> EBUSY
        t = c.transaction()
        self.assertErrno(errno.EBUSY, c.execute_command, Op.TRANSACTION_START, b"\x00")
        self.assertEqual(c.tx_id, t)
        c.rollback()
        m = c.monitor()
        self.assertErrno(errno.ENOENT, m.unwatch, b"/pye", b"never-added")
        m.watch(b"/pye", b"tok")
        self.next_event(m)
        self.assertErrno(errno.EEXIST, c.ack, Op.WATCH, b"/pye\x00", b"tok\x00")
        m.unwatch(b"/pye", b"tok")
        # the connection is still usable after all these errors
        c.write(b"/pye/ok", b"1")
        self.assertEqual(c.read(b"/pye/ok"), b"1")

    def test_transaction_commit(self):
        a, other = self.client(), self.client()
        a.write(b"/pyt/v", b"old")
        t = a.transaction()
        self.assertGreater(t, 0)
        a.write(b"/pyt/v", b"new")
        a.write(b"/pyt/created/deep", b"c")
        self.assertEqual(a.read(b"/pyt/v"), b"new")          # own writes visible
        self.assertEqual(other.read(b"/pyt/v"), b"old")      # isolated
        self.assertFalse(other.exists(b"/pyt/created"))
        self.assertTrue(a.commit())
        self.assertEqual(a.tx_id, 0)
        self.assertEqual(other.read(b"/pyt/v"), b"new")
        self.assertEqual(other.read(b"/pyt/created/deep"), b"c")
        # the id is gone after the commit
        a.tx_id = t
        self.assertErrno(errno.ENOENT, a.read, b"/pyt/v")
        a.tx_id = 0

    def test_transaction_rollback(self):
        a = self.client()
        a.write(b"/pyr/v", b"old")
        a.transaction()
        a.write(b"/pyr/v", b"new")
        a.delete(b"/pyr")
        self.assertErrno(errno.ENOENT, a.read, b"/pyr/v")
        a.rollback()
        self.assertEqual(a.read(b"/pyr/v"), b"old")

    def test_transaction_ids_per_connection(self):
        a = self.client()
        a2 = copy.copy(a)            # same connection, own transaction
        t1 = a.transaction()
        t2 = a2.transaction()
        self.assertNotEqual(t1, t2)
        self.assertNotIn(0, (t1, t2))
        a.rollback()
        a2.rollback()

    def interleave(self, a, b, path):
        a.write(path, b"0")
        a.transaction()
        b.transaction()
        a.write(path, a.read(path) + b"a")
        b.write(path, b.read(path) + b"b")

    def test_interleaved_transactions_eagain(self):
        a, b = self.client(), self.client()
        self.interleave(a, b, b"/pyi/v")
        self.assertTrue(a.commit())
        self.assertFalse(b.commit())                # EAGAIN
        self.assertEqual(a.read(b"/pyi/v"), b"0a")

    def test_interleaved_transactions_errno(self):
        a, b = self.client(), self.client()
        self.interleave(a, b, b"/pyi2/v")
        t = b.tx_id
        self.assertTrue(a.commit())
        e = self.assertErrno(errno.EAGAIN, b.execute_command,
                             self.Op.TRANSACTION_END, b"T\x00")
        self.assertEqual(e.args[1], os.strerror(errno.EAGAIN))
        # after EAGAIN the transaction is gone
        self.assertErrno(errno.ENOENT, b.read, b"/pyi2/v")
        b.tx_id = 0
        self.assertNotEqual(t, 0)
        self.assertEqual(b.read(b"/pyi2/v"), b"0a")

    def test_interleaved_on_one_connection(self):
        a = self.client()
        b = copy.copy(a)
        self.interleave(a, b, b"/pyi3/v")
        self.assertTrue(b.commit())
        self.assertFalse(a.commit())
        self.assertEqual(a.read(b"/pyi3/v"), b"0b")

    def test_conflicts_through_parents_and_missing_nodes(self):
        a, b = self.client(), self.client()
        # both add a child under the same parent: the second commit fails
        a.write(b"/pyp", b"")
        a.transaction()
        b.transaction()
        a.write(b"/pyp/x", b"1")
        b.write(b"/pyp/y", b"2")
        self.assertTrue(a.commit())
        self.assertFalse(b.commit())
        self.assertEqual(a.list(b"/pyp"), [b"x"])
        # a transaction that saw a node missing conflicts with its creation
        a.write(b"/pyp2", b"")
        b.transaction()
        self.assertFalse(b.exists(b"/pyp/z"))
        a.write(b"/pyp/z", b"now")
        b.write(b"/pyp2/other", b"1")
        self.assertFalse(b.commit())
        # a read-only transaction whose reads went stale fails as well
        b.transaction()
        b.read(b"/pyp/x")
        a.write(b"/pyp/x", b"changed")
        self.assertFalse(b.commit())
        # untouched nodes do not conflict
        b.transaction()
        b.read(b"/pyp/x")
        a.write(b"/pyq/elsewhere", b"1")
        b.write(b"/pyp/x/child", b"c")
        self.assertTrue(b.commit())

    def test_monitor_events(self):
        c, other = self.client(), self.client()
        m = c.monitor()
        m.watch(b"/pym", b"tok")
        self.assertEqual(tuple(self.next_event(m)), (b"/pym", b"tok"))
        other.write(b"/pym/a", b"1")
        other.write(b"/pym/b/c", b"2")
        other.set_perms(b"/pym/a", [b"n0", b"r1"])
        other.delete(b"/pym/b")
        other.write(b"/pym", b"x")
        got = [tuple(self.next_event(m)) for _ in range(5)]
        self.assertEqual(got, [(b"/pym/a", b"tok"), (b"/pym/b/c", b"tok"),
                               (b"/pym/a", b"tok"), (b"/pym/b", b"tok"),
                               (b"/pym", b"tok")])
        # the watching connection's own writes fire too
        c.write(b"/pym/own", b"1")
        self.assertEqual(tuple(self.next_event(m)), (b"/pym/own", b"tok"))
        other.write(b"/pymx", b"not watched")
        self.no_event(m)
        m.unwatch(b"/pym", b"tok")

    def test_monitor_two_tokens(self):
        c, other = self.client(), self.client()
        m1, m2 = c.monitor(), c.monitor()
        m1.watch(b"/pyw", b"t1")
        m2.watch(b"/pyw/sub", b"t2")
        self.assertEqual(tuple(self.next_event(m1)), (b"/pyw", b"t1"))
        self.assertEqual(tuple(self.next_event(m2)), (b"/pyw/sub", b"t2"))
        other.write(b"/pyw/sub/x", b"1")
        self.assertEqual(tuple(self.next_event(m1)), (b"/pyw/sub/x", b"t1"))
        self.assertEqual(tuple(self.next_event(m2)), (b"/pyw/sub/x", b"t2"))
        other.write(b"/pyw/other", b"1")
        self.assertEqual(tuple(self.next_event(m1)), (b"/pyw/other", b"t1"))
        self.no_event(m2)
        m1.close()
        m2.close()

    def test_monitor_transaction_events(self):
        c, other = self.client(), self.client()
        m = c.monitor()
        m.watch(b"/pyx", b"tok")
        self.next_event(m)
        other.transaction()
        other.write(b"/pyx/a", b"1")
        other.write(b"/pyx/b", b"2")
        self.no_event(m)                            # nothing before commit
        self.assertTrue(other.commit())
        self.assertEqual([self.next_event(m).path for _ in range(2)],
                         [b"/pyx/a", b"/pyx/b"])
        other.transaction()
        other.write(b"/pyx/c", b"3")
        other.rollback()
        other.write(b"/pyx/sentinel", b"s")         # next event must be this
        self.assertEqual(self.next_event(m).path, b"/pyx/sentinel")
        self.assertFalse(other.exists(b"/pyx/c"))

    @staticmethod
    def libxl_style_update(client, path, fn, interfere=None, max_attempts=100):
        """The toolstack's transaction pattern: start, read, compute, write,
        commit; on EAGAIN start over.  Returns the number of attempts."""
        for attempt in range(1, max_attempts + 1):
            client.transaction()
            try:
                old = client.read(path, b"")
                if interfere:
                    interfere(attempt)
                client.write(path, fn(old))
            except BaseException:
                client.rollback()
                raise
            if client.commit():
                return attempt
        raise AssertionError("no commit after %d attempts" % max_attempts)

    def test_libxl_retry_loop(self):
        c, other = self.client(), self.client()
        c.write(b"/pyl/counter", b"10")

        def interfere(attempt):
            if attempt == 1:
                other.write(b"/pyl/counter", b"100")
        attempts = self.libxl_style_update(
            c, b"/pyl/counter", lambda v: str(int(v) + 1).encode(), interfere)
        self.assertEqual(attempts, 2)
        self.assertEqual(c.read(b"/pyl/counter"), b"101")

    def test_libxl_retry_loop_concurrent(self):
        self.client().write(b"/pyl2/counter", b"0")
        threads_n, per_thread = 4, 20
        clients = [self.client() for _ in range(threads_n)]
        results, errors = [], []

        def worker(cl):
            try:
                total = 0
                for _ in range(per_thread):
                    total += self.libxl_style_update(
                        cl, b"/pyl2/counter", lambda v: str(int(v) + 1).encode())
                results.append(total)
            except BaseException as e:          # reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(cl,), daemon=True)
                   for cl in clients]
        for t in threads:
            t.start()
        end = time.monotonic() + 120
        for t in threads:
            t.join(max(end - time.monotonic(), 0.1))
        self.assertFalse(any(t.is_alive() for t in threads), "workers hung")
        self.assertEqual(errors, [])
        self.assertEqual(self.client().read(b"/pyl2/counter"),
                         str(threads_n * per_thread).encode())
        self.assertGreaterEqual(sum(results), threads_n * per_thread)

    def test_request_ids_echoed(self):
        # pyxs numbers its requests and matches replies by req_id; check the
        # echo on the wire as well, including for errors
        c = self.conn()
        c.send("WRITE", b"/pyid\x00v", req_id=0xdeadbeef)
        self.assertEqual(c.reply(), (xsproto.T["WRITE"], 0xdeadbeef, 0, b"OK\x00"))
        c.send("READ", xsproto.args("/pyid/nope"), req_id=7)
        self.assertEqual(c.reply(), (xsproto.T["ERROR"], 7, 0, b"ENOENT\x00"))



if __name__ == "__main__":
    unittest.main()
