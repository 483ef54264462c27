#!/bin/bash
# fuzz.sh TARGET MINUTES | --all SECONDS [TARGET...]: run the libFuzzer
# targets of tests/fuzz/ (socket, ring, apply, snapshot, peer, handshake),
# building them first if needed (clang, -DXSR_FUZZ=ON, into build-fuzz/;
# XSR_FUZZ_BUILD names another directory). Each run starts from the
# committed seeds (tests/fuzz/corpus/<target>/) and regression inputs
# (tests/fuzz/regress/<target>/) with a fixed -seed, so a run is
# reproducible; what it finds (its corpus, crash files, log) is kept in a
# directory of its own, named at the end. A crash fails the script and
# says where its input is: fix the bug, then copy the input into
# tests/fuzz/regress/<target>/ (CTest's fuzz_regress replays it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${XSR_FUZZ_BUILD:-$here/build-fuzz}
all=(socket ring apply snapshot peer handshake)

usage() {
  echo "usage: fuzz.sh TARGET MINUTES | fuzz.sh --all SECONDS [TARGET...]" >&2
  echo "targets: ${all[*]}" >&2
  exit 2
}

build() {
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    CC=clang cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DXSR_FUZZ=ON >/dev/null
  fi
  cmake --build "$dir" --target fuzz -j "$(nproc)" >/dev/null
}

# run TARGET SECONDS: 0 if it found nothing.
run() {
  local t=$1 secs=$2 out rc=0 seeds
  out=$dir/runs/$t-$(date +%Y%m%d-%H%M%S)
  mkdir -p "$out/corpus" "$out/crashes"
  seeds=("$here/tests/fuzz/corpus/$t")
  [ -d "$here/tests/fuzz/regress/$t" ] && seeds+=("$here/tests/fuzz/regress/$t")
  echo "== fuzz $t for ${secs}s"
  # new inputs go into the run's own corpus, never into the seeds
  "$dir/fuzz/fuzz_$t" -seed=1 -max_total_time="$secs" -timeout=20 \
    -print_final_stats=1 -artifact_prefix="$out/crashes/" \
    "$out/corpus" "${seeds[@]}" >"$out/log" 2>&1 || rc=$?
  grep -E '^#[0-9]+[[:space:]]+DONE' "$out/log" | tail -1 || true
  if [ $rc != 0 ] || [ -n "$(ls -A "$out/crashes")" ]; then
    echo "== fuzz $t: FOUND A CRASH (exit $rc); the input:"
    ls "$out/crashes"/* 2>/dev/null | sed 's/^/   /'
    grep -E '^fuzz: |store_check_after|Assertion|runtime error|^SUMMARY' "$out/log" |
      head -3 | sed 's/^/   /' || true
    echo "   replay it: $dir/fuzz/fuzz_$t INPUT; the whole log: $out/log"
    return 1
  fi
  echo "   kept in $out"
}

[ $# -ge 2 ] || usage
build
if [ "$1" = --all ]; then
  secs=$2
  shift 2
  [[ "$secs" =~ ^[0-9]+$ ]] || usage
  [ $# -gt 0 ] && targets=("$@") || targets=("${all[@]}")
  for t in "${targets[@]}"; do
    [[ " ${all[*]} " == *" $t "* ]] || usage
  done
  failed=()
  for t in "${targets[@]}"; do
    run "$t" "$secs" || failed+=("$t")
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzz: crashes in ${failed[*]} (runs kept in $dir/runs)"
    exit 1
  fi
  echo "== fuzz: no crash (runs kept in $dir/runs)"
  exit 0
fi
t=${1#fuzz_}
[[ " ${all[*]} " == *" $t "* ]] || usage
[[ "$2" =~ ^[0-9]+$ ]] || usage
run "$t" $(($2 * 60))
