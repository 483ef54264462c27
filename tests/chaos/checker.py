#!/usr/bin/python3
"""Check a fault-injection run's history (tests/chaos/HISTORY.md).

    checker.py [--budget N] [--quiet] HISTORY.jsonl

Exit codes: 0 every check passed, 1 a violation (printed), 2 the history
cannot be read (bad JSON, a missing field), 3 undecided (a key's search ran
out of its step budget: no violation found, none ruled out).

What it proves, per host tree:

1. Linearizability of every key as a register (value: a string, or absent).
   Each key is checked on its own (a register history is linearizable iff
   each key's is: Herlihy and Wing's locality). The search is Wing and
   Gong's, with Lowe's memoisation of (linearized set, state), as in
   Porcupine and Knossos: repeatedly pick an operation that has been
   invoked before the earliest pending completion, apply it to the model,
   and backtrack when none fits.
     read  ok    the register holds `out`
     write ok    it now holds `value`;   rm ok: it is now absent
     txn   ok    it held `out` and now holds `value` (compare-and-set)
     fail        took no effect: left out
     info        may have taken effect once, at any time after its invoke,
                 or never: its completion is at infinity and it need not be
                 linearized (a write, rm or txn has no precondition there:
                 an info txn's read is unknown, so it is a plain write)
     read info   constrains nothing: left out
     final       a read at the end, after every fault was healed
   An info write whose value nothing ever read is left out as well: it
   cannot make a history linearizable that is not one without it (the
   state it sets is overwritten before any operation depends on it), and
   each such write would otherwise double the search space.
2. No acknowledged write lost: follows from 1 and the final reads.
3. Watch events, per client: an event names the watched path itself (a
   registration's first event; the one a restarted daemon fires) or a key
   under it on which some write, rm or txn (ok or info) of that host was
   invoked before the event arrived; and an ok write or txn of a key under
   the client's own watch, invoked after that session's watch was set,
   had an event for that key reach the client no later than the reply
   (xenstored queues a connection's events before its replies). An rm is
   not required to fire: removing a missing key fires nothing.
"""
import argparse
import bisect
import collections
import json
import sys

INF = float("inf")
DEFAULT_BUDGET = 2_000_000   # search steps per key before "undecided"


class BadHistory(Exception):
    """The file does not follow HISTORY.md."""


class Op:
    """One register operation of one key, as the search sees it."""

    __slots__ = ("id", "client", "f", "value", "out", "invoke", "complete",
                 "status", "final")

    def __init__(self, id, client, f, value, out, invoke, complete, status,
                 final=False):
        self.id, self.client, self.f = id, client, f
        self.value, self.out = value, out
        self.invoke, self.complete, self.status = invoke, complete, status
        self.final = final

    def describe(self):
        t = "final read" if self.final else "op %s by %s" % (self.id, self.client)
        if self.f == "read":
            what = "read -> %s" % _show(self.out)
        elif self.f == "write":
            what = "write %s" % _show(self.value)
        elif self.f == "rm":
            what = "rm"
        else:
            what = "txn %s -> %s" % (_show(self.out), _show(self.value))
        end = "..." if self.complete == INF else str(self.complete)
        return "%s: %s [%s, %s] %s" % (t, what, self.invoke, end, self.status)


def _show(v):
    return "absent" if v is None else json.dumps(v)


# ---------------------------------------------------------------------------
# Reading the history

def _need(line, no, *fields):
    for f in fields:
        if f not in line:
            raise BadHistory("line %d: %s line without %r" % (no, line.get("type"), f))


def read_history(path):
    """The parsed lines of a history file, grouped by type."""
    h = {"op": [], "event": [], "watch": [], "nemesis": [], "final": [],
         "init": []}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise BadHistory("%s: %s" % (path, e.strerror))
    with f:
        for no, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError as e:
                raise BadHistory("line %d: not JSON (%s)" % (no, e))
            if not isinstance(line, dict) or line.get("type") not in h:
                raise BadHistory("line %d: unknown line type" % no)
            t = line["type"]
            if t == "op":
                _need(line, no, "id", "client", "host", "f", "key", "invoke",
                      "status")
                if line["f"] not in ("read", "write", "rm", "txn"):
                    raise BadHistory("line %d: unknown f %r" % (no, line["f"]))
                if line["status"] not in ("ok", "fail", "info"):
                    raise BadHistory("line %d: unknown status %r" % (no, line["status"]))
                if line["status"] == "ok" and line.get("complete") is None:
                    raise BadHistory("line %d: an ok op without complete" % no)
            elif t == "event":
                _need(line, no, "client", "host", "path", "token", "time")
            elif t == "watch":
                _need(line, no, "client", "host", "path", "token", "time")
            elif t in ("final", "init"):
                _need(line, no, "host", "key")
            h[t].append(line)
    return h


def register_ops(h):
    """{(host, key): [Op]} for the linearizability search, and the initial
    values ({(host, key): value}, absent unless an init line says)."""
    per = collections.defaultdict(list)
    for o in h["op"]:
        st, f = o["status"], o["f"]
        if st == "fail" or (st == "info" and f == "read"):
            continue
        complete = INF if st == "info" else o["complete"]
        out = o.get("out")
        if st == "info" and f == "txn":
            f, out = "write", None
        per[(o["host"], o["key"])].append(
            Op(o["id"], o["client"], f, o.get("value"), out, o["invoke"],
               complete, st))
    end = max([o["invoke"] for o in h["op"]] +
              [o["complete"] for o in h["op"] if o.get("complete") is not None] +
              [0])
    for fl in h["final"]:
        t = fl.get("time", end + 1)
        per[(fl["host"], fl["key"])].append(
            Op("final", "checker", "read", None, fl.get("value"), t, t, "ok",
               final=True))
    init = {(i["host"], i["key"]): i.get("value") for i in h["init"]}
    return per, init


def prune(ops):
    """Bound the info operations of one register.

    An info write matters only until the last operation that observed its
    value completes: placed later, it sets a value nobody reads (a state
    that can only hurt), so its completion becomes that time, and it is
    left out if nothing observed its value at all. Info rms stay open to
    the end (absence is observed everywhere), but they are all alike, and
    the search only ever places the earliest one still open."""
    last = {}
    for o in ops:
        if o.status == "ok" and o.f in ("read", "txn"):
            last[o.out] = max(last.get(o.out, -INF), o.complete)
    kept = []
    for o in ops:
        if o.status == "info" and o.f == "write":
            if o.value not in last or last[o.value] < o.invoke:
                continue
            o.complete = last[o.value]
        kept.append(o)
    return kept


def definitely_stale(ops, init=None):
    """Reads that cannot be linearized whatever the order, found in
    O(n log n) before the search (which, on a failing history, must try
    every order of the prefix and may run out of budget): a value nobody
    wrote, or a value whose write was followed, strictly in real time, by
    another completed change, itself complete before the read began.
    Only for values written once (the harness writes unique values)."""
    writers = collections.defaultdict(list)
    if init is not None:
        writers[init].append(Op("init", "checker", "write", init, None,
                                -INF, -INF, "ok"))
    for o in ops:
        if o.f in ("write", "txn"):
            writers[o.value].append(o)
    muts = sorted((o for o in ops if o.f != "read" and o.status == "ok"),
                  key=lambda o: o.invoke)
    starts = [o.invoke for o in muts]
    suffix = [INF] * (len(muts) + 1)       # min complete among muts[i:]
    for i in range(len(muts) - 1, -1, -1):
        suffix[i] = min(muts[i].complete, suffix[i + 1])
    found = []
    for r in ops:
        if r.status != "ok" or r.f not in ("read", "txn") or r.out is None:
            continue
        ws = writers.get(r.out, [])
        if not ws:
            found.append((r, "it read %s, which no operation wrote" % _show(r.out)))
            continue
        if len(ws) != 1 or ws[0].complete == INF:
            continue
        i = bisect.bisect_right(starts, ws[0].complete)
        if suffix[i] < r.invoke:
            later = next(m for m in muts[i:] if m.complete == suffix[i])
            found.append((r, "it read %s, written by op %s (done at %s), but "
                             "op %s changed the key after that and was done at "
                             "%s, before the read began"
                          % (_show(r.out), ws[0].id, ws[0].complete, later.id,
                             later.complete)))
    return found


# ---------------------------------------------------------------------------
# The register search (Wing and Gong, Lowe's cache)

def step(state, op):
    """(fits, new state) of applying op to a register holding state."""
    if op.f == "read":
        return op.out == state, state
    if op.f == "write":
        return True, op.value
    if op.f == "rm":
        return True, None
    return op.out == state, op.value            # txn: compare-and-set


class Result:
    def __init__(self, ok, undecided=False, stuck=None, states=(), done=0):
        self.ok, self.undecided = ok, undecided
        self.stuck = stuck          # the op the deepest attempt could not place
        self.states = states        # what the register could hold there
        self.done = done            # how many ops the deepest attempt placed


def linearizable(ops, init=None, budget=DEFAULT_BUDGET):
    """Search for a linearization of one register's ops.

    ok ops must all be placed, each between its invoke and its completion;
    info ops (optional) may be placed in their window or dropped once the
    walk reaches their completion. A frame of the search stack is a placed
    op (to try the next candidate instead) or a forced drop (undone on the
    way back). Lowe's cache holds every (resolved set, state) already
    explored: the rest of the search depends on nothing else."""
    ops = sorted(ops, key=lambda o: (o.invoke, o.complete))
    n = len(ops)
    if n == 0:
        return Result(True)
    # Entries 1..2n: calls and returns, by time (calls first on a tie: the
    # lenient reading of two operations that touch). 0 is the list head.
    ev = [(o.invoke, 0, i) for i, o in enumerate(ops)]
    ev += [(o.complete, 1, i) for i, o in enumerate(ops)]
    ev.sort(key=lambda e: (e[0], e[1]))
    kind = [None] + [e[1] for e in ev]
    opi = [None] + [e[2] for e in ev]
    call_of, ret_of = {}, {}
    for pos in range(1, 2 * n + 1):
        (ret_of if kind[pos] else call_of)[opi[pos]] = pos
    nxt = list(range(1, 2 * n + 2))
    nxt[2 * n] = 0
    prv = list(range(-1, 2 * n))
    prv[0] = 2 * n

    def lift(i):                   # unlink op i's call and return
        for p in (call_of[i], ret_of[i]):
            nxt[prv[p]] = nxt[p]
            prv[nxt[p]] = prv[p]

    def unlift(i):                 # relink them (the inverse order of lift)
        for p in (ret_of[i], call_of[i]):
            nxt[prv[p]] = p
            prv[nxt[p]] = p

    optional = [o.status == "info" for o in ops]
    open_rms = [i for i, o in enumerate(ops)         # by invoke (ops sorted)
                if optional[i] and o.f == "rm" and o.complete == INF]
    must = n - sum(optional)
    state, resolved, placed_must = init, 0, 0
    cache = set()
    stack = []                     # (op index, state before, placed?)
    best = (-1, None, set())
    steps = 0

    def first_open_rm():
        for j in open_rms:
            if not resolved >> j & 1:
                return j
        return None

    def backtrack():
        """Undo forced drops, then the last placement: the next entry to
        try, or None when nothing is left to try."""
        nonlocal state, resolved, placed_must
        while stack:
            j, state, was_placed = stack.pop()
            resolved &= ~(1 << j)
            unlift(j)
            if was_placed:
                if not optional[j]:
                    placed_must -= 1
                return nxt[call_of[j]]
        return None

    pos = nxt[0]
    while placed_must < must:
        steps += 1
        if steps > budget:
            return Result(False, undecided=True, done=best[0])
        i = opi[pos]
        op = ops[i]
        if kind[pos] == 0:
            if optional[i] and i in open_rms and first_open_rm() != i:
                pos = nxt[pos]     # an earlier open rm stands for this one
                continue
            fits, new = step(state, op)
            if fits:
                key = (resolved | 1 << i, new)
                if key not in cache:
                    cache.add(key)
                    stack.append((i, state, True))
                    resolved |= 1 << i
                    if not optional[i]:
                        placed_must += 1
                    state = new
                    lift(i)
                    pos = nxt[0]
                    continue
            pos = nxt[pos]
            continue
        if optional[i]:
            # An info op's window has passed: from here it never happened.
            key = (resolved | 1 << i, state)
            if key not in cache:
                cache.add(key)
                stack.append((i, state, False))
                resolved |= 1 << i
                lift(i)
                pos = nxt[0]
                continue
        else:
            # The return of an ok op not yet placed: nothing after it may
            # go first.
            depth = len(stack)
            if depth > best[0]:
                best = (depth, op, {state})
            elif depth == best[0] and best[1] is op:
                best[2].add(state)
        pos = backtrack()
        if pos is None:
            return Result(False, stuck=best[1],
                          states=sorted(best[2], key=_show), done=best[0])
    return Result(True)


# ---------------------------------------------------------------------------
# Watches

def _under(path, watched):
    return path == watched or path.startswith(watched.rstrip("/") + "/")


def check_watches(h):
    """A list of violation messages about watch events."""
    bad = []
    mut = collections.defaultdict(list)      # (host, key) -> invoke times
    for o in h["op"]:
        if o["f"] != "read" and o["status"] in ("ok", "info"):
            mut[(o["host"], o["key"])].append(o["invoke"])
    for v in mut.values():
        v.sort()
    watches = collections.defaultdict(list)  # client -> watch lines by time
    for w in h["watch"]:
        watches[w["client"]].append(w)
    for v in watches.values():
        v.sort(key=lambda w: w["time"])
    events = collections.defaultdict(list)   # client -> events by time
    for e in h["event"]:
        events[e["client"]].append(e)
    for v in events.values():
        v.sort(key=lambda e: e["time"])

    def watch_at(client, token, t):
        """The latest registration of token by client before t."""
        found = None
        for w in watches.get(client, ()):
            if w["time"] > t:
                break
            if w["token"] == token:
                found = w
        return found

    for client, evs in events.items():
        for e in evs:
            w = watch_at(client, e["token"], e["time"])
            if w is None:
                bad.append("event %s (token %s) to %s at %s: no watch with "
                           "that token" % (e["path"], e["token"], client, e["time"]))
                continue
            if not _under(e["path"], w["path"]):
                bad.append("event %s to %s at %s is not under its watch %s"
                           % (e["path"], client, e["time"], w["path"]))
            elif e["path"] != w["path"]:
                times = mut.get((e["host"], e["path"]), [])
                if not times or times[0] > e["time"]:
                    bad.append("event %s to %s at %s: no write, rm or txn of "
                               "that key was invoked before it (a change that "
                               "did not happen)" % (e["path"], client, e["time"]))

    # (client, path, token) -> event times, for the completeness check
    times = collections.defaultdict(list)
    for client, evs in events.items():
        for e in evs:
            times[(client, e["path"], e["token"])].append(e["time"])
    for o in h["op"]:
        if o["status"] != "ok" or o["f"] not in ("write", "txn"):
            continue
        client = o["client"]
        ws = watches.get(client, ())
        done = [w.get("complete", w["time"]) for w in ws]
        k = bisect.bisect_right(done, o["invoke"])
        if k == 0:
            continue                # no watch set yet
        w = ws[k - 1]
        if any(w["time"] < x["time"] <= o["complete"] for x in ws[k:]) \
                or not _under(o["key"], w["path"]):
            continue                # not watched, or a new session began
        ts = times.get((client, o["key"], w["token"]), [])
        j = bisect.bisect_left(ts, o["invoke"])
        if j == len(ts) or ts[j] > o["complete"]:
            bad.append("op %s by %s (%s %s, ok, [%s, %s]) under its own watch "
                       "%s: no event for it before the reply"
                       % (o["id"], client, o["f"], o["key"], o["invoke"],
                          o["complete"], w["path"]))
    return bad


# ---------------------------------------------------------------------------

def check(h, budget=DEFAULT_BUDGET, out=sys.stdout, quiet=False):
    """Run every check; print the findings; return the exit code."""
    per, init = register_ops(h)
    violations, undecided = [], []
    counts = collections.Counter(o["status"] for o in h["op"])
    for (host, key), ops in sorted(per.items()):
        stale = definitely_stale(ops, init.get((host, key)))
        if stale:
            violations.append((host, key, ops, stale))
            continue
        ops = prune(ops)
        r = linearizable(ops, init.get((host, key)), budget)
        if r.undecided:
            undecided.append((host, key, len(ops)))
        elif not r.ok:
            violations.append((host, key, ops, r))
    watch_bad = check_watches(h)

    if not quiet:
        print("checker: %d ops (%d ok, %d fail, %d info), %d keys, %d events, "
              "%d final reads" % (len(h["op"]), counts["ok"], counts["fail"],
                                  counts["info"], len(per), len(h["event"]),
                                  len(h["final"])), file=out)
    for host, key, ops, r in violations:
        print("NOT LINEARIZABLE: %s %s (%d ops)" % (host, key, len(ops)), file=out)
        if isinstance(r, list):
            for op, why in r[:10]:
                print("    %s\n      %s" % (op.describe(), why), file=out)
            if len(r) > 10:
                print("    ... and %d more such reads" % (len(r) - 10), file=out)
            continue
        if r.stuck is not None:
            print("  after %d ops in the longest valid order, the register could "
                  "hold %s, but:" % (r.done, " or ".join(_show(s) for s in r.states)),
                  file=out)
            print("    " + r.stuck.describe(), file=out)
            near = [o for o in ops if o is not r.stuck and
                    o.invoke <= r.stuck.complete and o.complete >= r.stuck.invoke - 2_000_000_000]
            for o in sorted(near, key=lambda o: o.invoke)[-12:]:
                print("      near: " + o.describe(), file=out)
    for m in watch_bad:
        print("WATCH: " + m, file=out)
    for host, key, n in undecided:
        print("UNDECIDED: %s %s (%d ops): search budget %d exceeded"
              % (host, key, n, budget), file=out)
    if violations or watch_bad:
        print("checker: %d keys not linearizable, %d watch violations"
              % (len(violations), len(watch_bad)), file=out)
        return 1
    if undecided:
        return 3
    if not quiet:
        print("checker: every key linearizable, watch events consistent", file=out)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Check a fault-injection history (tests/chaos/HISTORY.md) "
                    "for linearizability per key and for consistent watch events.")
    ap.add_argument("history", help="history.jsonl written by chaos.py")
    ap.add_argument("--budget", type=int, default=DEFAULT_BUDGET,
                    help="search steps per key before giving up (exit 3)")
    ap.add_argument("--quiet", action="store_true", help="print findings only")
    a = ap.parse_args(argv)
    try:
        h = read_history(a.history)
    except BadHistory as e:
        print("checker: bad history: %s" % e, file=sys.stderr)
        return 2
    return check(h, a.budget, quiet=a.quiet)


if __name__ == "__main__":
    sys.exit(main())
