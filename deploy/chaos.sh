#!/bin/bash
# chaos.sh --seed S --minutes M [--members N] [--keep] [--bin DIR] [chaos.py options]
# One longer run of the fault-injection suite (tests/chaos/chaos.py) on a
# cluster of this machine (127.0.0.1; needs root for iptables): random
# faults from the seed's schedule while clients on every host read, write,
# remove, transact and watch; then the history is checked. The artefacts
# (history.jsonl, schedule.json, checker.txt, verify.txt, every member's
# log in cluster/host*/xenstored.log) are kept in a new directory, named at
# the end. The same seed (and --members, --minutes) replays the same fault
# schedule. Exit code: chaos.py's (0 passed, 1 violation or crash, 2 error).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seed="" minutes="" bin=${XSR_BIN:-$here/build/bin} rest=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed=${2-}; shift $(( $# > 1 ? 2 : 1 )) ;;
    --minutes) minutes=${2-}; shift $(( $# > 1 ? 2 : 1 )) ;;
    --bin) bin=${2-}; shift $(( $# > 1 ? 2 : 1 )) ;;
    --keep) shift ;;            # the artefacts are always kept
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) rest+=("$1"); shift ;;
  esac
done
[ -n "$seed" ] && [ -n "$minutes" ] || { sed -n '2,11p' "$0" >&2; exit 2; }
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "chaos.sh: --seed wants a number, not '$seed'" >&2; exit 2; }
[[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
  { echo "chaos.sh: --minutes wants a number, not '$minutes'" >&2; exit 2; }
dir=$(mktemp -d "/tmp/xsr-chaos-s$seed-XXXXXX")
/usr/bin/python3 "$here/tests/chaos/chaos.py" --seed "$seed" --minutes "$minutes" \
  --bin "$bin" --dir "$dir" --keep "${rest[@]+"${rest[@]}"}"
rc=$?
echo "chaos.sh: seed $seed, exit $rc; artefacts (history, schedule, logs) in $dir"
exit $rc
