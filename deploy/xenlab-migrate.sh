#!/bin/bash
# deploy/xenlab-migrate.sh: the two-host Xen lab (issue 16). Two instances
# of the lab of ../shared/xenlab (Xen 4.17, a Debian dom0, a PV Linux guest,
# in QEMU), each dom0 running our daemon as a member of one cluster whose
# third member runs here as a plain process; `xl migrate` of the guest from
# A to B and back (the transport: deploy/xenlab/node-agent.py instead of
# ssh, `xl migrate -s`), then A's dom0 powered off and the guest restarted
# on B with `xsadm domain adopt`. The checks and their result lines are
# deploy/xenlab/migrate-lab.py's.
#
#   deploy/xenlab-migrate.sh                      # our daemon
#   XSR_XENLAB_DAEMON=stock deploy/xenlab-migrate.sh  # Xen 4.17's C
#                                                 # xenstored in both dom0s
#                                                 # (no cluster): the
#                                                 # baseline, which keeps
#                                                 # none of the guest's keys
#
# The network: a namespace of its own (xsrlab-PID) holding a bridge
# (10.99.0.254/24, the third member) and a tap device per QEMU; dom0 A is
# 10.99.0.1, B 10.99.0.2. Nothing is reachable from outside it, and it is
# deleted at the end with everything started here (by PID). Each dom0 boots
# a copy of the lab's disk. TLS credentials from deploy/certs.sh.
#
# Exit 0 only if every check passed. Results: XENLAB_WORK/mig-<daemon>/
# (results.txt, each dom0's share and serial log, the third member's log).
# A run takes about 5 minutes (each migration about 20 s of emulated
# memory copy); deploy/test.sh runs it. It passes since the lab boots
# QEMU's qemu64 CPU model (deploy/xenlab/lib.sh): with `-cpu max` the
# lab's memory corruption killed dom0 processes in nearly every run
# (README, "Xen lab").
#
# Environment: XSR_SHARED, XENLAB_WORK, XSR_XENLAB_BIN as for
# deploy/xenlab-test.sh; XSR_XENLAB_TIMEOUT (seconds for the whole run,
# default 900); XSR_XENLAB_ROUNDS (round trips A -> B -> A, default 1) and
# XSR_XENLAB_BULK (nodes the guest's home gets under data/bulk before the
# first migration, default 100): deploy/xenlab/migrate-lab.py;
# XSR_XENLAB_NIC (the dom0s' network device: virtio-net-pci, the default,
# or e1000); XSR_XENLAB_CPU, XSR_XENLAB_TCG_THREAD (default single: the two
# QEMUs share the cores), XSR_XENLAB_SMP (default 1), XSR_XENLAB_XEN_EXTRA:
# deploy/xenlab/lib.sh.
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
HERE=$REPO/deploy/xenlab
SHARED=${XSR_SHARED:-$REPO/../shared}
LAB=$SHARED/xenlab
W=${XENLAB_WORK:-$REPO/build/xenlab-work}
DAEMON=${XSR_XENLAB_DAEMON:-xsr}
BIN=${XSR_XENLAB_BIN:-$REPO/build/bin}
TMO=${XSR_XENLAB_TIMEOUT:-900}
# each dom0 one vCPU, QEMU's TCG one thread (two emulated machines share
# this machine's cores); the CPU model: deploy/xenlab/lib.sh
export XSR_XENLAB_SMP=${XSR_XENLAB_SMP:-1} XSR_XENLAB_TCG_THREAD=${XSR_XENLAB_TCG_THREAD:-single}
NIC=${XSR_XENLAB_NIC:-virtio-net-pci}
# shellcheck source=deploy/xenlab/lib.sh
. "$HERE/lib.sh"
case $NIC in virtio-net-pci) NIC_MOD=virtio_net;; e1000) NIC_MOD=e1000;;
  *) echo "xenlab-migrate: error: XSR_XENLAB_NIC must be virtio-net-pci or e1000" >&2; exit 2;; esac
die() { echo "xenlab-migrate: error: $*" >&2; exit 2; }
say() { echo "xenlab-migrate: $*"; }
case $DAEMON in xsr|stock) ;; *) die "XSR_XENLAB_DAEMON must be xsr or stock";; esac
[ "$(id -u)" = 0 ] || die "must run as root (network namespace, QEMU, the lab's build)"
[ -x "$LAB/build.sh" ] || die "no lab at $LAB (set XSR_SHARED)"
mkdir -p "$W/logs"
W=$(cd "$W" && pwd)
exec 9> "$W/.xenlab-test.lock"
flock -n 9 || die "another lab run holds $W/.xenlab-test.lock"
if [ ! -s "$W/out/dom0.img" ] || [ ! -s "$W/out/xen-4.17.elf" ]; then
  say "building the lab in $W (~3 min)"
  W=$W timeout 2400 bash "$LAB/build.sh" > "$W/logs/xsr-build.log" 2>&1 ||
    { tail -20 "$W/logs/xsr-build.log" >&2; die "lab build failed"; }
fi
if [ "$DAEMON" = xsr ] && { [ ! -x "$BIN/xenstored" ] || [ ! -x "$BIN/xsadm" ]; }; then
  bash "$REPO/deploy/build.sh" > "$W/logs/xsr-daemon-build.log" 2>&1 || true
  [ -x "$BIN/xenstored" ] || die "no $BIN/xenstored"
fi

M=$W/mig-$DAEMON
rm -rf "$M"
mkdir -p "$M"
NS=xsrlab-$$
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -KILL "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the shares: A, B ------------------------------------------------------
if [ "$DAEMON" = xsr ]; then
  bash "$REPO/deploy/certs.sh" ca "$M/tls" > /dev/null
  names=(x labA labB labC)
  for i in 1 2 3; do
    bash "$REPO/deploy/certs.sh" member "$M/tls" $i "${names[$i]}" > /dev/null
  done
fi
cluster_lines() {
  echo "[cluster]"
  echo "member = 1 labA 10.99.0.1:7301 10.99.0.1:7302"
  echo "member = 2 labB 10.99.0.2:7301 10.99.0.2:7302"
  echo "member = 3 labC 10.99.0.254:7301 10.99.0.254:7302"
  echo "ca-file = $1/ca.pem"
  echo "cert-file = $1/member-$2.pem"
  echo "key-file = $1/member-$2.key"
}
for r in A B; do
  S=$M/share-$r
  i=$([ $r = A ] && echo 1 || echo 2)
  mkdir -p "$S/results"
  echo "$r" > "$S/role"
  echo "10.99.0.$i" > "$S/ip"
  echo "10.99.0.254" > "$S/gateway"
  echo "$DAEMON" > "$S/mode"
  echo "$NIC_MOD" > "$S/nic-module"
  install -m 0755 "$HERE/xenstored-net" "$S/xenstored"
  install -m 0755 "$HERE/migrate-node.sh" "$S/test.sh"
  install -m 0755 "$HERE/node-agent.py" "$S/node-agent.py"
  if [ "$DAEMON" = stock ]; then
    install -m 0755 "$HERE/xenstored-stock" "$S/xenstored-inner"
    continue
  fi
  install -m 0755 "$HERE/xenstored-xsr" "$S/xenstored-inner"
  mkdir -p "$S/bin" "$S/lib" "$S/tls"
  cp "$BIN/xenstored" "$BIN/xsadm" "$S/bin/"
  for b in "$S/bin/xenstored" "$S/bin/xsadm"; do
    ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
      so=$(basename "$lib")
      case $so in libc.so.*|ld-linux*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*) continue;; esac
      ls "$W"/rootfs/{lib,usr/lib}/x86_64-linux-gnu/"$so" > /dev/null 2>&1 || cp -L "$lib" "$S/lib/$so"
    done
  done
  cp "$M/tls/ca.pem" "$M/tls/member-$i.pem" "$M/tls/member-$i.key" "$S/tls/"
  {
    echo "[member]"
    echo "id = $i"
    echo "name = lab$r"
    echo "raft-address = 10.99.0.$i:7301"
    echo "peer-address = 10.99.0.$i:7302"
    cluster_lines /mnt/host/tls $i
  } > "$S/member.conf"
  chmod 0600 "$S/member.conf"
  {
    # on tmpfs: this lab's dom0 processes die of corrupted memory under
    # disk writes (README, "Xen lab"), and here every member writes every
    # host's changes; restarts are deploy/xenlab-test.sh's to test
    echo "XSR_DATA_DIR=/run/xsr-data"
    echo "XSR_LOG_FILE=/var/log/xen/xenstored-xsr.log"
    echo "XSR_FAILFAST=1"
    echo "XSR_ARGS=(--config /mnt/host/member.conf)"
  } > "$S/xsr.conf"
done

# ---- the network and the third member -------------------------------------------
ip netns add "$NS"
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
nsx ip link add br0 type bridge
nsx ip addr add 10.99.0.254/24 dev br0
nsx ip link set br0 up
for r in A B; do
  nsx ip tuntap add "tap$r" mode tap
  nsx ip link set "tap$r" master br0
  nsx ip link set "tap$r" up
done
if [ "$DAEMON" = xsr ]; then
  C=$M/labC
  mkdir -p "$C/data" "$C/run"
  {
    echo "[member]"
    echo "id = 3"
    echo "name = labC"
    echo "raft-address = 10.99.0.254:7301"
    echo "peer-address = 10.99.0.254:7302"
    cluster_lines "$M/tls" 3
  } > "$C/member.conf"
  chmod 0600 "$C/member.conf"
  # not through nsx (a function, run in a subshell when backgrounded):
  # $! must be the process itself, to be stopped by PID
  ip netns exec "$NS" "$BIN/xenstored" -N --config "$C/member.conf" --data-dir "$C/data" \
    --run-dir "$C/run" --pid-file "$C/pid" --ring-backend none \
    --log-file "$C/xenstored.log" < /dev/null > "$C/stderr" 2>&1 &
  PIDS+=($!)
  say "third member labC: pid $!, 10.99.0.254 in namespace $NS"
fi

# ---- two dom0s -----------------------------------------------------------------------
declare -A QPID
for r in A B; do
  i=$([ $r = A ] && echo 1 || echo 2)
  cp --sparse=always "$W/out/dom0.img" "$M/dom0-$r.img"
  lab_qemu_cmd tcg "$W" "$M/dom0-$r.img" "$M/share-$r"
  ip netns exec "$NS" timeout --foreground -k 10 "$TMO" "${LAB_QEMU[@]}" \
    -netdev "tap,id=n0,ifname=tap$r,script=no,downscript=no" \
    -device "$NIC,netdev=n0,mac=52:54:00:99:00:0$i" \
    < /dev/null > >(lab_stamp > "$M/serial-$r.log") 2>&1 &
  QPID[$r]=$!
  PIDS+=($!)
  say "dom0 $r: QEMU pid ${QPID[$r]}, serial $M/serial-$r.log"
done

# ---- the checks -----------------------------------------------------------------------
set +e
nsx timeout "$TMO" python3 "$HERE/migrate-lab.py" "$DAEMON" "$M/results.txt" "${QPID[A]}"
RC=$?
set -e
# the dom0s power off once their agents stop (bounded)
for r in A B; do
  for _ in $(seq 1 120); do kill -0 "${QPID[$r]}" 2>/dev/null || break; sleep 0.5; done
done
echo
echo "==== xenlab-migrate summary (daemon: $DAEMON) ===="
sed 's/^/  /' "$M/results.txt" 2>/dev/null || echo "  no results"
for r in A B; do
  echo "dom0 $r: $(grep -a -c -E 'segfault at|general protection fault' "$M/serial-$r.log" || true) process crashes on its serial log"
done
echo "results: $M"
[ "$RC" = 0 ] && grep -q '^XSR-MIGRATE-DONE rc=0$' "$M/results.txt" && { echo "XENLAB-MIGRATE PASS"; exit 0; }
echo "XENLAB-MIGRATE FAIL"
exit 1
