#!/bin/bash
# build.sh [BUILD_DIR [cmake args...]]: configure and build into BUILD_DIR
# (default build/). Binaries land in BUILD_DIR/bin.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/build}
shift || true
cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
