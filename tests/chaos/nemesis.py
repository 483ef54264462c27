"""chaos.py's nemesis: the fault schedule, a pure function of the seed and
the options; network partitions on loopback (iptables rules in a chain of
the run's own); and the faults themselves, done to the run's cluster.
"""
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time

from cluster import LAUNCH_TIMEOUT, SetupError, now_ns

FAULTS = [("kill", 2), ("kill-leader", 2), ("kill-all", 1), ("pause", 2),
          ("partition", 2), ("oneway", 1), ("transfer", 1), ("membership", 1),
          ("restart-isolated", 1), ("cold-start", 1), ("recover", 1)]
# Drawn only when named with --faults (chaos_e2e's TestRecovery names
# both): they take 10-30 s each, and leaving them out of the default mix
# keeps the fixed seeds' schedules what they were.
OPT_IN = ("cold-start", "recover")


# ---------------------------------------------------------------------------
# The schedule: a pure function of (seed, members, seconds, scenario)


def make_schedule(seed, members, seconds, scenario, only=None):
    rng = random.Random(seed)
    faults = [(f, w) for f, w in FAULTS if only or f not in OPT_IN]
    if members >= 5:
        faults.append(("split", 2))
    if only:
        faults = [(f, w) for f, w in faults if f in only]
        if not faults:
            raise SetupError("--faults: none of %s applies" % ",".join(only))
    names = [f for f, w in faults for _ in range(w)]
    out = []
    t = 2.0                      # the clients warm up first
    while t < seconds:
        if scenario == "stale":
            f = "restart-isolated"
            dur = round(rng.uniform(1.0, 2.0), 2)
        else:
            f = rng.choice(names)
            dur = round(rng.uniform(1.0, 5.0), 2)
        e = {"n": len(out), "fault": f, "duration": dur,
             "gap": round(rng.uniform(0.5, 2.0), 2),
             "pick": round(rng.random(), 6), "pick2": round(rng.random(), 6),
             "inbound": rng.random() < 0.5}
        out.append(e)
        t += dur + e["gap"] + 1.0   # about a second to heal and restart
    return out


def pick(seq, x):
    seq = list(seq)
    return seq[min(int(x * len(seq)), len(seq) - 1)]


# ---------------------------------------------------------------------------
# Network partitions on loopback


class Net:
    """iptables rules in a chain of our own, jumped to from OUTPUT."""

    def __init__(self, reaper):
        self.chain = "XSR_CHAOS_%d" % os.getpid()
        self.made = False
        self.reaper = reaper

    def ipt(self, *a, check=True):
        p = subprocess.run(["iptables", "-w"] + list(a), capture_output=True,
                           text=True, timeout=30)
        if check and p.returncode != 0:
            raise SetupError("iptables %s: %s" % (" ".join(a), p.stderr.strip()))
        return p

    def setup(self):
        if not shutil.which("iptables"):
            raise SetupError("iptables is not installed (deploy/setup.sh)")
        # chains of earlier runs whose harness died without its reaper
        out = self.ipt("-S", check=False).stdout
        for c in set(re.findall(r"^-N (XSR_CHAOS_(\d+))$", out, re.M)):
            if not os.path.exists("/proc/%s" % c[1]):
                self.remove(c[0])
        self.reaper.tell("chain", self.chain)
        self.ipt("-N", self.chain)
        self.made = True
        self.ipt("-I", "OUTPUT", "1", "-o", "lo", "-j", self.chain)

    def drop(self, gid, ports):
        """Drop what a member of group gid sends to these TCP ports."""
        self.ipt("-A", self.chain, "-o", "lo", "-p", "tcp", "-m", "owner",
                 "--gid-owner", str(gid), "-m", "multiport", "--dports",
                 ",".join(str(p) for p in ports), "-j", "DROP")

    def heal(self):
        if self.made:
            self.ipt("-F", self.chain)

    def remove(self, chain=None):
        c = chain or self.chain
        if chain is None and not self.made:
            return
        while self.ipt("-D", "OUTPUT", "-o", "lo", "-j", c, check=False).returncode == 0:
            pass
        self.ipt("-F", c, check=False)
        self.ipt("-X", c, check=False)
        if chain is None:
            self.made = False


# ---------------------------------------------------------------------------
# The faults


class Nemesis:
    """The faults of a run, done one at a time: a base class of chaos.Run,
    whose cluster (self.c), iptables rules (self.net), notes (self.notes),
    nem(), sleep(), restart() and probe() these methods use."""

    def fault(self, e):
        f, dur, c = e["fault"], e["duration"], self.c
        ids = c.ids
        if f in ("kill", "kill-leader"):
            t = c.leader() if f == "kill-leader" else pick(ids, e["pick"])
            if t is None:
                t = pick(ids, e["pick"])
                self.notes.append("fault %d: no leader known, killed host%d" % (e["n"], t))
            self.nem(f, [t], "start", n=e["n"])
            c.kill9([t])
            self.sleep(dur)
            self.restart([t], "after %s" % f)
            self.nem(f, [t], "end", n=e["n"])
        elif f == "kill-all":
            self.nem(f, ids, "start", n=e["n"])
            c.kill9(ids)
            self.restart(ids, "after kill-all")
            self.nem(f, ids, "end", n=e["n"])
        elif f == "pause":
            t = pick(ids, e["pick"])
            self.nem(f, [t], "start", n=e["n"])
            c.signal(t, signal.SIGSTOP)
            try:
                self.sleep(dur)
            finally:
                c.signal(t, signal.SIGCONT)
            self.nem(f, [t], "end", n=e["n"])
        elif f in ("partition", "oneway", "split"):
            if f == "split":
                k = (len(ids) - 1) // 2
                rng = random.Random(e["pick"])
                side = sorted(rng.sample(ids, k))
            else:
                side = [pick(ids, e["pick"])]
            rest = [j for j in ids if j not in side]
            out_ = f != "oneway" or not e["inbound"]      # side -> rest dropped
            in_ = f != "oneway" or e["inbound"]           # rest -> side dropped
            what = f if f != "oneway" else ("oneway-in" if e["inbound"] else "oneway-out")
            self.nem(what, side, "start", n=e["n"], others=["host%d" % j for j in rest])
            try:
                if out_:
                    for s in side:
                        c_ports = [p for j in rest for p in c.ports(j)]
                        self.net.drop(c.gid(s), c_ports)
                if in_:
                    for r in rest:
                        self.net.drop(c.gid(r), [p for s in side for p in c.ports(s)])
                self.sleep(dur)
            finally:
                self.net.heal()
            self.nem(what, side, "end", n=e["n"])
        elif f == "transfer":
            ld = c.leader()
            to = pick([j for j in ids if j != ld], e["pick"])
            via = pick(ids, e["pick2"])
            self.nem(f, [to], "start", n=e["n"], leader=ld)
            rc, out, err = c.xsadm(via, "cluster", "transfer", to)
            if rc != 0:
                self.notes.append("fault %d: xsadm cluster transfer %d via host%d: exit %s %s"
                                  % (e["n"], to, via, rc, (out + err).strip()[:200]))
            self.sleep(dur)
            self.nem(f, [to], "end", n=e["n"], rc=rc)
        elif f == "restart-isolated":
            self.restart_isolated(e)
        elif f == "membership":
            self.membership(e)
        elif f == "cold-start":
            self.cold_start(e)
        elif f == "recover":
            self.recover(e)
        else:
            raise SetupError("unknown fault %r" % f)

    def isolate(self, side):
        c = self.c
        rest = [j for j in c.ids if j not in side]
        for s_ in side:
            self.net.drop(c.gid(s_), [p for j in rest for p in c.ports(j)])
        for r in rest:
            self.net.drop(c.gid(r), [p for s_ in side for p in c.ports(s_)])

    def restart_isolated(self, e):
        """kill -9 of one member while the others go on; it is restarted
        cut off from them, and read at once if it serves (it must not
        before it caught up: with XSR_FAULT_SERVE_STALE=1 it does)."""
        c = self.c
        t = pick(c.ids, e["pick"])
        self.nem("restart-isolated", [t], "start", n=e["n"])
        c.kill9([t])
        self.sleep(e["duration"])
        res = {}
        try:
            self.isolate([t])
            th = threading.Thread(target=lambda: res.update(c.launch([t])))
            th.start()
            th.join(2.0)
            if not th.is_alive() and res.get(t, (None,))[0] == 0:
                self.probe(t)           # it serves while cut off
        finally:
            self.net.heal()
        th.join(LAUNCH_TIMEOUT + 40)
        if res.get(t, (None,))[0] != 0 or not c.alive(t):
            c.findings.append(("host%d did not start (restart-isolated): exit %s"
                               % (t, res.get(t, ("?",))[0]), res.get(t, ("", ""))[1][-2000:]))
            self.restart([t], "after a failed restart-isolated")
        else:
            self.probe(t)
        self.nem("restart-isolated", [t], "end", n=e["n"])

    def membership(self, e):
        """Remove a follower, stop it, start it again, add it back as a
        standby and promote it (its data directory is kept: the member
        catches up from the leader)."""
        c = self.c
        ld = c.leader()
        if ld is None:
            self.notes.append("fault %d: membership skipped: no leader" % e["n"])
            return
        t = pick([j for j in c.ids if j != ld], e["pick"])
        via = ld
        self.nem("membership", [t], "start", n=e["n"])
        rc, out, err = c.xsadm(via, "cluster", "remove", t)
        if rc != 0:
            self.notes.append("fault %d: cluster remove %d: exit %s %s" %
                              (e["n"], t, rc, (out + err).strip()[:200]))
            self.nem("membership", [t], "end", n=e["n"], ok=False)
            return
        c.stop(t)
        self.sleep(e["duration"])
        added, detail = self.add_back(t, lambda: c.leader() or via)
        if not added:
            c.findings.append(("membership: host%d did not come back" % t, detail))
            if not c.alive(t):
                self.restart([t], "after a failed re-add")
        else:
            self.probe(t)
        promoted, detail = self.promote(t, lambda: c.leader() or via)
        if not promoted:
            self.notes.append("fault %d: cluster promote %d failed: %s" %
                              (e["n"], t, detail[:200]))
        self.nem("membership", [t], "end", n=e["n"], ok=added and promoted)

    def journal_bytes(self, i):
        try:
            return os.path.getsize(os.path.join(self.c.dir(i), "data",
                                                "standalone.journal"))
        except OSError:
            return 0

    def add_back(self, t, via):
        """Start member t (its launcher waits until it serves) while
        `xsadm cluster add` (as a standby) runs on via() until it is taken.
        (True, "") once both are done, else (False, what went wrong)."""
        c = self.c
        res = {}
        th = threading.Thread(target=lambda: res.update(c.launch([t])))
        th.start()
        raft, peer = c.addresses(t)
        added, out, err = False, "", ""
        end = time.monotonic() + 40
        while time.monotonic() < end and th.is_alive():
            rc, out, err = c.xsadm(via(), "cluster", "add", t, raft, "--peer", peer,
                                   "--name", "host%d" % t)
            if rc == 0:
                added = True
                break
            time.sleep(1)
        th.join(LAUNCH_TIMEOUT + 40)
        launched = res.get(t, ("?", ""))
        if added and launched[0] == 0:
            return True, ""
        return False, ("added %s, launcher exit %s\n%s%s" %
                       (added, launched[0], (out + err)[-500:], launched[1][-2000:]))

    def promote(self, t, via):
        """`xsadm cluster promote t` on via() until it is taken (30 s)."""
        out = err = ""
        end = time.monotonic() + 30
        while time.monotonic() < end:
            rc, out, err = self.c.xsadm(via(), "cluster", "promote", t)
            if rc == 0:
                return True, ""
            time.sleep(1)
        return False, (out + err).strip()[-2000:]

    def cold_start(self, e):
        """A whole-pool power cut, one host back first: kill -9 of every
        member, one started alone. It must serve its own tree after its
        bounded wait (cold-start-wait) and take its clients' writes in
        standalone mode; the others start after the fault's duration and
        everything written meanwhile must reach the log."""
        c = self.c
        t = pick(c.ids, e["pick"])
        rest = [j for j in c.ids if j != t]
        self.nem("cold-start", [t], "start", n=e["n"], others=["host%d" % j for j in rest])
        c.kill9(c.ids)
        res = c.launch([t])
        if res.get(t, (None,))[0] != 0 or not c.alive(t):
            c.findings.append(("host%d did not start alone (cold-start): exit %s"
                               % (t, res.get(t, ("?",))[0]), res.get(t, ("", ""))[1][-2000:]))
        else:
            self.probe(t)           # its own tree, from its local state
            self.sleep(e["duration"])
            self.probe(t)
        self.restart([j for j in c.ids if j == t and not c.alive(j)] + rest,
                     "after cold-start")
        self.nem("cold-start", [t], "end", n=e["n"])

    def recover(self, e):
        """A majority lost for good: every member but the leader killed
        and its data directory wiped; `xsadm cluster recover` on the
        leader (it holds every committed entry: no acknowledged write may
        be lost), then each lost member back with an empty data directory
        (its config without the initial `member =` lines, README
        "Recovering from the loss of a majority"), `cluster add` and
        `cluster promote`, one at a time."""
        c = self.c
        ld = c.leader()
        if ld is None or (c.status(ld) or {}).get("leader") != ld:
            self.notes.append("fault %d: recover skipped: no leader" % e["n"])
            return
        lost = [j for j in c.ids if j != ld]
        # a host lost for good loses the standalone writes its journal
        # still holds (README): wait until they are in the log, so that
        # every acknowledged write must survive
        end = time.monotonic() + 30
        while time.monotonic() < end and any(self.journal_bytes(j) for j in lost):
            time.sleep(0.2)
        if any(self.journal_bytes(j) for j in lost):
            self.notes.append("fault %d: recover skipped: standalone writes not yet "
                              "in the log" % e["n"])
            return
        self.nem("recover", [ld], "start", n=e["n"], lost=["host%d" % j for j in lost])
        c.kill9(lost)
        for j in lost:
            shutil.rmtree(os.path.join(c.dir(j), "data"), ignore_errors=True)
            with open(c.conf(j)) as f:
                text = f.read()
            with open(c.conf(j), "w") as f:
                f.write(re.sub(r"^member = .*\n", "", text, flags=re.M))
        self.sleep(e["duration"])
        recovered = False
        end = time.monotonic() + 30
        while time.monotonic() < end:
            # refused while it still believes it leads a quorum
            t_start = now_ns()
            rc, out, err = c.xsadm(ld, "cluster", "recover")
            if rc == 0:
                recovered = True
                break
            time.sleep(1)
        if not recovered:
            c.findings.append(("recover: xsadm cluster recover on host%d: exit %s" % (ld, rc),
                               (out + err)[-2000:]))
        else:
            # the same process stops and runs again, as after SIGTERM: a
            # new session for its clients, the guest's watch restored by
            # the daemon (events in flight at the stop may be lost, one
            # spurious event comes instead: HISTORY.md)
            with c.lock:
                c.epoch[ld] += 1
            end = time.monotonic() + 60
            while time.monotonic() < end and (c.status(ld) or {}).get("leader") != ld:
                time.sleep(0.5)
            if c.on_launch:
                c.on_launch(ld, t_start, now_ns())
            self.probe(ld)
        for j in lost:
            added, detail = self.add_back(j, lambda: ld)
            if not added:
                c.findings.append(("recover: host%d did not come back" % j, detail))
                continue
            promoted, detail = self.promote(j, lambda: ld)
            if not promoted:
                c.findings.append(("recover: cluster promote %d failed" % j, detail))
            self.probe(j)
        self.nem("recover", [ld], "end", n=e["n"])
