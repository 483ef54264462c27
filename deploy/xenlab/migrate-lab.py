#!/usr/bin/python3
"""The two-host Xen lab's checks (deploy/xenlab-migrate.sh runs this on the
host, inside the lab's network namespace): `xl migrate` of a real PV guest
from host A's dom0 to host B's and back, then (our daemon only) adoption
after A's dom0 is powered off. It drives both dom0s through their agents
(deploy/xenlab/node-agent.py) and prints one "PASS name" / "FAIL name
(why)" / "INFO ..." line per check, "TIMING ..." lines, and exits with the
number of failures.

    migrate-lab.py MODE RESULTS_FILE QEMU_A_PID      (MODE: xsr | stock)

Environment: XSR_XENLAB_ROUNDS (round trips A -> B -> A, default 1; the
lab's guest stops answering pings 300 s after it booted, about 5 round
trips),
XSR_XENLAB_BULK (nodes written under the guest's data/bulk before the
first migration, default 100: the home a migration moves has about that
many nodes more). After the migrations, "SUMMARY" lines give the median
and the 99th percentile (nearest rank) of each timing.
"""
import json
import os
import re
import signal
import socket
import sys
import time

A, B = "10.99.0.1", "10.99.0.2"
NAME = {A: "labA", B: "labB"}
SEND = "python3 /mnt/host/node-agent.py send"
XSADM = "LD_LIBRARY_PATH=/usr/local/lib/xsr/lib /usr/local/lib/xsr/bin/xsadm"
GUEST = "xenlab-domu"
ROUNDS = int(os.environ.get("XSR_XENLAB_ROUNDS", "1"))
BULK = int(os.environ.get("XSR_XENLAB_BULK", "100"))

mode, results_path, qemu_a = sys.argv[1], sys.argv[2], int(sys.argv[3])
# stopped from outside (timeout): still tell the agents to end
signal.signal(signal.SIGTERM, lambda *a: sys.exit(124))
fails = 0
out = open(results_path, "w")


def say(line):
    print(line, flush=True)
    out.write(line + "\n")
    out.flush()


def ok(name, cond, why=""):
    global fails
    if cond:
        say("PASS %s" % name)
    else:
        fails += 1
        say("FAIL %s (%s)" % (name, why))
    return cond


def run(ip, cmd, timeout=60, retries=0):
    """Run cmd in ip's dom0: (rc, output); (-1, why) if unreachable. A
    command killed by a signal (this lab's dom0 processes die of corrupted
    memory now and then: README, "Xen lab") runs again up to `retries`
    times: only for commands that may run twice."""
    for _ in range(retries):
        rc, o = run(ip, cmd, timeout)
        if not (rc >= 128 or rc == -1):
            return rc, o
        say("  (%s: %r ended with %d: again)" % (NAME[ip], cmd[:60], rc))
        time.sleep(1)
    try:
        c = socket.create_connection((ip, 8003), timeout=10)
        c.settimeout(timeout + 30)
        c.sendall(json.dumps({"cmd": cmd, "timeout": timeout}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            b = c.recv(65536)
            if not b:
                break
            data += b
        c.close()
        r = json.loads(data.decode())
        return r["rc"], r["out"]
    except (OSError, ValueError) as e:
        return -1, "agent at %s: %s" % (ip, e)


def val(ip, path):
    # the agent merges stderr into the output: warnings stay out of it
    rc, o = run(ip, "timeout 10 xenstore-read %s 2>/dev/null" % path, 20,
                retries=3)
    return o.strip() if rc == 0 else None


def domid(ip):
    rc, o = run(ip, "timeout 10 xl domid %s 2>/dev/null" % GUEST, 20,
                retries=3)
    lines = o.strip().splitlines()
    if rc == 0 and lines and lines[-1].strip().isdigit():
        return int(lines[-1].strip())
    say("  (%s: no domid for %s: rc %d, %r)" % (NAME[ip], GUEST, rc,
                                                o.strip()[-200:]))
    return None


def ping(ip, d, n, timeout=40):
    """ip's dom0 writes data/ping=n; the guest answers data/pong=n through
    its ring on that host."""
    run(ip, "timeout 10 xenstore-write /local/domain/%d/data/ping %d" % (d, n),
        retries=3)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if val(ip, "/local/domain/%d/data/pong" % d) == str(n):
            return True
        time.sleep(0.5)
    return False


def owner(ip, d, key):
    rc, o = run(ip, "timeout 10 xenstore-ls -p /local/domain/%d/data" % d, 20,
                retries=3)
    m = re.search(r"^%s = .*\(n(\d+)" % re.escape(key), o, re.M)
    return int(m.group(1)) if m else None


def children(ip, path):
    rc, o = run(ip, "timeout 10 xenstore-list %s 2>/dev/null" % path, 20,
                retries=3)
    return len(o.split()) if rc == 0 else None


def write_bulk(ip, d):
    """BULK nodes under the guest's data/bulk, written by dom0 with one
    xenstore-write (one transaction; the guest owns data/, so it owns
    them too)."""
    kv = " ".join("/local/domain/%d/data/bulk/k%03d v%03d" % (d, i, i)
                  for i in range(BULK))
    rc, o = run(ip, "timeout 60 xenstore-write %s" % kv, 90, retries=3)
    return rc == 0 and children(ip, "/local/domain/%d/data/bulk" % d) == BULK


def write_cost(ip, n=20):
    """n xenstore-write calls one after the other, timed in dom0: what a
    dom0 tool's change costs (each call a transaction of one write, with
    this daemon a log entry that the cluster commits; the process's
    start-up included, the same for both daemons)."""
    rc, o = run(ip, "s=$(date +%%s%%N); for i in $(seq %d); do "
                "xenstore-write /tool/lat/k$i v$i || exit 1; done; "
                "echo elapsed-ns $(( $(date +%%s%%N) - s ))" % n, 120)
    m = re.search(r"elapsed-ns (\d+)", o)
    if m and rc == 0:
        timing("dom0", "xenstore-write-call-ms",
               round(int(m.group(1)) / 1e6 / n, 2),
               "mode=%s (%d calls on %s)" % (mode, n, NAME[ip]))


TIMINGS = {}


def timing(tag, name, value, extra):
    TIMINGS.setdefault(name, []).append(value)
    say("TIMING %s %s %s %s" % (tag, name, value, extra))


def percentile(v, p):
    v = sorted(v)
    return v[max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))]


def wait_agent(ip, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if run(ip, "true", 10)[0] == 0:
            return True
        time.sleep(2)
    return False


def migrate(tag, src, dst, n):
    """xl migrate the guest from src to dst; then the checks."""
    old = domid(src)
    if not ok(tag + "-source", old is not None, "no %s on %s" % (GUEST, NAME[src])):
        return None
    had = val(src, "/local/domain/%d/data/xenlab" % old)
    pong = val(src, "/local/domain/%d/data/pong" % old)
    t0 = time.monotonic()
    rc, o = run(src, "xl migrate -s '%s' %s %s" % (SEND, GUEST, dst), 600)
    t = time.monotonic() - t0
    for line in o.strip().splitlines()[-8:]:
        say("  %s: %s" % (tag, line))
    new = domid(dst)
    timing(tag, "xl-migrate-seconds", round(t, 3),
           "mode=%s (%s domain %s -> %s domain %s)"
           % (mode, NAME[src], old, NAME[dst], new))
    if not ok(tag, rc == 0 and new is not None,
              "xl migrate rc=%s, new domid %s" % (rc, new)):
        return None
    got = (val(dst, "/local/domain/%d/data/xenlab" % new),
           val(dst, "/local/domain/%d/data/pong" % new))
    bulk = children(dst, "/local/domain/%d/data/bulk" % new)
    if mode == "stock":
        say("INFO %s-keys Xen's C xenstored: data/xenlab=%r data/pong=%r "
            "data/bulk: %s nodes (before: %r, %r, %d)"
            % (tag, got[0], got[1], bulk, had, pong, BULK))
    else:
        own = owner(dst, new, "pong")
        ok(tag + "-keys", had and got == (had, pong) and own == new and
           (bulk or 0) == BULK,
           "data/xenlab %r data/pong %r owned by %s, data/bulk %s nodes; "
           "before %r %r %d, want owner %d"
           % (got[0], got[1], own, bulk, had, pong, BULK, new))
        rc, o = run(dst, "grep -a 'domain %d of host %s inherits' "
                    "/var/log/xen/xenstored-xsr.log | tail -1"
                    % (new, NAME[dst]))
        m = re.search(r"(\d+) nodes copied .*applied in (\d+) us", o)
        if ok(tag + "-inherited", m is not None,
              "no inheritance logged on %s: %r" % (NAME[dst], o.strip())):
            timing(tag, "introduce-with-copy-us", int(m.group(2)),
                   "nodes=%s" % m.group(1))
    ok(tag + "-old-gone", val(src, "/local/domain/%d/name" % old) is None,
       "/local/domain/%d still on %s" % (old, NAME[src]))
    ok(tag + "-ping", ping(dst, new, n), "no pong %d through the ring on %s" % (n, NAME[dst]))
    if mode == "xsr":
        rc, o = run(dst, XSADM + " cluster verify", 120)
        ok(tag + "-verify", rc == 0, o.strip()[-300:])
    return new


def main():
    if not (ok("agent-A", wait_agent(A, 900), "no agent at %s" % A) and
            ok("agent-B", wait_agent(B, 300), "no agent at %s" % B)):
        return
    # B's own guest goes: the one guest of the lab lives on A
    run(B, "xl destroy %s; sleep 1" % GUEST, 60)
    d = domid(A)
    ok("ping-A", d is not None and ping(A, d, 11), "guest on A does not answer")
    if mode == "xsr":
        rc, o = run(A, XSADM + " cluster status", 60)
        for line in o.strip().splitlines():
            say("  status: " + line)
    write_cost(A)
    if BULK:
        ok("bulk-written", d is not None and write_bulk(A, d),
           "%d nodes under data/bulk on A" % BULK)
    n = 12
    for r in range(1, ROUNDS + 1):
        sfx = "" if ROUNDS == 1 else "-%d" % r
        if migrate("there" + sfx, A, B, n) is None:
            return
        if migrate("back" + sfx, B, A, n + 1) is None:
            return
        n += 2
    for name, v in sorted(TIMINGS.items()):
        say("SUMMARY %s mode=%s n=%d p50=%s p99=%s" % (name, mode, len(v),
            percentile(v, 50), percentile(v, 99)))
    if mode != "xsr":
        return
    # adoption: A's dom0 dies with the guest; B restarts it from its config
    d = domid(A)
    run(A, "timeout 10 xenstore-write /local/domain/%d/data/adopt-marker from-labA" % d)
    end = time.monotonic() + 30
    seen = None
    while time.monotonic() < end:
        rc, seen = run(B, XSADM + " read labA:/local/domain/%d/data/adopt-marker" % d)
        if rc == 0 and "from-labA" in seen:
            break
        time.sleep(0.5)
    ok("adopt-replicated", seen and "from-labA" in seen, "B reads %r" % seen)
    run(A, "sync; (sleep 1; echo o > /proc/sysrq-trigger) > /dev/null 2>&1 &", 10)
    end = time.monotonic() + 120
    while time.monotonic() < end and os.path.exists("/proc/%d" % qemu_a):
        time.sleep(0.5)
    ok("adopt-A-off", not os.path.exists("/proc/%d" % qemu_a), "QEMU of A still runs")
    rc, o = run(B, "xl create -p /etc/xen/xenlab-domu.cfg 2>&1 | tail -3", 300)
    n = domid(B)
    if not ok("adopt-create", rc == 0 and n is not None, o.strip()[-300:]):
        return
    t0 = time.monotonic()
    rc, o = run(B, XSADM + " domain adopt labA:%d labB:%d --merge --fenced" % (d, n), 120)
    say("TIMING adopt xsadm-domain-adopt-seconds %.3f" % (time.monotonic() - t0))
    ok("adopt", rc == 0, o.strip()[-300:])
    run(B, "xl unpause %d" % n, 60)
    marker = val(B, "/local/domain/%d/data/adopt-marker" % n)
    bulk = children(B, "/local/domain/%d/data/bulk" % n)
    ok("adopt-keys", marker == "from-labA" and (bulk or 0) == BULK,
       "data/adopt-marker on B: %r, data/bulk: %s nodes" % (marker, bulk))
    ok("adopt-ping", ping(B, n, 99, 120), "the restarted guest does not answer on B")


try:
    main()
except BaseException as e:
    fails += 1
    say("FAIL interrupted (%s)" % (e.__class__.__name__,))
    raise
finally:
    for ip in (A, B):
        run(ip, "__exit__", 10)
    say("XSR-MIGRATE-DONE rc=%d" % fails)
    out.close()
sys.exit(min(fails, 100))
