#!/bin/bash
# certs.sh: the cluster's TLS credentials, made with Debian's openssl.
#
#   certs.sh ca DIR [DAYS]              DIR/ca.pem (certificate, to give
#                                       every member) and DIR/ca.key (the
#                                       CA's key: keep it off the members)
#   certs.sh member DIR ID NAME [DAYS]  DIR/member-ID.pem and
#                                       DIR/member-ID.key, signed by DIR's
#                                       CA, naming member ID ("xsr-member-ID")
#
# Keys are written with mode 0600 (the daemon refuses a key file that
# others may read). A member's certificate is valid for DAYS (default
# 825); the CA's for DAYS (default 3650). Rotation (README, "A cluster of
# hosts"): make a new CA, give every member a ca-file holding both CAs,
# restart them one at a time; then new member certificates, restart one at
# a time; then drop the old CA from ca-file.
set -euo pipefail
umask 077

die() { echo "certs.sh: $*" >&2; exit 2; }
command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"

case "${1:-}" in
ca)
  dir=${2:-}; days=${3:-3650}
  [ -n "$dir" ] || die "usage: certs.sh ca DIR [DAYS]"
  mkdir -p "$dir"
  [ ! -e "$dir/ca.key" ] || die "$dir/ca.key exists: not overwritten"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$days" \
    -subj "/CN=xsr-cluster-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$dir/ca.key"
  chmod 644 "$dir/ca.pem"
  echo "$dir/ca.pem $dir/ca.key"
  ;;
member)
  dir=${2:-}; id=${3:-}; name=${4:-}; days=${5:-825}
  [ -n "$dir" ] && [ -n "$id" ] && [ -n "$name" ] ||
    die "usage: certs.sh member DIR ID NAME [DAYS]"
  [[ "$id" =~ ^[1-9][0-9]*$ ]] || die "member id must be a number > 0, not '$id'"
  [ -f "$dir/ca.key" ] || die "no CA in $dir (certs.sh ca $dir)"
  csr=$(mktemp)
  ext=$(mktemp)
  trap 'rm -f "$csr" "$ext"' EXIT
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/member-$id.key" -out "$csr" \
    -subj "/CN=xsr-member-$id/O=$name" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:%s\n' \
    "$name" >"$ext"
  openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/member-$id.pem" -days "$days" \
    -extfile "$ext" 2>/dev/null
  chmod 600 "$dir/member-$id.key"
  chmod 644 "$dir/member-$id.pem"
  echo "$dir/member-$id.pem $dir/member-$id.key"
  ;;
*)
  sed -n '2,17p' "$0" >&2
  exit 2
  ;;
esac
