#!/bin/bash
# quickstart.sh: set up (Debian packages), build, and start a single-node
# xenstored with its data in ./var/, then print the XENSTORED_PATH line to
# use with xenstore-ls and friends. Run it again to restart the daemon on
# the same data (nothing is lost); `deploy/quickstart.sh stop` stops it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
var=$here/var
pidfile=$var/xenstored.pid

stop() {
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "quickstart: xenstored $pid did not stop on SIGTERM" >&2
        exit 1
      fi
      echo "quickstart: stopped xenstored $pid"
    fi
    rm -f "$pidfile"
  fi
}

if [ "${1:-}" = stop ]; then
  stop
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  bash "$here/deploy/setup.sh"
else
  echo "quickstart: not root: skipping deploy/setup.sh (run it as root once)"
fi
bash "$here/deploy/build.sh" "$here/build"
stop
mkdir -p "$var"
"$here/build/bin/xenstored" --data-dir "$var/data" --run-dir "$var/run" \
  --pid-file "$pidfile" --log-file "$var/xenstored.log"
echo "quickstart: xenstored $(cat "$pidfile") is serving; log in $var/xenstored.log"
echo
echo "XENSTORED_PATH=$var/run/socket"
echo
echo "For example:"
echo "  export XENSTORED_PATH=$var/run/socket"
echo "  xenstore-write /example/greeting hello && xenstore-ls -f /"
echo "Stop it with: deploy/quickstart.sh stop"
