#!/bin/sh
# The restart command of a PEP served by serve_platform.py: SIGKILL the process whose pid PIDFILE
# holds (nothing it keeps in memory survives), wait until it is gone, and start it again in the
# background with the same arguments, on the same database. Returns before it listens again.
#
#   PYTHON=.venv/bin/python sh tests/planted/restart.sh VARIANT PORT DATABASE PIDFILE
set -eu
pidfile=$4
pid=$(cat "$pidfile")
kill -KILL "$pid" 2>/dev/null || true
# Gone, or a zombie its parent has not reaped yet: either way it holds no port any more.
tries=0
while [ -e "/proc/$pid" ] && ! grep -q ') Z ' "/proc/$pid/stat" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 200 ]; then
        echo "process $pid is still running 10 s after SIGKILL" >&2
        exit 1
    fi
    sleep 0.05
done
nohup "${PYTHON:-python3}" "$(dirname "$0")/serve_platform.py" "$@" \
    >>"$pidfile.log" 2>&1 </dev/null &
