#!/bin/bash
# package.sh: build the Debian packages (debian/) on Debian 12 and check
# them with lintian. Installs what it needs (deploy/setup.sh: the build
# dependencies, libraft 0.22 from bookworm-backports, debhelper, lintian),
# runs `dpkg-buildpackage -us -uc -b` in a copy of the tree (so build/ is
# left alone) and leaves the .deb files in build/deb/:
#   xenstored-raft_VERSION_ARCH.deb        daemon, xsadm, config, man pages
#   xenstored-raft-bench_VERSION_ARCH.deb  xsbench
# Exit 1 if the build fails or lintian reports a tag that debian/*.lintian-
# overrides does not explain. Run as root (setup.sh installs packages).
#   XSR_PACKAGE_NOSETUP=1  skip setup.sh (the packages are known present)
#   DEB_BUILD_OPTIONS      passed on (e.g. nocheck: no unit tests either)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/build/deb
work=$here/build/deb-src

[ "${XSR_PACKAGE_NOSETUP:-0}" = 1 ] || bash "$here/deploy/setup.sh"

version=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
src=$work/xenstored-raft-$version
rm -rf "$work" "$out"
mkdir -p "$src" "$out"
# the tree as git sees it (tracked files, and new ones not ignored), else
# everything but build output
if git -C "$here" rev-parse --git-dir > /dev/null 2>&1; then
  (cd "$here" && git ls-files -z -c -o --exclude-standard |
     xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' |
     tar --null -T - -cf -) | tar -xf - -C "$src"
else
  tar -C "$here" --exclude=./build --exclude='./build-*' --exclude=./var \
    --exclude=./.git -cf - . | tar -xf - -C "$src"
fi

echo "package.sh: dpkg-buildpackage in $src (log $work/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -jauto) > "$work/build.log" 2>&1; then
  tail -30 "$work/build.log" >&2
  echo "package.sh: dpkg-buildpackage failed (see $work/build.log)" >&2
  exit 1
fi
mv "$work"/*.deb "$out/"
cp "$work"/*.changes "$work"/*.buildinfo "$out/" 2>/dev/null || true
ls -l "$out"/*.deb

echo "package.sh: lintian"
# --fail-on warning: errors and warnings fail; info tags are printed only
if ! lintian --fail-on error,warning -I "$out"/*.changes; then
  echo "package.sh: lintian reported tags not overridden in debian/" >&2
  exit 1
fi
echo "package.sh: done: $out"
