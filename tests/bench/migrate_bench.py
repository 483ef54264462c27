#!/usr/bin/env python3
"""What the store move adds to a migration's downtime (issue 16).

During `xl migrate` the guest is suspended on the source until the
destination unpauses it; in between, the destination's toolstack
INTRODUCEs the new domain, and with our daemon that INTRODUCE copies the
old domain's home into the new one (store_domain_inherit()). The time it
adds to the downtime is the INTRODUCE's round trip with a home to inherit
minus the same round trip with nothing to inherit (a source that is not
suspending), as the destination's toolstack sees it on its own socket.

Measured here with socket clients playing libxl (tests/migrate's
TestXlMigrate does the same steps as a test) and sim rings, for a source
home of --nodes nodes (default 100: the issue's target is under 10 ms at
p99), --runs times each way, interleaved, on
  one      one daemon (a cluster of one)
  cluster  a 3-member cluster from deploy/cluster.sh on loopback: the
           source on host1, the new domain introduced on host2 (a
           follower or the leader, whichever host2 is)
  c        Xen 4.17's C xenstored (../shared/reference/refd): plain
           INTRODUCEs only (it inherits nothing), for reference
and prints p50/p99 of both and of the difference. Whole `xl migrate` times
under real Xen, ours against Xen's C xenstored, come from the Xen lab
(deploy/xenlab-test.sh, results/timings.txt).

    python3 tests/bench/migrate_bench.py [--nodes 100] [--runs 200] [--json]

Every daemon runs in its own temporary directory on Unix sockets and
127.0.0.1 only, and is stopped by PID (cluster.sh down) at the end.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import daemon as daemonlib  # noqa: E402
import simguest as sg  # noqa: E402
import xsproto  # noqa: E402
from xsproto import args  # noqa: E402

CLUSTER_SH = os.path.join(daemonlib.REPO, "deploy", "cluster.sh")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Place:
    """Where the source and the destination toolstacks talk."""

    def __init__(self, src_sock, src_shim, dst_sock, dst_shim):
        self.a = xsproto.Conn(src_sock)
        self.b = xsproto.Conn(dst_sock) if dst_sock != src_sock else self.a
        self.sa = sg.SimDir(src_shim)
        self.sb = sg.SimDir(dst_shim) if dst_shim != src_shim else self.sa
        self.guests = []

    def close(self):
        for g in self.guests:
            g.close()
        for s in {id(self.sa): self.sa, id(self.sb): self.sb}.values():
            s.close()
        for c in {id(self.a): self.a, id(self.b): self.b}.values():
            c.close()


def one_move(p, src, dst, nodes, suspend):
    """Source domain src with `nodes` nodes of its own, suspending or not;
    then the destination's INTRODUCE of dst, timed. Both go away after."""
    vm = "/vm/bench-%d" % src
    g = sg.introduce(p.a, p.sa, src, keys={"vm": vm, "name": "bench"})
    p.guests.append(g)
    tx = p.a.start()
    for i in range(nodes):
        p.a.write("/local/domain/%d/data/k%03d" % (src, i), "v" * 32, tx)
    p.a.end(tx)
    if suspend:
        tx = p.a.start()
        p.a.write("/local/domain/%d/control/shutdown" % src, "suspend", tx)
        p.a.end(tx)
    # the destination's home as libxl writes it, then INTRODUCE, timed
    home = "/local/domain/%d" % dst
    p.b.write(home, b"")
    p.b.set_perms(home, ["n0", "r%d" % dst])
    for d in ("data", "control", "device"):
        p.b.write(home + "/" + d, b"")
        p.b.set_perms(home + "/" + d, ["n%d" % dst])
    p.b.write(home + "/vm", vm)
    gd = sg.Guest(p.sb, dst)
    p.guests.append(gd)
    t0 = time.perf_counter()
    p.b.call("INTRODUCE", args(str(dst), str(0xFEFFF - dst), str(1000 + dst)))
    t = time.perf_counter() - t0
    got = True
    try:
        p.b.read(home + "/data/k000")
    except OSError:
        got = False
    if got != suspend:
        raise AssertionError("domain %d %s its source's keys" %
                             (dst, "lacks" if suspend else "got"))
    for c, d in ((p.b, dst), (p.a, src)):
        c.call("RELEASE", args(str(d)))
        c.rm("/local/domain/%d" % d)
    for x in (g, gd):
        x.close()
        p.guests.remove(x)
    return t


def measure(p, nodes, runs, first_domid, inherit=True):
    with_, without = [], []
    d = first_domid
    for i in range(runs):
        # interleaved, the order alternating: drift hits both alike
        for suspend in ((True, False) if i % 2 == 0 else (False, True)):
            if suspend and not inherit:
                continue
            t = one_move(p, d, d + 1, nodes, suspend)
            (with_ if suspend else without).append(t * 1000.0)
            d += 2
    if not inherit:
        return {"runs": runs, "nodes": nodes,
                "plain_p50_ms": pct(without, 50),
                "plain_p99_ms": pct(without, 99)}
    diff = [a - b for a, b in zip(sorted(with_), sorted(without))]
    return {
        "runs": runs, "nodes": nodes,
        "inherit_p50_ms": pct(with_, 50), "inherit_p99_ms": pct(with_, 99),
        "plain_p50_ms": pct(without, 50), "plain_p99_ms": pct(without, 99),
        "added_p50_ms": pct(diff, 50), "added_p99_ms": pct(diff, 99),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    o = ap.parse_args()
    if o.runs < 1 or o.nodes < 1 or o.nodes > 1000:
        ap.error("--runs >= 1, --nodes 1..1000")
    results = {}
    env = dict(os.environ, XSR_SIM_RINGS="1")
    env.pop("XENSTORED_PATH", None)

    base = tempfile.mkdtemp(prefix="xsr-migbench-")
    for kind in ("ours", "c"):
        # "c": Xen 4.17's C xenstored (refd), plain INTRODUCEs only: it
        # inherits nothing, the reference for what an INTRODUCE costs
        d = sg.SimDaemon(kind, os.path.join(base, kind))
        try:
            d.start()
            p = Place(d.socket, d.shim, d.socket, d.shim)
            try:
                if kind == "ours":
                    results["one"] = measure(p, o.nodes, o.runs, 100)
                else:
                    results["c"] = measure(p, o.nodes, o.runs, 100,
                                           inherit=False)
            finally:
                p.close()
        finally:
            d.stop()
    cl = os.path.join(base, "cluster")
    up = False
    try:
        subprocess.run([CLUSTER_SH, "up", "3", cl], env=dict(env, XSR_BIN=daemonlib.BIN),
                       check=True, capture_output=True, timeout=120)
        up = True
        h = lambda i, f: os.path.join(cl, "host%d" % i, f)  # noqa: E731
        p = Place(h(1, "run/socket"), h(1, "shim"), h(2, "run/socket"), h(2, "shim"))
        try:
            results["cluster"] = measure(p, o.nodes, o.runs, 100)
        finally:
            p.close()
    finally:
        if up:
            subprocess.run([CLUSTER_SH, "down", cl], env=dict(env, XSR_BIN=daemonlib.BIN),
                           capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
    if o.json:
        print(json.dumps(results))
        return 0
    print("INTRODUCE round trip at the destination, source home of %d nodes, "
          "%d runs each (ms)" % (o.nodes, o.runs))
    print("%-8s %10s %10s %10s %10s %12s %12s" % (
        "where", "plain p50", "plain p99", "inherit p50", "inherit p99",
        "added p50", "added p99"))
    for k, r in results.items():
        if "added_p99_ms" not in r:
            print("%-8s %10.2f %10.2f %11s %11s %12s %12s" % (
                k, r["plain_p50_ms"], r["plain_p99_ms"], "-", "-", "-", "-"))
            continue
        print("%-8s %10.2f %10.2f %11.2f %11.2f %12.2f %12.2f" % (
            k, r["plain_p50_ms"], r["plain_p99_ms"], r["inherit_p50_ms"],
            r["inherit_p99_ms"], r["added_p50_ms"], r["added_p99_ms"]))
    print("(one: our daemon alone; cluster: 3 members, source host1, new "
          "domain on host2; c: Xen 4.17's C xenstored, which inherits "
          "nothing)")
    worst = max(r["added_p99_ms"] for r in results.values()
                if "added_p99_ms" in r)
    print("target (issue 16): the store move adds under 10 ms at p99 for a "
          "100-node domain: %s (worst added p99 %.2f ms)" %
          ("met" if worst < 10.0 else "MISSED", worst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
