#!/bin/bash
# cluster.sh: run a cluster of xenstored members on this machine, on
# 127.0.0.1, each with its own data and run directory under BASEDIR.
#
#   cluster.sh up N BASEDIR     create (first time) and start members host1..hostN;
#                               prints each member's XENSTORED_PATH
#   cluster.sh down BASEDIR     stop every member of BASEDIR (by PID)
#   cluster.sh start BASEDIR I  start member I (after a stop or a kill)
#   cluster.sh stop BASEDIR I   stop member I (SIGTERM, then SIGKILL)
#   cluster.sh kill BASEDIR I   kill -9 member I
#   cluster.sh new BASEDIR I    configure a member I that is not in the initial
#                               configuration (start it, then `xsadm cluster add`)
#   cluster.sh env BASEDIR I    print XENSTORED_PATH=... of member I
#
# Members are named hostI, with member id I. Ports are picked free once and
# kept in BASEDIR/hostI/xenstored.conf. TLS credentials are made with
# deploy/certs.sh: the cluster's CA in BASEDIR/ca/ (its key stays there),
# each member's certificate and key (mode 0600) in BASEDIR/hostI/tls/.
# XSR_INSECURE=1 (when a member is configured) configures it without TLS
# (`insecure = true`: tests that compare with it only).
# XSR_BIN overrides the directory of the binaries (default: build/bin).
# XSR_SIM_RINGS=1 (when a member is configured) gives it the sim ring
# backend in BASEDIR/hostI/shim, so a test can play its guests.
# XSR_SNAPSHOT_THRESHOLD=N (when a member is configured) makes it snapshot
# every N log entries (the fault-injection suite exercises snapshots);
# XSR_SNAPSHOT_TRAILING=N keeps only N entries after one (a lagging member
# then catches up by snapshot).
# XSR_ADOPT_AFTER=S (when a member is configured) sets [cluster]
# adopt-after = S (`domain adopt` without --fenced after S s of silence).
# XSR_LAUNCH_PREFIX (optional) is put before the xenstored command line when
# a member starts, {i} replaced by the member number and {gid} by 60000+I:
# e.g. 'setpriv --regid={gid} --clear-groups' runs each member with a group
# id of its own (the fault-injection suite partitions members with iptables
# rules keyed by it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${XSR_BIN:-$here/build/bin}
xenstored=$bin/xenstored

die() { echo "cluster.sh: $*" >&2; exit 1; }
usage() { sed -n '2,34p' "$0" >&2; exit 2; }

free_ports() { # N: print N free TCP ports on 127.0.0.1
  # Below the kernel's ephemeral range where it leaves room: a port from
  # that range (bind to 0) can be taken meanwhile as the local end of any
  # outgoing connection, the members' own among them, and a member
  # restarted later could not listen there again (TestRestartAll, once).
  /usr/bin/python3 - "$1" <<'EOF'
import random, socket, sys
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        eph = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    eph = 0
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    for _ in range(200 if eph > 12000 else 0):
        try:
            s.bind(("127.0.0.1", random.randrange(10000, eph)))
            break
        except OSError:
            continue
    else:
        s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

conf_of() { echo "$1/host$2/xenstored.conf"; }
pid_of() { cat "$1/host$2/xenstored.pid" 2>/dev/null || true; }

# running, and not a zombie waiting to be reaped (kill -0 succeeds on one)
alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ]
}

# write_conf BASEDIR I MEMBERS_LINES RAFT PEER
# credentials BASEDIR I: the CA (made once) and member I's certificate
credentials() {
  local B=$1 i=$2 d=$1/host$2/tls
  [ "${XSR_INSECURE:-0}" = 1 ] && return 0
  [ -f "$B/ca/ca.pem" ] || bash "$here/deploy/certs.sh" ca "$B/ca" >/dev/null
  mkdir -p "$d"
  chmod 700 "$d"
  bash "$here/deploy/certs.sh" member "$B/ca" "$i" "host$i" >/dev/null
  mv "$B/ca/member-$i.pem" "$B/ca/member-$i.key" "$d/"
  cp "$B/ca/ca.pem" "$d/ca.pem"
}

tls_conf() { # BASEDIR I
  if [ "${XSR_INSECURE:-0}" = 1 ]; then
    echo "insecure = true"
  else
    printf 'ca-file = %s\ncert-file = %s\nkey-file = %s\n' \
      "$1/host$2/tls/ca.pem" "$1/host$2/tls/member-$2.pem" "$1/host$2/tls/member-$2.key"
  fi
}

write_conf() {
  local B=$1 i=$2 members=$3 raft=$4 peer=$5 d=$1/host$2
  mkdir -p "$d/data" "$d/run"
  credentials "$B" "$i"
  cat >"$d/xenstored.conf" <<EOF
# member $i of the test cluster in $B (written by deploy/cluster.sh)
[xenstored]
data-dir = $d/data
run-dir = $d/run
pid-file = $d/xenstored.pid
log-file = $d/xenstored.log
ready-timeout = 30000
$([ "${XSR_SIM_RINGS:-0}" = 1 ] && echo "ring-backend = sim:$d/shim" || true)
$([ -n "${XSR_SNAPSHOT_THRESHOLD:-}" ] && echo "snapshot-threshold = $XSR_SNAPSHOT_THRESHOLD" || true)
$([ -n "${XSR_SNAPSHOT_TRAILING:-}" ] && echo "snapshot-trailing = $XSR_SNAPSHOT_TRAILING" || true)

[member]
id = $i
name = host$i
raft-address = $raft
peer-address = $peer

[cluster]
$(tls_conf "$B" "$i")
$([ -n "${XSR_ADOPT_AFTER:-}" ] && echo "adopt-after = $XSR_ADOPT_AFTER" || true)
$members
EOF
}

start_member() { # BASEDIR I: start in the background, returns its launcher pid
  local B=$1 i=$2
  [ -f "$(conf_of "$B" "$i")" ] || die "no member $i in $B"
  rm -f "$B/host$i/xenstored.pid"
  local prefix=() p
  for p in ${XSR_LAUNCH_PREFIX:-}; do
    p=${p//\{i\}/$i}
    prefix+=("${p//\{gid\}/$((60000 + i))}")
  done
  # daemonizes; the launcher exits once the member serves (or fails)
  "${prefix[@]+"${prefix[@]}"}" "$xenstored" --config "$(conf_of "$B" "$i")" &
}

wait_launchers() { # pids...: all must succeed
  local rc=0 p
  for p in "$@"; do
    wait "$p" || rc=1
  done
  return $rc
}

stop_member() { # BASEDIR I SIGNAL
  local B=$1 i=$2 sig=$3 pid
  pid=$(pid_of "$B" "$i")
  alive "$pid" || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  fi
  [ "$sig" = KILL ] || rm -f "$B/host$i/xenstored.pid"
}

members_of() { # BASEDIR: the member numbers configured there
  local B=$1 d
  for d in "$B"/host*; do
    [ -f "$d/xenstored.conf" ] && echo "${d##*/host}"
  done | sort -n
}

print_env() { # BASEDIR I
  echo "host$2 XENSTORED_PATH=$1/host$2/run/socket"
}

cmd=${1:-}
case "$cmd" in
up)
  n=${2:-}; B=${3:-}
  [[ "$n" =~ ^[1-9][0-9]*$ ]] && [ -n "$B" ] || usage
  [ -x "$xenstored" ] || die "$xenstored not built (run deploy/build.sh)"
  mkdir -p "$B"; B=$(cd "$B" && pwd)
  if [ ! -f "$B/host1/xenstored.conf" ]; then
    read -r -a ports <<<"$(free_ports $((2 * n)))"
    members=""
    for i in $(seq 1 "$n"); do
      members+="member = $i host$i 127.0.0.1:${ports[2*i-2]} 127.0.0.1:${ports[2*i-1]}"$'\n'
    done
    for i in $(seq 1 "$n"); do
      write_conf "$B" "$i" "$members" "127.0.0.1:${ports[2*i-2]}" "127.0.0.1:${ports[2*i-1]}"
    done
  fi
  launchers=()
  for i in $(members_of "$B"); do
    alive "$(pid_of "$B" "$i")" && continue
    start_member "$B" "$i"
    launchers+=($!)
  done
  wait_launchers "${launchers[@]+"${launchers[@]}"}" || die "a member did not start: see $B/host*/xenstored.log"
  for i in $(members_of "$B"); do print_env "$B" "$i"; done
  ;;
down)
  B=${2:-}; [ -n "$B" ] || usage
  [ -d "$B" ] || exit 0
  for i in $(members_of "$B"); do stop_member "$B" "$i" TERM; done
  ;;
start)
  B=${2:-}; i=${3:-}; [ -n "$B" ] && [ -n "$i" ] || usage
  if ! alive "$(pid_of "$B" "$i")"; then
    start_member "$B" "$i"
    wait_launchers $! || die "host$i did not start: see $B/host$i/xenstored.log"
  fi
  print_env "$B" "$i"
  ;;
stop)
  B=${2:-}; i=${3:-}; [ -n "$B" ] && [ -n "$i" ] || usage
  stop_member "$B" "$i" TERM
  ;;
kill)
  B=${2:-}; i=${3:-}; [ -n "$B" ] && [ -n "$i" ] || usage
  stop_member "$B" "$i" KILL
  ;;
new)
  B=${2:-}; i=${3:-}; [ -n "$B" ] && [[ "$i" =~ ^[1-9][0-9]*$ ]] || usage
  [ -f "$B/host1/xenstored.conf" ] || die "no cluster in $B"
  [ -f "$(conf_of "$B" "$i")" ] && die "member $i exists already"
  read -r -a ports <<<"$(free_ports 2)"
  members=$(grep '^member = ' "$B/host1/xenstored.conf")
  write_conf "$B" "$i" "$members" "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}"
  echo "host$i raft 127.0.0.1:${ports[0]} peer 127.0.0.1:${ports[1]}"
  ;;
env)
  B=${2:-}; i=${3:-}; [ -n "$B" ] && [ -n "$i" ] || usage
  print_env "$B" "$i"
  ;;
*) usage ;;
esac
