#!/bin/bash
# package-check.sh [DEB_DIR]: check the packages deploy/package.sh left in
# DEB_DIR (default build/deb) without installing them: the files, their
# modes and owners (config 0600, data directory 0700), the conffile, the
# dependencies (libraft0 >= 0.22), no file that Xen's packages own, the man
# pages rendering with groff without a warning, the bash completion
# parsing, and the packaged daemon starting far enough to read the
# packaged config file (--config FILE --help: the file is parsed, nothing
# is served). deploy/test.sh runs it after deploy/package.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/build/deb}
fails=0
ok() { echo "  ok   $*"; }
bad() { echo "  FAIL $*"; fails=$((fails + 1)); }

main=$(ls "$dir"/xenstored-raft_*.deb 2>/dev/null | head -1)
bench=$(ls "$dir"/xenstored-raft-bench_*.deb 2>/dev/null | head -1)
[ -n "$main" ] && [ -n "$bench" ] || { echo "package-check: no packages in $dir (run deploy/package.sh)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "package-check: $(basename "$main")"
dpkg-deb -c "$main" | awk '{print $1, $2, $6}' > "$tmp/main.list"
dpkg-deb -c "$bench" | awk '{print $1, $2, $6}' > "$tmp/bench.list"
has() { # LIST MODE OWNER PATH
  if grep -qxF -e "$2 $3 $4" "$tmp/$1.list"; then ok "$4 $2 $3"
  else bad "$4: want $2 $3, got '$(grep " $4\$" "$tmp/$1.list" || echo absent)'"; fi
}
has main -rwxr-xr-x root/root ./usr/sbin/xenstored-raft
has main -rwxr-xr-x root/root ./usr/sbin/xsadm
has main -rw------- root/root ./etc/xenstored-raft/xenstored-raft.conf
has main drwx------ root/root ./var/lib/xenstored/
has main -rw-r--r-- root/root ./lib/systemd/system/xenstored-raft.service
has main -rw-r--r-- root/root ./usr/share/man/man8/xenstored-raft.8.gz
has main -rw-r--r-- root/root ./usr/share/man/man8/xsadm.8.gz
has main -rw-r--r-- root/root ./usr/share/man/man5/xenstored-raft.conf.5.gz
has main -rw-r--r-- root/root ./usr/share/bash-completion/completions/xsadm
has main -rw-r--r-- root/root ./usr/share/doc/xenstored-raft/README.Debian
has bench -rwxr-xr-x root/root ./usr/bin/xsbench
has bench -rw-r--r-- root/root ./usr/share/man/man1/xsbench.1.gz

# Nothing Xen's packages ship (their daemon keeps /usr/sbin/xenstored).
xen_files=$tmp/xen.files
: > "$xen_files"
for p in xen-utils-4.17 xenstore-utils xen-utils-common; do
  dpkg -L "$p" 2>/dev/null >> "$xen_files" || true
done
if [ -s "$xen_files" ]; then
  clash=$(cat "$tmp/main.list" "$tmp/bench.list" | awk '$1 !~ /^d/ {print substr($3, 2)}' |
          grep -xF -f "$xen_files" || true)
  if [ -z "$clash" ]; then ok "no file shared with xen-utils-4.17, xenstore-utils, xen-utils-common"
  else bad "files Xen's packages own: $clash"; fi
else
  echo "  skip Xen's packages are not installed: no clash check"
fi

dpkg-deb --ctrl-tarfile "$main" | tar -xOf - ./conffiles > "$tmp/conffiles"
if grep -qxF /etc/xenstored-raft/xenstored-raft.conf "$tmp/conffiles"; then ok "conffile /etc/xenstored-raft/xenstored-raft.conf"
else bad "conffiles: $(tr '\n' ' ' < "$tmp/conffiles")"; fi
deps=$(dpkg-deb -f "$main" Depends)
if echo "$deps" | grep -qE '(^|, )libraft0 \(>= 0\.22'; then ok "Depends: libraft0 (>= 0.22...)"
else bad "Depends lacks libraft0 (>= 0.22): $deps"; fi
for lib in libuv1 libinih1 libjson-c5 libprotobuf-c1 libssl3 libxenevtchn1; do
  echo "$deps" | grep -qE "(^|, )$lib( |,|\$)" || bad "Depends lacks $lib: $deps"
done
ok "Depends: $deps"
[ "$(dpkg-deb -f "$main" Architecture)" = "$(dpkg --print-architecture)" ] && ok "Architecture" || bad "Architecture"

# The man pages render without a warning (groff -ww: every warning).
mkdir -p "$tmp/x"
dpkg-deb -x "$main" "$tmp/x"
dpkg-deb -x "$bench" "$tmp/x"
for m in "$tmp"/x/usr/share/man/man*/*.gz; do
  name=$(basename "$m" .gz)
  if ! zcat "$m" | groff -man -Tutf8 -ww -P-cbou > "$tmp/man.out" 2> "$tmp/man.err"; then
    bad "man $name: groff failed: $(head -3 "$tmp/man.err")"
  elif [ -s "$tmp/man.err" ]; then
    bad "man $name: warnings: $(head -3 "$tmp/man.err" | tr '\n' ' ')"
  elif ! grep -q 'NAME' "$tmp/man.out"; then
    bad "man $name: no NAME section in the output"
  else ok "man $name renders ($(wc -l < "$tmp/man.out") lines, no warning)"; fi
done
if man -l "$tmp/x/usr/share/man/man8/xenstored-raft.8.gz" 2>&1 | grep -q 'XENSTORED=/usr/sbin/xenstored-raft'; then
  ok "man xenstored-raft(8) shows the /etc/default/xen line"
else bad "man -l xenstored-raft.8 does not show XENSTORED=/usr/sbin/xenstored-raft"; fi
grep -q 'XENSTORED=/usr/sbin/xenstored-raft' "$tmp/x/usr/share/doc/xenstored-raft/README.Debian" &&
  ok "README.Debian shows the /etc/default/xen line" || bad "README.Debian lacks XENSTORED=/usr/sbin/xenstored-raft"

bash -n "$tmp/x/usr/share/bash-completion/completions/xsadm" && ok "bash completion parses" ||
  bad "bash completion: syntax error"

# The packaged binaries run, and the packaged (all-comment) config is valid.
x=$tmp/x
if "$x/usr/sbin/xenstored-raft" --version > "$tmp/v" 2>&1; then ok "xenstored-raft --version: $(head -1 "$tmp/v")"
else bad "xenstored-raft --version: $(head -3 "$tmp/v")"; fi
"$x/usr/sbin/xsadm" --version > /dev/null 2>&1 && ok "xsadm --version" || bad "xsadm --version"
"$x/usr/bin/xsbench" --version > /dev/null 2>&1 && ok "xsbench --version" || bad "xsbench --version"
if "$x/usr/sbin/xenstored-raft" --config "$x/etc/xenstored-raft/xenstored-raft.conf" --help > /dev/null 2> "$tmp/c"; then
  ok "the packaged config file is accepted"
else bad "the packaged config file is refused: $(head -3 "$tmp/c")"; fi

if [ $fails = 0 ]; then echo "package-check: PASS"; exit 0; fi
echo "package-check: $fails FAILED"
exit 1
