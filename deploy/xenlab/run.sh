#!/bin/bash
# deploy/xenlab/run.sh: boot the lab (Xen 4.17 and a Debian dom0 in QEMU,
# built by ../shared/xenlab/build.sh in W) and let its init run the checks
# (/sbin/xenlab-init: the daemon, xen-init-dom0, a PV guest, SHARE/test.sh).
# deploy/xenlab-test.sh runs it. It does what ../shared/xenlab/run.sh does,
# with the same output and verdict, but boots QEMU's qemu64 CPU model by
# default instead of max, under which dom0 processes' memory is corrupted
# (deploy/xenlab/lib.sh).
#
#   W=WORK SHARE=DIR run.sh [tcg|kvm] [TIMEOUT]
#
# Prints "qemu wrapper pid N, log LOG" (LOG relative to W), then the
# serial log's milestones; exits 0 once every checkpoint (CHECKPOINT-B..E,
# XENLAB-DONE) is on the serial log. Environment: see lib.sh (defaults here:
# 2 vCPUs, QEMU's multi-threaded TCG).
set -u
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
# shellcheck source=deploy/xenlab/lib.sh
. "$HERE/lib.sh"
W=${W:?W must name the lab\'s work directory}
cd "$W" || { echo "no $W: run ../shared/xenlab/build.sh first"; exit 2; }
ACCEL=${1:-tcg}
TMO=${2:-300}
SHARE=${SHARE:-}
[ -d "$SHARE" ] || SHARE=""
mkdir -p logs
LOG=logs/serial-$ACCEL-$(date +%H%M%S).log
lab_qemu_cmd "$ACCEL" "$W" "$W/out/dom0.img" "$SHARE"
T0=$EPOCHREALTIME
timeout --foreground -k 10 "$TMO" "${LAB_QEMU[@]}" < /dev/null > >(lab_stamp > "$LOG") 2>&1 &
QPID=$!
echo "qemu wrapper pid $QPID, log $LOG"
echo "qemu: ${LAB_QEMU[*]}"
wait $QPID
RC=$?
sleep 1
echo "qemu exit rc=$RC after $(echo "$EPOCHREALTIME - $T0" | bc)s (124 = timeout)"
grep -a -E '\(XEN\) Xen version|Building a PV Dom0|Linux version|CHECKPOINT|xl create|XENLAB-DONE|Entering ACPI S5|Panic|FATAL|crashed' "$LOG" |
  cut -c1-150 | head -20
for m in CHECKPOINT-B CHECKPOINT-C CHECKPOINT-D CHECKPOINT-E XENLAB-DONE; do
  grep -a -q "$m" "$LOG" || { echo "FAIL: $m missing (see $LOG)"; exit 1; }
done
echo "PASS: all checkpoints reached"
