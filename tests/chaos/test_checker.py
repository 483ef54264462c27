#!/usr/bin/python3
"""Unit tests of tests/chaos/checker.py: histories built by hand (each the
smallest case of one rule) and random histories generated from a simulated
register, linearizable by construction, then broken on purpose."""
import io
import json
import os
import random
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checker  # noqa: E402

K = "/local/domain/5/chaos/k0"
W = "/local/domain/5/chaos"


class H:
    """A history under construction."""

    def __init__(self):
        self.lines = []
        self.next_id = 0

    def op(self, f, invoke, complete, status="ok", value=None, out=None,
           client="host1/sock0", host="host1", key=K):
        self.next_id += 1
        self.lines.append({"type": "op", "id": self.next_id, "client": client,
                           "host": host, "f": f, "key": key, "value": value,
                           "invoke": invoke, "complete": complete,
                           "status": status, "out": out, "error": None})
        return self

    def w(self, v, a, b, **kw):
        return self.op("write", a, b, value=v, **kw)

    def r(self, v, a, b, **kw):
        return self.op("read", a, b, out=v, **kw)

    def final(self, v, t=10**9, host="host1", key=K):
        self.lines.append({"type": "final", "host": host, "key": key,
                           "value": v, "time": t})
        return self

    def watch(self, t, complete=None, client="host1/sock0", path=W, token="t0",
              session=1):
        self.lines.append({"type": "watch", "client": client, "host": "host1",
                           "path": path, "token": token, "time": t,
                           "complete": t if complete is None else complete,
                           "session": session})
        return self

    def event(self, path, t, client="host1/sock0", token="t0", session=1):
        self.lines.append({"type": "event", "client": client, "host": "host1",
                           "path": path, "token": token, "time": t,
                           "session": session})
        return self

    def run(self, budget=checker.DEFAULT_BUDGET):
        """(exit code, printed text) of the checker on this history."""
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for line in self.lines:
                f.write(json.dumps(line) + "\n")
        try:
            h = checker.read_history(f.name)
            out = io.StringIO()
            return checker.check(h, budget, out=out), out.getvalue()
        finally:
            os.unlink(f.name)


class Registers(unittest.TestCase):
    def assertCode(self, h, code, budget=checker.DEFAULT_BUDGET):
        rc, text = h.run(budget)
        self.assertEqual(rc, code, text)
        return text

    def test_sequential(self):
        self.assertCode(H().w("a", 0, 10).r("a", 20, 30).w("b", 40, 50)
                        .r("b", 60, 70).final("b"), 0)

    def test_stale_read(self):
        text = self.assertCode(H().w("a", 0, 10).w("b", 20, 30).r("a", 40, 50), 1)
        self.assertIn("NOT LINEARIZABLE: host1 " + K, text)
        self.assertIn('read -> "a"', text)

    def test_read_of_a_value_never_written(self):
        self.assertCode(H().r("x", 0, 10), 1)

    def test_concurrent_read_sees_old_or_new(self):
        self.assertCode(H().w("a", 0, 10).w("b", 20, 100).r("a", 30, 40)
                        .r("b", 50, 60), 0)
        self.assertCode(H().w("a", 0, 10).w("b", 20, 100).r("b", 30, 40)
                        .r("a", 50, 60), 1)   # no going back once seen

    def test_lost_write(self):
        text = self.assertCode(H().w("a", 0, 10).final(None), 1)
        self.assertIn("final read", text)

    def test_info_write_may_apply_late_or_never(self):
        self.assertCode(H().w("a", 0, 10, status="info").r(None, 20, 30)
                        .r("a", 1000, 1010).final("a"), 0)
        self.assertCode(H().w("a", 0, None, status="info").final(None), 0)
        # but not before it was invoked
        self.assertCode(H().r("a", 0, 10).w("a", 20, None, status="info"), 1)

    def test_info_write_applies_once(self):
        self.assertCode(H().w("a", 0, None, status="info").r("a", 10, 20)
                        .w("b", 30, 40).r("a", 50, 60), 1)

    def test_fail_took_no_effect(self):
        self.assertCode(H().w("a", 0, 10, status="fail").r(None, 20, 30), 0)
        self.assertCode(H().w("a", 0, 10, status="fail").r("a", 20, 30), 1)

    def test_info_read_constrains_nothing(self):
        self.assertCode(H().w("a", 0, 10).r("zzz", 20, None, status="info"), 0)

    def test_rm(self):
        h = H().w("a", 0, 10).op("rm", 20, 30)
        self.assertCode(h.r(None, 40, 50), 0)
        self.assertCode(H().w("a", 0, 10).op("rm", 20, 30).r("a", 40, 50), 1)

    def test_txn_is_compare_and_set(self):
        self.assertCode(H().w("a", 0, 10).op("txn", 20, 30, value="b", out="a")
                        .r("b", 40, 50), 0)
        self.assertCode(H().w("a", 0, 10).op("txn", 20, 30, value="b", out=None), 1)
        # two txns cannot both have read the same value
        self.assertCode(H().w("a", 0, 10)
                        .op("txn", 20, 100, value="b", out="a", client="c1")
                        .op("txn", 20, 100, value="c", out="a", client="c2"), 1)
        # an info txn is a write that may or may not have happened
        self.assertCode(H().w("a", 0, 10)
                        .op("txn", 20, None, status="info", value="b", out="zz")
                        .r("b", 40, 50), 0)

    def test_hosts_and_keys_are_separate(self):
        self.assertCode(H().w("a", 0, 10).r(None, 20, 30, host="host2")
                        .r(None, 20, 30, key=K + "x").final("a")
                        .final(None, host="host2"), 0)

    def test_init_line(self):
        h = H()
        h.lines.append({"type": "init", "host": "host1", "key": K, "value": "i"})
        self.assertCode(h.r("i", 0, 10), 0)

    def test_budget(self):
        h = H().w("a", 0, 10)
        for i in range(12):
            h.w("v%d" % i, 20 + i, None, status="info", client="c%d" % i)
        for i in range(12):
            h.r("v%d" % i, 1000 + i * 10, 1005 + i * 10)
        h.r("v0", 2000, 2010)     # v0 again: impossible, after a long search
        self.assertCode(h, 3, budget=50)
        self.assertCode(h, 1)


class Watches(unittest.TestCase):
    def test_events_of_real_changes(self):
        h = H().watch(0).event(W, 1).w("a", 10, 20).event(K, 15)
        self.assertEqual(h.run()[0], 0, h.run()[1])

    def test_event_for_a_change_that_did_not_happen(self):
        rc, text = H().watch(0).event(K + "z", 5).run()
        self.assertEqual(rc, 1, text)
        self.assertIn("a change that did not happen", text)
        rc, text = H().watch(0).event(K, 5).w("a", 10, 20).event(K, 15).run()
        self.assertEqual(rc, 1, text)       # the event came before the write

    def test_event_not_under_the_watch(self):
        rc, text = H().watch(0).w("a", 10, 20, key="/other").event("/other", 15).run()
        self.assertEqual(rc, 1, text)

    def test_event_without_a_watch(self):
        rc, text = H().w("a", 10, 20).event(K, 15).run()
        self.assertEqual(rc, 1, text)

    def test_missing_event_for_own_write(self):
        rc, text = H().watch(0).w("a", 10, 20).run()
        self.assertEqual(rc, 1, text)
        self.assertIn("no event for it before the reply", text)
        # another client's write is not required to be seen in time
        rc, text = H().watch(0).w("a", 10, 20, client="host1/sock1").run()
        self.assertEqual(rc, 0, text)

    def test_new_session_excuses(self):
        # the connection was lost and the watch set again while the write
        # was in flight: its event may have gone with the old connection
        rc, text = H().watch(0).w("a", 10, 50).watch(30, session=2).run()
        self.assertEqual(rc, 0, text)


def random_history(seed, n_ops=1500, clients=6, values_seen=True, info_p=0.05):
    """A register history linearizable by construction: every op takes
    effect at a random point between its invoke and its completion."""
    rnd = random.Random(seed)
    h = H()
    t = [0] * clients
    pending = []
    for i in range(n_ops):
        c = rnd.randrange(clients)
        a = t[c] + rnd.randrange(1, 50)
        b = a + rnd.randrange(1, 200)
        t[c] = b
        f = rnd.choice(["read", "read", "write", "write", "rm", "txn"])
        status = "info" if rnd.random() < info_p else "ok"
        lp = rnd.uniform(a, b)
        if status == "info" and rnd.random() < 0.5:
            lp = None                           # never took effect
        pending.append([lp, f, "v%d" % i, a, b, status, "c%d" % c])
    state = None
    done = []
    for p in sorted(pending, key=lambda p: (p[0] is None, p[0] or 0)):
        lp, f, v, a, b, status, c = p
        out = None
        if lp is not None:
            out = state
            if f in ("write", "txn"):
                state = v
            elif f == "rm":
                state = None
        done.append((a, f, v, out, b, status, c))
    for a, f, v, out, b, status, c in sorted(done):
        h.op(f, a, None if status == "info" else b, status=status,
             value=None if f in ("read", "rm") else v,
             out=out if f in ("read", "txn") else None, client=c)
    h.final(state, t=max(t) + 1000)
    return h


class Random(unittest.TestCase):
    def test_generated_histories_pass(self):
        for seed in range(8):
            h = random_history(seed)
            t0 = time.monotonic()
            rc, text = h.run()
            self.assertEqual(rc, 0, "seed %d: %s" % (seed, text))
            self.assertLess(time.monotonic() - t0, 30, "seed %d too slow" % seed)

    def test_corrupted_histories_fail(self):
        for seed in range(8):
            h = random_history(seed)
            reads = [l for l in h.lines if l["type"] == "op" and l["f"] == "read"
                     and l["status"] == "ok" and l["out"] is not None]
            rnd = random.Random(seed)
            victim = rnd.choice(reads)
            # a value from long before: a stale read
            older = [l for l in h.lines if l["type"] == "op" and l["f"] == "write"
                     and l["status"] == "ok"
                     and l["complete"] < victim["invoke"] - 5000]
            if not older:
                continue
            victim["out"] = older[0]["value"]
            rc, text = h.run()
            self.assertEqual(rc, 1, "seed %d: %s" % (seed, text))


class Cli(unittest.TestCase):
    def run_cli(self, text):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write(text)
        try:
            return checker.main([f.name, "--quiet"])
        finally:
            os.unlink(f.name)

    def test_bad_input(self):
        self.assertEqual(self.run_cli("not json\n"), 2)
        self.assertEqual(self.run_cli('{"type": "op", "id": 1}\n'), 2)
        self.assertEqual(self.run_cli('{"type": "what"}\n'), 2)
        self.assertEqual(checker.main(["/nonexistent/history.jsonl"]), 2)

    def test_empty_is_fine(self):
        self.assertEqual(self.run_cli(""), 0)


if __name__ == "__main__":
    unittest.main()
