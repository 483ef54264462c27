#!/bin/bash
# setup.sh: install every Debian 12 package that building, running and
# testing this project needs. Idempotent and non-interactive; run as root.
#
# libraft comes from bookworm-backports (0.22, cowsql's maintained
# continuation of canonical raft): the 0.15 in bookworm main has safety bugs
# (see README, "Why libraft 0.22"). Only that one package is taken from
# backports: the suite is added with apt's default low priority and the
# install names it explicitly.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ "$codename" != bookworm ]; then
  echo "setup.sh: this project targets Debian 12 (bookworm); found '${codename:-unknown}'" >&2
  exit 1
fi

# Packages from bookworm (main).
PKGS=(
  build-essential cmake pkg-config git
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler libcmocka-dev libinih-dev
  libjson-c-dev libsystemd-dev libssl-dev openssl python3-cryptography tcpdump
  libxen-dev
  xen-utils-4.17 xenstore-utils python3 python3-pyxs
  procps psmisc util-linux iptables
  clang libclang-rt-14-dev
  debhelper dpkg-dev fakeroot lintian groff-base man-db
)
# From bookworm-backports, pinned to the 0.22 series.
RAFT_PKGS=(libraft-dev libraft0)

backports=/etc/apt/sources.list.d/xsr-bookworm-backports.sources
have_backports() {
  grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/
}

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
raft_ok=false
if dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null | grep -q '^0\.22\.'; then
  raft_ok=true
fi

if [ ${#missing[@]} -eq 0 ] && $raft_ok; then
  echo "setup.sh: all packages present"
  exit 0
fi

if ! have_backports; then
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  cat >"$backports" <<EOS
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
  echo "setup.sh: added bookworm-backports ($mirror) for libraft 0.22"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! $raft_ok; then
  echo "setup.sh: installing libraft 0.22 from bookworm-backports"
  apt-get install -y -qq --no-install-recommends -t bookworm-backports "${RAFT_PKGS[@]}" >/dev/null
fi
v=$(dpkg-query -W -f='${Version}' libraft-dev)
case "$v" in
  0.22.*) echo "setup.sh: libraft-dev $v" ;;
  *) echo "setup.sh: expected libraft-dev 0.22.x, got $v" >&2; exit 1 ;;
esac
