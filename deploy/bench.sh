#!/bin/bash
# bench.sh: the benchmarks of issue 6, on this machine, in one run. Runs
# build/bin/xsbench's workloads interleaved (every workload against every
# daemon in turn, the order rotated each round, several rounds) against
#   ours       our daemon, one node (a Raft cluster of one)
#   leader     our 3-member cluster on loopback (TLS, as deployed), writes
#              issued on the leader
#   follower   the same cluster, writes issued on a follower
#   plain      a second 3-member cluster without TLS (insecure = true),
#              writes on its leader: what TLS costs (issue 13)
#   c          Xen 4.17's C xenstored (../shared/reference/refd)
#   o          Xen 4.17's oxenstored (refd)
#   etcd       a 3-member etcd cluster (Debian's etcd-server), puts only
# and prints one table of medians, each figure also as a ratio to the C
# xenstored's in the same run; then the disk's fsync floor, scale (restart
# time and memory per node), leader failover, and the targets met/missed;
# then what the store move adds to a migration's downtime (issue 16,
# tests/bench/migrate_bench.py: p50/p99 of the destination's INTRODUCE
# with and without a 100-node home to inherit).
#
#   deploy/bench.sh [options]
#     --smoke             reduced run (tiny counts, one round; etcd only if
#                         installed; a minute or so)
#     --rounds N          rounds of the interleaved suite (full: 3)
#     --duration SEC      time per workload run (full: 1)
#     --scale-domains N   domains of the restart test (full: 1000)
#     --scale-nodes N     leaves per domain of the scale tests (full: 1000)
#     --mem-domains N     domains of the memory comparison with the C
#                         xenstored (full: 100; see below)
#     --failovers N       leader kills (full: 3)
#     --no-etcd           leave etcd out
#     --plot FILE         latency plot (full: docs/bench/latency.png;
#                         smoke: none unless given)
#     --out DIR           also keep results.jsonl and table.txt there
#
# The memory comparison uses a smaller tree than the restart test because
# Xen 4.17's C xenstored slows down as its tree grows (its writes take
# milliseconds beyond ~200,000 nodes), so 1,000,000 nodes would not fit the
# 15-minute budget; ours is measured at both sizes.
#
# Every daemon runs in a temporary directory, on Unix sockets or 127.0.0.1,
# and is stopped by PID at the end (also on failure or ^C); the directory
# is removed. XSR_BIN overrides the binaries' directory (build/bin).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${XSR_BIN:-$here/build/bin}
shared=${XSR_SHARED:-$(cd "$here/.." && pwd)/shared}
refd=$shared/reference/refd
t_begin=$(date +%s)

smoke=0 rounds="" duration="" scale_domains="" scale_nodes="" mem_domains=""
failovers="" use_etcd=1 plot="" plot_set=0 out=""
usage() { sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
  --smoke) smoke=1 ;;
  --rounds) rounds=${2:?}; shift ;;
  --duration) duration=${2:?}; shift ;;
  --scale-domains) scale_domains=${2:?}; shift ;;
  --scale-nodes) scale_nodes=${2:?}; shift ;;
  --mem-domains) mem_domains=${2:?}; shift ;;
  --failovers) failovers=${2:?}; shift ;;
  --no-etcd) use_etcd=0 ;;
  --plot) plot=${2:?}; plot_set=1; shift ;;
  --out) out=${2:?}; shift ;;
  -h|--help) usage 0 ;;
  *) echo "bench.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done

if [ $smoke = 1 ]; then
  : "${rounds:=1}" "${duration:=0.2}" "${scale_domains:=20}" "${scale_nodes:=100}"
  : "${mem_domains:=10}" "${failovers:=1}"
  write_ops=300 keys=100 boot_domains=3 fsync_ops=50 watches=200 migrate_runs=5
else
  : "${rounds:=3}" "${duration:=1}" "${scale_domains:=1000}" "${scale_nodes:=1000}"
  : "${mem_domains:=100}" "${failovers:=3}"
  write_ops=20000 keys=1000 boot_domains=100 fsync_ops=500 watches=20000
  migrate_runs=200
  [ $plot_set = 1 ] || plot=$here/docs/bench/latency.png
fi
[ "$mem_domains" -le "$scale_domains" ] || mem_domains=$scale_domains

log() { echo "bench: $*" >&2; }
die() { echo "bench.sh: $*" >&2; exit 1; }

# --- packages (full mode installs what is missing; smoke uses what is there)
need_apt=()
if [ $use_etcd = 1 ] && ! command -v etcd >/dev/null; then
  if [ $smoke = 1 ]; then use_etcd=0; log "etcd not installed: left out of the smoke run"
  else need_apt+=(etcd-server); fi
fi
if [ -n "$plot" ] && ! command -v gnuplot >/dev/null; then
  if [ $smoke = 1 ]; then log "gnuplot not installed: no plot"; plot=""
  else need_apt+=(gnuplot-nox); fi
fi
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if [ ! -x "$bin/xsbench" ] || [ ! -x "$bin/xenstored" ]; then
  [ -z "${XSR_BIN:-}" ] || die "$bin has no xsbench/xenstored"
  bash "$here/deploy/build.sh"
fi
xsbench=$bin/xsbench

# --- processes we start, stopped by PID on exit
T=$(mktemp -d "${TMPDIR:-/tmp}/xsbench.XXXXXX")
pids=()          # every daemon PID we started (or that refd/cluster.sh started)
cluster_up=0
plain_up=0
stop_pid() { # PID: SIGTERM, then SIGKILL after 10 s
  local p=$1 i
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  [ $cluster_up = 0 ] || XSR_BIN=$bin bash "$here/deploy/cluster.sh" down "$T/cluster" >/dev/null 2>&1 || true
  [ $plain_up = 0 ] || XSR_BIN=$bin bash "$here/deploy/cluster.sh" down "$T/plain" >/dev/null 2>&1 || true
  for p in "${pids[@]+"${pids[@]}"}"; do stop_pid "$p"; done
  wait 2>/dev/null || true
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

results=$T/results.jsonl
: >"$results"

wait_file() { # FILE TIMEOUT_S
  local i
  for i in $(seq $((${2} * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}

start_ours() { # DIR: a single-node daemon in DIR, PID in DIR/pid
  local d=$1
  mkdir -p "$d/data" "$d/run"
  "$bin/xenstored" -N --data-dir "$d/data" --run-dir "$d/run" --pid-file "$d/pid" \
    >"$d/log" 2>&1 </dev/null &
  pids+=($!)
  wait_file "$d/pid" 30 && [ -S "$d/run/socket" ] || die "our daemon did not start: $(tail -5 "$d/log")"
}

start_ref() { # c|o DIR
  local out
  out=$("$refd" start "$1" "$2") || die "refd start $1 failed"
  pids+=("$(echo "$out" | awk '{print $2}')")
}

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

free_ports() { # N
  python3 - "$1" <<'EOF'
import socket, sys
s = []
for _ in range(int(sys.argv[1])):
    k = socket.socket(); k.bind(("127.0.0.1", 0)); s.append(k)
print(" ".join(str(k.getsockname()[1]) for k in s))
EOF
}

start_etcd() { # three members on loopback, client URLs in $etcd_addrs
  local ports cl="" i
  read -r -a ports <<<"$(free_ports 6)"
  for i in 1 2 3; do cl+="${cl:+,}e$i=http://127.0.0.1:${ports[2*i-1]}"; done
  etcd_addrs=""
  for i in 1 2 3; do
    mkdir -p "$T/etcd"
    etcd --name "e$i" --data-dir "$T/etcd/e$i" \
      --listen-client-urls "http://127.0.0.1:${ports[2*i-2]}" \
      --advertise-client-urls "http://127.0.0.1:${ports[2*i-2]}" \
      --listen-peer-urls "http://127.0.0.1:${ports[2*i-1]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${ports[2*i-1]}" \
      --initial-cluster "$cl" --initial-cluster-state new \
      --initial-cluster-token "xsbench-$$" >"$T/etcd/e$i.log" 2>&1 </dev/null &
    pids+=($!)
    etcd_addrs+="${etcd_addrs:+,}127.0.0.1:${ports[2*i-2]}"
  done
  for i in $(seq 300); do
    if curl -sf -X POST "http://${etcd_addrs%%,*}/v3/kv/put" \
         -d '{"key":"cmVhZHk=","value":"MQ=="}' >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "etcd did not start: $(tail -3 "$T/etcd/e1.log")"
}

cluster_leader() { # [DIR]: prints the leader's member number
  "$bin/xsadm" --socket "${1:-$T/cluster}/host1/run/socket" --json cluster status |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])'
}

# --- start everything
log "temporary directory $T"
start_ours "$T/ours"
start_ref c "$T/c"
start_ref o "$T/o"
XSR_BIN=$bin bash "$here/deploy/cluster.sh" up 3 "$T/cluster" >/dev/null
cluster_up=1
leader=""
for _ in $(seq 100); do
  leader=$(cluster_leader 2>/dev/null || true)
  [[ "$leader" =~ ^[1-3]$ ]] && break
  sleep 0.1
done
[[ "$leader" =~ ^[1-3]$ ]] || die "the cluster has no leader"
follower=$((leader % 3 + 1))
XSR_INSECURE=1 XSR_BIN=$bin bash "$here/deploy/cluster.sh" up 3 "$T/plain" >/dev/null
plain_up=1
plain_leader=""
for _ in $(seq 100); do
  plain_leader=$(cluster_leader "$T/plain" 2>/dev/null || true)
  [[ "$plain_leader" =~ ^[1-3]$ ]] && break
  sleep 0.1
done
[[ "$plain_leader" =~ ^[1-3]$ ]] || die "the cluster without TLS has no leader"
etcd_addrs=""
[ $use_etcd = 0 ] || start_etcd
log "cluster leader host$leader, follower host$follower${etcd_addrs:+, etcd $etcd_addrs}"

socket_of() { # target
  case "$1" in
  ours) echo "$T/ours/run/socket" ;;
  c) echo "$T/c/run/socket" ;;
  o) echo "$T/o/run/socket" ;;
  leader) echo "$T/cluster/host$leader/run/socket" ;;
  follower) echo "$T/cluster/host$follower/run/socket" ;;
  plain) echo "$T/plain/host$plain_leader/run/socket" ;;
  esac
}

bench() { # TARGET XSBENCH-ARGS...: one run, its JSON line into $results
  local t=$1; shift
  local where=(-s "$(socket_of "$t")")
  [ "$t" = etcd ] && where=(-e "$etcd_addrs")
  if ! "$xsbench" "${where[@]}" --json --label "$t" "$@" >>"$results" 2>"$T/xsbench.err"; then
    log "FAILED: $t $*: $(tail -1 "$T/xsbench.err")"
    printf '{"workload":"%s","label":"%s","failed":true,"args":"%s"}\n' \
      "${*: -1}" "$t" "$*" >>"$results"
  fi
}

# --- floors: the disk's durable write, a loopback round trip
log "floors: fsync in $T, loopback round trip"
for _ in 1 2 3; do
  "$xsbench" --json --label floor -n "$fsync_ops" --dir "$T" fsync >>"$results"
  "$xsbench" --json --label floor -n 5000 rtt >>"$results"
done

# --- the interleaved suite
modes=("seq:-c 1 -d 1" "pipe32:-c 1 -d 32" "c8:-c 8 -d 1" "c64:-c 64 -d 1")
xs_targets=(ours c o)
repl_targets=(leader follower plain)
[ $use_etcd = 0 ] || repl_targets+=(etcd)
rotate() { # K ITEMS...: the items rotated left by K
  local k=$1; shift
  local a=("$@") n=$# i
  for ((i = 0; i < n; i++)); do echo "${a[(i + k) % n]}"; done
}
for round in $(seq "$rounds"); do
  log "round $round/$rounds"
  for wl in read dir100 overwrite write-one write-many; do
    for m in "${modes[@]}"; do
      mode_args=(${m#*:})
      extra=(-t "$duration" -k "$keys")
      case $wl in write-*) extra+=(-n "$write_ops") ;; esac
      targets=("${xs_targets[@]}")
      case $wl in overwrite|write-*) targets+=("${repl_targets[@]}") ;; esac
      for t in $(rotate $((round - 1)) "${targets[@]}"); do
        bench "$t" "${mode_args[@]}" "${extra[@]}" "$wl"
      done
    done
  done
  for t in $(rotate $((round - 1)) "${xs_targets[@]}" leader follower); do
    bench "$t" -c 8 -t "$duration" --counters 4 txn
  done
  for t in $(rotate $((round - 1)) "${xs_targets[@]}" leader follower); do
    bench "$t" -t 300 --domains "$boot_domains" boot
  done
  # issue 12: writes while another client has many watches and reads none
  for t in $(rotate $((round - 1)) "${xs_targets[@]}"); do
    bench "$t" -t "$duration" -k 1 --watches "$watches" watched
  done
done

# --- failover: kill -9 the leader while a follower's client writes
log "failover x$failovers"
for i in $(seq "$failovers"); do
  leader=$(cluster_leader)
  follower=$((leader % 3 + 1))
  "$xsbench" -s "$T/cluster/host$follower/run/socket" --json --label failover \
    -t 4 probe >>"$results" 2>"$T/probe.err" &
  probe=$!
  sleep 1
  kill -KILL "$(cat "$T/cluster/host$leader/xenstored.pid")"
  wait $probe || log "probe failed: $(tail -1 "$T/probe.err")"
  XSR_BIN=$bin bash "$here/deploy/cluster.sh" start "$T/cluster" "$leader" >/dev/null
  sleep 1
done

# the scale tests run alone
XSR_BIN=$bin bash "$here/deploy/cluster.sh" down "$T/cluster" >/dev/null
cluster_up=0
XSR_BIN=$bin bash "$here/deploy/cluster.sh" down "$T/plain" >/dev/null
plain_up=0
for p in "${pids[@]}"; do stop_pid "$p"; done
pids=()
"$refd" stop "$T/c" >/dev/null 2>&1 || true
"$refd" stop "$T/o" >/dev/null 2>&1 || true

# --- scale: memory per node (ours and C, same tree), restart time (ours)
scale() { # KEY VALUE
  printf '{"workload":"scale","key":"%s","value":%s}\n' "$1" "$2" >>"$results"
}
mem_nodes=$((mem_domains * (2 + (scale_nodes + 99) / 100 + scale_nodes)))
big_nodes=$((scale_domains * (2 + (scale_nodes + 99) / 100 + scale_nodes)))
log "scale: memory with $mem_nodes nodes (ours, c)"
start_ref c "$T/cmem"
cpid=${pids[-1]}
r0=$(rss_kb "$cpid")
"$xsbench" -s "$T/cmem/run/socket" --label c -t 900 -d 32 --domains "$mem_domains" \
  --nodes "$scale_nodes" populate >&2
r1=$(rss_kb "$cpid")
scale c_mem_bytes_per_node "$(( (r1 - r0) * 1024 / mem_nodes ))"
stop_pid "$cpid"
"$refd" stop "$T/cmem" >/dev/null 2>&1 || true

start_ours "$T/big"
opid=${pids[-1]}
r0=$(rss_kb "$opid")
t0=$(date +%s.%N)
"$xsbench" -s "$T/big/run/socket" --label ours -t 900 -d 32 --domains "$mem_domains" \
  --nodes "$scale_nodes" populate >&2
r1=$(rss_kb "$opid")
scale ours_mem_bytes_per_node "$(( (r1 - r0) * 1024 / mem_nodes ))"
scale mem_nodes "$mem_nodes"
if [ "$scale_domains" -gt "$mem_domains" ]; then
  log "scale: $big_nodes nodes in ours"
  "$xsbench" -s "$T/big/run/socket" --label ours -t 900 -c 2 -d 32 \
    --domid-base $((mem_domains + 1)) --domains $((scale_domains - mem_domains)) \
    --nodes "$scale_nodes" populate >&2
fi
t1=$(date +%s.%N)
r2=$(rss_kb "$opid")
scale populate_s "$(secs "$t0" "$t1")"
scale big_nodes "$big_nodes"
scale ours_big_mem_bytes_per_node "$(( (r2 - r0) * 1024 / big_nodes ))"
stop_pid "$opid"
log "scale: restart with $big_nodes nodes"
t0=$(date +%s.%N)
"$bin/xenstored" --data-dir "$T/big/data" --run-dir "$T/big/run" --pid-file "$T/big/pid" \
  --log-file "$T/big/log2" || die "restart failed: $(tail -3 "$T/big/log2")"
opid=$(cat "$T/big/pid")
pids+=("$opid")
# serving means answering: a READ of the last node written
last="/local/domain/$scale_domains/bench/g$(( (scale_nodes - 1) / 100 ))/n$((scale_nodes - 1))"
XENSTORED_PATH=$T/big/run/socket xenstore-read "$last" >/dev/null ||
  die "after the restart $last is missing"
t1=$(date +%s.%N)
scale restart_s "$(secs "$t0" "$t1")"
r3=$(rss_kb "$opid")
scale ours_restarted_mem_bytes_per_node "$(( (r3 - r0) * 1024 / big_nodes ))"
stop_pid "$opid"

# issue 16: what the store move adds to a migration's downtime (its own
# daemons: one, a 3-member cluster, the C xenstored; see the script)
log "store move at INTRODUCE (tests/bench/migrate_bench.py, $migrate_runs runs)"
XSR_BIN=$bin python3 "$here/tests/bench/migrate_bench.py" --runs "$migrate_runs" \
  >"$T/migrate.txt" 2>"$T/migrate.err" ||
  die "migrate_bench failed: $(tail -5 "$T/migrate.err")"

t_end=$(date +%s)
scale bench_s $((t_end - t_begin))
scale smoke $smoke

# --- the table, the targets, the plot
plotdata=$T/plot
mkdir -p "$plotdata"
python3 - "$results" "$plotdata" >"$T/table.txt" <<'EOF'
import json, statistics, sys, os
res, plotdir = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(res) if l.strip()]
med = lambda xs: statistics.median(xs) if xs else None
modes = {(1, 1): "seq", (1, 32): "pipe32", (8, 1): "c8", (64, 1): "c64"}
runs, failed = {}, []
for r in rows:
    if r.get("failed"):
        failed.append(r); continue
    if r["workload"] in ("scale", "fsync", "rtt", "probe"):
        continue
    m = modes.get((r["conns"], r["depth"]), "c%dd%d" % (r["conns"], r["depth"]))
    runs.setdefault((r["workload"], m, r["label"]), []).append(r)
scale = {r["key"]: r["value"] for r in rows if r["workload"] == "scale"}
floor = {w: med([r["p50_us"] for r in rows if r["workload"] == w]) for w in ("fsync", "rtt")}
probes = [r for r in rows if r["workload"] == "probe"]

def agg(rs, k):
    return med([r[k] for r in rs])

order_w = ["read", "dir100", "overwrite", "write-one", "write-many", "txn", "boot",
           "watched"]
order_m = ["seq", "pipe32", "c8", "c64"]
order_t = ["ours", "leader", "follower", "plain", "c", "o", "etcd"]
names = {"ours": "ours (1 node)", "leader": "ours 3 nodes, leader",
         "follower": "ours 3 nodes, follower", "plain": "ours 3, leader, no TLS", "c": "C xenstored 4.17",
         "o": "oxenstored 4.17", "etcd": "etcd 3.4 (3 nodes)"}
def ratio(v, c):
    return "%.2f" % (v / c) if v is not None and c else "-"
def fmt(v, unit=""):
    if v is None: return "-"
    return ("%.0f" if v >= 100 else "%.1f") % v
hdr = "%-10s %-6s %-23s %9s %6s %9s %6s %9s %6s %9s %6s  %s" % (
    "workload", "mode", "daemon", "ops/s", "xC", "p50 us", "xC", "p99 us", "xC",
    "p999 us", "xC", "notes")
print(hdr); print("-" * len(hdr))
keys = sorted(runs, key=lambda k: (order_w.index(k[0]) if k[0] in order_w else 99,
                                    order_m.index(k[1]) if k[1] in order_m else 99,
                                    order_t.index(k[2]) if k[2] in order_t else 99))
summary = {}
prev = None
for k in keys:
    w, m, t = k
    if prev and prev != (w, m): print()
    prev = (w, m)
    rs = runs[k]; c = runs.get((w, m, "c"))
    v = {f: agg(rs, f) for f in ("ops_per_s", "p50_us", "p99_us", "p999_us")}
    cv = {f: agg(c, f) for f in v} if c else {f: None for f in v}
    summary[k] = v
    notes = []
    if w == "txn":
        notes.append("EAGAIN %.0f%%" % (100 * agg(rs, "eagain_rate")))
        if not all(r.get("verified") for r in rs): notes.append("COUNTERS WRONG")
    if w == "boot":
        notes.append("domains/s; %.0f reqs/s" % agg(rs, "reqs_per_s"))
    if w == "watched":
        notes.append("another client: %d watches on /, unread" % rs[0].get("watches", 0))
    errs = sum(r["errors"] for r in rs)
    if errs: notes.append("errors %d (%s)" % (errs, next(r["first_error"] for r in rs if r["errors"])))
    if len(rs) > 1:
        xs = [r["ops_per_s"] for r in rs]
        notes.append("ops/s %.0f-%.0f" % (min(xs), max(xs)))
    print("%-10s %-6s %-23s %9s %6s %9s %6s %9s %6s %9s %6s  %s" % (
        w, m, names.get(t, t), fmt(v["ops_per_s"]), ratio(v["ops_per_s"], cv["ops_per_s"]),
        fmt(v["p50_us"]), ratio(v["p50_us"], cv["p50_us"]),
        fmt(v["p99_us"]), ratio(v["p99_us"], cv["p99_us"]),
        fmt(v["p999_us"]), ratio(v["p999_us"], cv["p999_us"]), "; ".join(notes)))
print()
print("medians of %s rounds; xC = the figure / the C xenstored's in the same run "
      "(ops/s: higher is better; latency: lower is better)" %
      max([len(v) for v in runs.values()] or [0]))
print()
fs, rtt = floor["fsync"], floor["rtt"]
print("floors: 4 KiB write+fdatasync p50 %.1f us (disk of the data directories); "
      "Unix-socket round trip p50 %.1f us" % (fs, rtt))
g = [r["max_gap_ms"] for r in probes]
if g:
    print("failover: kill -9 of the leader -> next successful write on a follower: "
          "%s ms (median %.0f, max %.0f)" % (", ".join("%.0f" % x for x in g),
                                             med(g), max(g)))
if scale:
    print("scale: restart and serve with %d nodes: %.2f s (filling them took %.0f s)" %
          (scale["big_nodes"], scale["restart_s"], scale["populate_s"]))
    cm, om = scale["c_mem_bytes_per_node"], scale["ours_mem_bytes_per_node"]
    print("memory per node, %d nodes: ours %d B, C xenstored %d B (x%.2f); ours with "
          "%d nodes %d B live, %d B after a restart" % (
              scale["mem_nodes"], om, cm, om / cm if cm else 0, scale["big_nodes"],
              scale["ours_big_mem_bytes_per_node"],
              scale["ours_restarted_mem_bytes_per_node"]))
print()
# targets of issue 6
def get(w, m, t, f="ops_per_s"):
    v = summary.get((w, m, t)); return v[f] if v else None
def target(name, ok, detail):
    print("%-6s %s: %s" % ("MET" if ok else "MISSED", name, detail) if ok is not None
          else "n/a    %s: %s" % (name, detail))
print("targets (issue 6):")
for m in ("seq", "pipe32"):
    o, c = get("read", m, "ours"), get("read", m, "c")
    target("local reads %s >= 3x C" % m, o and c and o >= 3 * c,
           "ours %s ops/s, C %s ops/s: x%s" % (fmt(o), fmt(c), ratio(o, c)))
for t in ("leader", "follower"):
    o, c, e = get("overwrite", "c64", t), get("overwrite", "c64", "c"), get("overwrite", "c64", "etcd")
    target("replicated writes, 64 in flight, on the %s >= C" % t, o and c and o >= c,
           "ours %s ops/s, C (unreplicated) %s: x%s" % (fmt(o), fmt(c), ratio(o, c)))
    target("replicated writes, 64 in flight, on the %s >= 3x etcd" % t,
           (o >= 3 * e) if (o and e) else None,
           "ours %s ops/s, etcd %s: x%s" % (fmt(o), fmt(e), ratio(o, e)))
w = get("overwrite", "seq", "ours", "p50_us")
if w and fs:
    bound = 1.5 * fs + rtt
    target("durable single-client write p50 <= 1.5 x fsync + 1 round trip", w <= bound,
           "%.1f us vs %.1f us (= %.2f x fsync)" % (w, bound, w / fs))
if g:
    target("failover < 1 s", max(g) < 1000, "worst of %d: %.0f ms" % (len(g), max(g)))
v = summary.get(("watched", "seq", "ours"))
if v:
    nw = next(r.get("watches", 0) for r in runs[("watched", "seq", "ours")])
    cw = get("watched", "seq", "c", "p99_us")
    print("targets (issue 12):")
    target("write p99 while another client has %d watches on / unread <= 5 ms" % nw,
           v["p99_us"] <= 5000, "ours %s us, C %s us" % (fmt(v["p99_us"]), fmt(cw)))
tls_rows = [(m, get("overwrite", m, "leader"), get("overwrite", m, "plain"))
            for m in ("seq", "c64")]
if any(o and p for _, o, p in tls_rows):
    print("targets (issue 13):")
    for m, o, p in tls_rows:
        target("replicated writes %s with TLS >= 0.9x without" % m,
               (o >= 0.9 * p) if (o and p) else None,
               "TLS %s ops/s, without %s: x%s" % (fmt(o), fmt(p), ratio(o, p)))
if failed:
    print()
    for r in failed:
        print("FAILED: %s %s" % (r["label"], r["args"]))
print()
print("bench.sh took %d s%s" % (scale.get("bench_s", 0), " (smoke)" if scale.get("smoke") else ""))

# plot data: latency against load (1, 8, 64 connections)
for w in ("read", "overwrite"):
    for t in order_t:
        pts = [(n, summary.get((w, m, t))) for n, m in ((1, "seq"), (8, "c8"), (64, "c64"))]
        pts = [(n, v) for n, v in pts if v]
        if pts:
            with open(os.path.join(plotdir, "%s.%s.dat" % (w, t)), "w") as f:
                for n, v in pts:
                    f.write("%d %f %f %f\n" % (n, v["p50_us"], v["p99_us"], v["ops_per_s"]))
EOF
cat "$T/table.txt"
echo
cat "$T/migrate.txt"

if [ -n "$plot" ]; then
  mkdir -p "$(dirname "$plot")"
  term="pngcairo size 1200,520 font ',10'"
  case "$plot" in *.svg) term="svg size 1200,520" ;; esac
  {
    echo "set terminal $term"
    echo "set output '$plot'"
    echo "set multiplot layout 1,2 title 'xenstore latency against load ($(hostname), $(date +%F)): p50 solid, p99 dashed'"
    echo "set logscale xy; set xtics (1, 8, 64); set xlabel 'connections, 1 request in flight each'"
    echo "set ylabel 'latency (us)'; set key top left; set grid"
    for w in read overwrite; do
      echo "set title '$w'"
      line="plot"
      i=1
      for t in ours leader follower c o etcd; do
        f=$plotdata/$w.$t.dat
        [ -f "$f" ] || { i=$((i + 1)); continue; }
        line+=" '$f' u 1:2 w lp lc $i lw 2 pt 7 t '$t p50', '$f' u 1:3 w lp lc $i dt 2 pt 6 notitle,"
        i=$((i + 1))
      done
      echo "${line%,}"
    done
    echo "unset multiplot"
  } >"$plotdata/plot.gp"
  gnuplot "$plotdata/plot.gp" && log "plot: $plot"
fi
if [ -n "$out" ]; then
  mkdir -p "$out"
  cp "$results" "$T/table.txt" "$T/migrate.txt" "$out/"
fi
