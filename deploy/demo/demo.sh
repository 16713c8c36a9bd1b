#!/usr/bin/env bash
# `make demo`: builds the sidecar, starts it on 127.0.0.1 with the embedded nonce ledger, and pays it
# with the official x402 Python client. Leaves it running; `make demo-stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
run=.run/demo
port=${X402_PORT:-8402}
export X402_RUN_DIR=$run X402_PORT=$port

stop() {
    if [ -f "$run/sidecar.pid" ]; then
        kill "$(cat "$run/sidecar.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 || break; sleep 0.1; done
        rm -f "$run/sidecar.pid"
        echo "sidecar stopped"
    fi
}

if [ "${1:-}" = "stop" ]; then stop; exit 0; fi

mkdir -p "$run"
stop
echo "== building x402-sidecar"
swift build --product x402-sidecar 2>&1 | tail -1
bin=$(swift build --show-bin-path)/x402-sidecar

echo "== checking the configuration"
"$bin" check-config --config config/x402.devnet.yaml

echo "== starting the sidecar (logs: $run/sidecar.log)"
nohup "$bin" serve --config config/x402.devnet.yaml > "$run/sidecar.log" 2>&1 &
echo $! > "$run/sidecar.pid"
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$port/readyz"; echo

echo "== paying it with the official x402 Python client"
.venv/bin/python deploy/demo/pay.py "http://127.0.0.1:$port"

cat <<MSG

The sidecar is still running on 127.0.0.1:$port and unix:$run/x402.sock.
  Ask it yourself:   curl -si -H 'X-X402-Route: weather' http://127.0.0.1:$port/authorize
  Watch decisions:   tail -f $run/sidecar.log | jq .
  Stop it:           make demo-stop
MSG
