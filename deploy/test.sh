#!/bin/bash
# test.sh: set up (Debian packages), build, and run every test with CTest:
# unit tests (cmocka), end-to-end tests with Xen's real clients, the
# differential test against Xen 4.17's C xenstored, bad input, durability.
# A second build with AddressSanitizer/UBSan runs the same tests.
# Extra arguments go to ctest (e.g. -R store).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/deploy/setup.sh"

run() { # BUILD_DIR [cmake args]
  local dir=$1; shift
  echo "== build $dir $*"
  bash "$here/deploy/build.sh" "$dir" "$@"
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure --timeout 900 ${CTEST_ARGS:-})
}

CTEST_ARGS="$*" run "$here/build"
if [ "${XSR_SKIP_ASAN:-0}" != 1 ]; then
  CTEST_ARGS="$*" run "$here/build-asan" -DXSR_SANITIZE=ON
fi
echo "== all tests passed"
