#!/usr/bin/env bash
# deploy/dev/redis.sh start|stop|status DIR PORT — a throwaway redis-server on 127.0.0.1:PORT with
# its files under DIR. Waits on the port, not the PID (PID 1 here does not reap children).
set -euo pipefail
action=${1:?start|stop|status}; dir=${2:?DIR}; port=${3:?PORT}

ping() { redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; }

case "$action" in
start)
    mkdir -p "$dir"
    ping && { echo "redis already answers on 127.0.0.1:$port"; exit 0; }
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1
    for _ in $(seq 1 100); do ping && { echo "redis on 127.0.0.1:$port"; exit 0; }; sleep 0.1; done
    echo "redis did not start on port $port; log:" >&2; tail -20 "$dir/redis.log" >&2; exit 1
    ;;
stop)
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do ping || exit 0; sleep 0.1; done
    echo "redis on port $port did not stop" >&2; exit 1
    ;;
status)
    ping && echo "up" || { echo "down"; exit 1; }
    ;;
*) echo "usage: $0 start|stop|status DIR PORT" >&2; exit 2 ;;
esac
