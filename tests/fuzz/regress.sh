#!/bin/sh
# regress.sh SRC_DIR REPLAY...: CTest's fuzz_regress. Each REPLAY is a
# fuzz target built as a plain program (fuzz/fuzz_<name>_replay); it runs
# SRC_DIR/corpus/<name>/ and SRC_DIR/regress/<name>/ once through the
# target. A crash (a sanitizer's report in the ASan build) fails the test.
set -e
src=$1
shift
for replay in "$@"; do
  name=$(basename "$replay" _replay)
  name=${name#fuzz_}
  set -- "$src/corpus/$name"
  [ -d "$src/regress/$name" ] && set -- "$@" "$src/regress/$name"
  "$replay" "$@"
done
