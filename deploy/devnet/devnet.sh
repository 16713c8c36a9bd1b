#!/usr/bin/env bash
# devnet.sh start|stop|status RUN_DIR — the local devnet in the background.
# start waits until RUN_DIR/devnet.json (the info JSON) exists and prints it.
set -euo pipefail
action=${1:?start|stop|status}
dir=${2:?run directory}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$dir"
pidfile="$dir/devnet.pid"
info="$dir/devnet.json"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "$action" in
start)
    if running; then cat "$info"; exit 0; fi
    rm -f "$info"
    nohup "$root/.venv/bin/python" "$here/devnet.py" --info-file "$info" >"$dir/devnet.out" 2>"$dir/devnet.log" </dev/null &
    echo $! > "$pidfile"
    for _ in $(seq 1 1200); do
        [ -s "$info" ] && { cat "$info"; exit 0; }
        running || { echo "devnet exited during startup:" >&2; tail -20 "$dir/devnet.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "devnet did not become ready in 120 s" >&2
    tail -20 "$dir/devnet.log" >&2
    exit 1
    ;;
stop)
    if running; then
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile" "$info"
    ;;
status)
    if running; then echo "running (pid $(cat "$pidfile"))"; cat "$info"; else echo "stopped"; exit 1; fi
    ;;
*)
    echo "usage: $0 start|stop|status RUN_DIR" >&2
    exit 2
    ;;
esac
