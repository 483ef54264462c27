#!/usr/bin/python3
"""chaos.py: a seeded, randomized fault-injection run against a real cluster.

The model. A cluster of N members (default 3) from deploy/cluster.sh runs on
127.0.0.1, each member in its own group id (60000+I, through setpriv) so that
iptables rules can cut it off. Every host I gets one sim guest domain
D = 10+I (tests/lib/simguest.py) and a small set of registers, the keys
/local/domain/D/chaos/k0..k4 of host I's tree. On every host, N socket
clients (threads, each with its own connection to that host's Unix socket)
and the sim guest (on its ring) read, write, remove and read-modify-write
(one xenstore transaction) those keys, all through host I's member, and
each watches /local/domain/D/chaos. Every operation is recorded with its
invoke and completion times and an outcome ok / fail / info in
ARTEFACTS/history.jsonl, in the format of tests/chaos/HISTORY.md: a
timeout (5 s), EIO, a closed connection or a killed member is "info" (it
may or may not have taken effect); a socket client then reconnects with
session+1 and registers its watch again; the sim guest keeps its ring and
counts a new session each time its member was killed.

The faults. A nemesis driven by random.Random(seed) alone (the schedule is
written to ARTEFACTS/schedule.json before the run and is the same for the
same seed; which member is "the leader" is resolved at run time and logged
in the history's nemesis lines) runs one fault at a time, each lasting a
random 1-5 s, with a heal and a pause between:
  restart-isolated  kill -9 of one member, restarted while cut off from
              the others, read at once if it serves; then healed
  kill        kill -9 of one member, restarted afterwards (and read at once
              by a probe client, so a member that serves before catching up
              is seen)
  kill-leader kill -9 of the leader (xsadm cluster status --json)
  kill-all    kill -9 of every member, all restarted at the same moment
  pause       SIGSTOP of one member, then SIGCONT
  partition   one member cut off both ways (iptables on loopback, keyed by
              the member's group id and the other members' Raft and peer
              ports, in a chain XSR_CHAOS_<pid> jumped to from OUTPUT)
  oneway      one member cannot send to the others (or cannot receive)
  split       (5 members) a random minority cut off from the majority
  transfer    xsadm cluster transfer to a random other voter
  membership  xsadm cluster remove of a follower, its daemon stopped, then
              restarted, xsadm cluster add (standby) and promote again
  cold-start  kill -9 of every member, one started alone: it serves its own
              tree after cold-start-wait (probed) and its clients write in
              standalone mode; the others start after the duration
  recover     every member but the leader killed and its data directory
              wiped; xsadm cluster recover on the leader (which holds every
              committed entry, so no acknowledged write may be lost); the
              lost members added back empty (cluster add, promote)
The end: every fault healed, every dead member restarted, the cluster
healthy (bounded), every key read on its host's socket ("final" lines),
xsadm cluster verify (must agree), every member log and sanitizer log
scanned for crashes, then tests/chaos/checker.py HISTORY judges the
history (linearizability per (host, key), no acknowledged write lost,
watch events).

Reproducing a seed: run it again with the same --seed, --members and
--seconds (and --scenario, --faults): the nemesis does the same faults in the same
order with the same durations; the clients' own choices are seeded too,
but their interleaving with the faults depends on timing.

    tests/chaos/chaos.py --seed 7 --seconds 60 [--members 5] [--dir D]
                         [--keep] [--bin build/bin] [--scenario stale]
                         [--faults kill,pause,...] [--checker PATH]

--scenario stale: only kill -9 of one member while the others go on
writing (at a higher rate: --pace 0.005), its restart while cut off from
them, and a read at once by the probe; with XSR_FAULT_SERVE_STALE=1 in the
environment (passed to the daemons) it serves its last snapshot (members
snapshot every --snapshot-threshold entries: 256 by default, 32 here) and
the checker must report a violation (chaos_catches_stale).

Exit codes: 0 every check passed; 1 a violation or a crash was found (what
and where the artefacts are is printed); 2 harness or setup error (also
the checker undecided, or bad input to it). Every process started is
stopped by PID and the iptables chain removed, also on Ctrl-C or failure
(a reaper process does both even if this one is killed).

The files: chaos.py (the options, the run and its verdict), cluster.py
(the members and the reaper), clients.py (the clients and the history
file) and nemesis.py (the schedule, the partitions and the faults).
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import simguest as sg  # noqa: E402
import xsproto  # noqa: E402
from xsproto import T, args  # noqa: E402

from clients import (DEFINITE, OP_TIMEOUT, GuestClient, History,  # noqa: E402
                     SockClient, err_name)
from cluster import (HEALTHY_TIMEOUT, PYTHON, Cluster, Reaper,  # noqa: E402
                     SetupError, now_ns, tail)
from nemesis import FAULTS, Nemesis, Net, make_schedule  # noqa: E402

CHECKER = os.path.join(HERE, "checker.py")

KEYS = 5                 # registers per host


def log(fmt, *a):
    sys.stdout.write("chaos: " + (fmt % a if a else fmt) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# The run


class Run(Nemesis):
    def __init__(self, opts):
        self.o = opts
        self.art = opts.dir
        self.reaper = Reaper()
        self.net = Net(self.reaper)
        self.c = Cluster(os.path.join(self.art, "cluster"), opts.members, opts.bin,
                         self.reaper, self.art)
        self.c.env["XSR_SNAPSHOT_THRESHOLD"] = str(opts.snapshot_threshold)
        self.c.env["XSR_SNAPSHOT_TRAILING"] = str(opts.snapshot_trailing)
        self.h = History(os.path.join(self.art, "history.jsonl"))
        self.halt = threading.Event()
        self.clients = []
        self.sims = []
        self.domid = {i: 10 + i for i in self.c.ids}
        self.keys = {i: ["/local/domain/%d/chaos/k%d" % (self.domid[i], k)
                         for k in range(KEYS)] for i in self.c.ids}
        self.notes = []
        self.probe_session = {}

    def nem(self, what, targets, phase, **extra):
        rec = {"type": "nemesis", "time": now_ns(), "what": what,
               "targets": ["host%d" % t for t in targets], "phase": phase}
        rec.update(extra)
        self.h.put(rec)

    # -- setup ----------------------------------------------------------------
    def setup(self):
        self.net.setup()
        self.c.up()
        if not self.c.wait_healthy(60):
            raise SetupError("the new cluster is not healthy")
        seeds = random.Random(self.o.seed ^ 0x5eed)
        guests = {}
        self.c.on_launch = lambda i, t0, t1: guests[i].restored(t0, t1) if i in guests else None
        for i in self.c.ids:
            d = self.domid[i]
            sim = sg.SimDir(self.c.shim(i))
            self.sims.append(sim)
            with xsproto.Conn(self.c.sock(i), timeout=10) as conn:
                g = sg.introduce(conn, sim, d)
                chaos = "/local/domain/%d/chaos" % d
                conn.write(chaos, b"")
                conn.set_perms(chaos, ["n%d" % d])
            g.timeout = OP_TIMEOUT
            wdir = "/local/domain/%d/chaos" % d
            host = "host%d" % i
            for k in range(self.o.clients):
                self.clients.append(SockClient(self.h, "%s/sock%d" % (host, k), host,
                                               self.c.sock(i), self.keys[i], wdir,
                                               seeds.getrandbits(32), self.halt))
            guests[i] = GuestClient(self.h, "%s/dom%d" % (host, d), host, self.c,
                                    i, g, self.keys[i], wdir,
                                    seeds.getrandbits(32), self.halt)
            self.clients.append(guests[i])

    # -- faults ---------------------------------------------------------------
    def probe(self, i):
        """Read every key of host i at once on its socket (recorded ops)."""
        name = "host%d/probe" % i
        self.probe_session[i] = self.probe_session.get(i, 0) + 1
        try:
            conn = xsproto.Conn(self.c.sock(i), timeout=OP_TIMEOUT)
        except OSError as e:
            self.notes.append("probe of host%d could not connect: %s" % (i, e))
            return
        try:
            for key in self.keys[i]:
                rec = {"type": "op", "id": self.h.next_id(), "client": name,
                       "host": "host%d" % i, "f": "read", "key": key, "value": None,
                       "invoke": now_ns(), "complete": None, "status": None,
                       "out": None, "error": None}
                try:
                    m = conn.request("READ", args(key))
                except (TimeoutError, OSError, xsproto.Closed) as e:
                    rec.update(complete=now_ns(), status="info", error=type(e).__name__)
                    self.h.put(rec)
                    return
                rec["complete"] = now_ns()
                if m.type == T["ERROR"]:
                    e = err_name(m)
                    if e == "ENOENT":
                        rec["status"] = "ok"
                    else:
                        rec.update(status="info" if e not in DEFINITE else "fail", error=e)
                else:
                    rec.update(status="ok", out=m.payload.decode(errors="replace"))
                self.h.put(rec)
        finally:
            conn.close()

    def restart(self, ids, why):
        ok = self.c.restart(ids, why)
        if ok:
            for i in ids:
                self.probe(i)
        return ok

    def sleep(self, s):
        end = time.monotonic() + s
        while time.monotonic() < end:
            # the clock may pass `end` between the test and the call
            time.sleep(max(0.0, min(0.1, end - time.monotonic())))

    def others(self, i):
        return [j for j in self.c.ids if j != i]

    def check_alive(self, when):
        """A member that died without being killed by us is a crash."""
        for i in self.c.ids:
            if i not in self.c.expected_down and not self.c.alive(i):
                self.c.findings.append(("host%d exited by itself (%s)" % (i, when),
                                        tail(self.c.logfile(i))))
                with self.c.lock:
                    self.c.epoch[i] += 1
                self.restart([i], "after it exited by itself")

    def heal_all(self):
        self.net.heal()
        for i in self.c.ids:
            self.c.signal(i, signal.SIGCONT)
        dead = [i for i in self.c.ids if not self.c.alive(i)]
        if dead:
            self.restart(dead, "final heal")

    # -- the whole run -----------------------------------------------------------
    def run(self):
        o = self.o
        sched = make_schedule(o.seed, o.members, o.seconds, o.scenario, o.faults)
        with open(os.path.join(self.art, "schedule.json"), "w") as f:
            json.dump({"seed": o.seed, "members": o.members, "seconds": o.seconds,
                       "scenario": o.scenario, "only": o.faults,
                       "snapshot_threshold": o.snapshot_threshold,
                       "snapshot_trailing": o.snapshot_trailing,
                       "clients_per_host": o.clients,
                       "faults": sched}, f, indent=1)
        self.setup()
        for cl in self.clients:
            cl.pace = o.pace
            cl.start()
        t_start = time.monotonic()
        self.sleep(2.0)
        for e in sched:
            if time.monotonic() - t_start > o.seconds:
                self.notes.append("time up after %d of %d faults" % (e["n"], len(sched)))
                break
            log("fault %d: %s (%.1f s)", e["n"], e["fault"], e["duration"])
            self.fault(e)
            self.check_alive("after fault %d (%s)" % (e["n"], e["fault"]))
            self.sleep(e["gap"])
        self.heal_all()
        self.sleep(2.0)                     # the clients on a healed cluster
        self.halt.set()
        for cl in self.clients:
            cl.join(OP_TIMEOUT * 4 + 5)
        stuck = [cl.cname for cl in self.clients if cl.is_alive()]
        errs = [cl.error for cl in self.clients if cl.error]
        if stuck or errs:
            raise SetupError("clients stuck %s, client errors %s" % (stuck, errs))
        self.check_alive("at the end")
        if not self.c.wait_healthy():
            self.c.findings.append(("the cluster did not become healthy within %d s"
                                    % HEALTHY_TIMEOUT, ""))
        self.final_reads()
        self.verify()

    def final_reads(self):
        for i in self.c.ids:
            with xsproto.Conn(self.c.sock(i), timeout=10) as conn:
                for key in self.keys[i]:
                    m = conn.request("READ", args(key))
                    if m.type == T["ERROR"]:
                        if err_name(m) != "ENOENT":
                            raise SetupError("final read of %s on host%d: %s"
                                             % (key, i, err_name(m)))
                        v = None
                    else:
                        v = m.payload.decode(errors="replace")
                    self.h.put({"type": "final", "host": "host%d" % i, "key": key,
                                "value": v, "time": now_ns()})

    def verify(self):
        for attempt in range(5):
            rc, out, err = self.c.xsadm(self.c.ids[0], "cluster", "verify", timeout=60)
            with open(os.path.join(self.art, "verify.txt"), "w") as f:
                f.write("exit %s\n%s%s" % (rc, out, err))
            if rc == 0:
                return
            if rc == 1 and "differ" in (out + err).lower():
                break
            time.sleep(2)
        self.c.findings.append(("xsadm cluster verify: exit %s" % rc, (out + err)[-2000:]))

    def cleanup(self):
        self.halt.set()
        try:
            self.net.heal()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.c.down()
        finally:
            try:
                self.net.remove()
            finally:
                for s in self.sims:
                    try:
                        s.close()
                    except Exception:  # noqa: BLE001
                        pass
                self.h.close()
                self.reaper.close()


def run_checker(opts, history):
    checker = opts.checker or os.environ.get("XSR_CHAOS_CHECKER") or CHECKER
    if not os.path.exists(checker):
        return None, "no checker at %s" % checker
    try:
        p = subprocess.run([PYTHON, checker, history], capture_output=True, text=True,
                           timeout=opts.checker_timeout)
    except subprocess.TimeoutExpired:
        return 3, "checker timed out after %d s" % opts.checker_timeout
    with open(os.path.join(opts.dir, "checker.txt"), "w") as f:
        f.write("exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
    return p.returncode, (p.stdout + p.stderr).strip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--clients", type=int, default=2, help="socket clients per host")
    ap.add_argument("--pace", type=float, default=None,
                    help="mean pause of a client between two operations, s "
                    "(0.03; 0.005 for --scenario stale)")
    ap.add_argument("--dir", help="artefact directory (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the artefacts even on success")
    ap.add_argument("--bin", default=os.environ.get("XSR_BIN", os.path.join(REPO, "build", "bin")))
    ap.add_argument("--scenario", choices=["mixed", "stale"], default="mixed")
    ap.add_argument("--snapshot-threshold", type=int, default=None,
                    help="members snapshot every N log entries (256; 32 for "
                    "--scenario stale), so that snapshots are taken, sent "
                    "and restored under the faults")
    ap.add_argument("--snapshot-trailing", type=int, default=None,
                    help="log entries kept after a snapshot (a quarter of "
                    "the threshold): a member that falls further behind is "
                    "caught up by an installed snapshot")
    ap.add_argument("--faults", type=lambda v: v.split(","), default=None,
                    help="only these faults (comma-separated; default all): " +
                    ",".join(f for f, _ in FAULTS) + ",split")
    ap.add_argument("--checker", help="checker script (default tests/chaos/checker.py)")
    ap.add_argument("--checker-timeout", type=int, default=300)
    o = ap.parse_args(argv)
    if o.pace is None:
        o.pace = 0.005 if o.scenario == "stale" else 0.03
    if o.snapshot_threshold is None:
        o.snapshot_threshold = 32 if o.scenario == "stale" else 256
    if o.snapshot_trailing is None:
        o.snapshot_trailing = max(4, o.snapshot_threshold // 4)
    if o.seed is None:
        o.seed = random.SystemRandom().randrange(1 << 31)
    o.seconds = o.seconds if o.seconds is not None else (o.minutes * 60 if o.minutes else 40)
    o.bin = os.path.abspath(o.bin)
    if not os.path.exists(os.path.join(o.bin, "xenstored")):
        print("chaos: no xenstored in %s" % o.bin, file=sys.stderr)
        return 2
    keep = o.keep or bool(o.dir)
    if o.dir:
        os.makedirs(o.dir, exist_ok=True)
        o.dir = os.path.abspath(o.dir)
    else:
        o.dir = tempfile.mkdtemp(prefix="xsr-chaos-s%d-" % o.seed)
    log("seed %d, %d members, %.0f s, scenario %s, artefacts in %s",
        o.seed, o.members, o.seconds, o.scenario, o.dir)

    def on_term(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)

    r = Run(o)
    rc = 2
    t0 = time.monotonic()
    try:
        try:
            r.run()
        finally:
            r.cleanup()
        crashes = r.c.scan_logs()
        counts = r.h.counts
        log("%d ops ok, %d fail, %d info, %d watch events in %.0f s",
            counts["ok"], counts["fail"], counts["info"], counts["event"],
            time.monotonic() - t0)
        for n in r.notes:
            log("note: %s", n)
        bad = False
        for what, detail in r.c.findings:
            bad = True
            log("FOUND: %s\n%s", what, detail)
        for path, line in crashes:
            bad = True
            log("FOUND in %s: %s", path, line)
        crc, cout = run_checker(o, os.path.join(o.dir, "history.jsonl"))
        if crc is None:
            log("checker: %s", cout)
            rc = 2
        elif crc == 0:
            log("checker: history checked, no violation")
            rc = 1 if bad else 0
        elif crc == 1:
            log("VIOLATION (checker):\n%s", cout[-6000:])
            rc = 1
        else:
            log("checker exit %d (%s):\n%s", crc, "bad input" if crc == 2 else "undecided",
                cout[-3000:])
            rc = 1 if bad else 2
    except SetupError as e:
        log("harness error: %s", e)
        rc = 2
    except KeyboardInterrupt as e:
        log("interrupted (%s)", e)
        rc = 2
    except Exception:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        rc = 2
    if rc == 0 and not keep:
        shutil.rmtree(o.dir, ignore_errors=True)
        log("PASS (seed %d); artefacts removed (--keep keeps them)", o.seed)
    else:
        log("%s (seed %d); artefacts in %s", {0: "PASS", 1: "FAIL"}.get(rc, "ERROR"),
            o.seed, o.dir)
    return rc


if __name__ == "__main__":
    sys.exit(main())
