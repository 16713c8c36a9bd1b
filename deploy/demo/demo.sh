#!/usr/bin/env bash
# `make demo`: builds the sidecar, then deploy/demo/demo.py starts the devnet, a demo backend, the
# sidecar and nginx on 127.0.0.1 and pays through nginx with the official x402 Python client.
# Everything keeps running; `make demo-stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "stop" ]; then exec .venv/bin/python deploy/demo/demo.py stop; fi
.venv/bin/python deploy/demo/demo.py stop >/dev/null 2>&1 || true
echo "== building x402-sidecar"
swift build --product x402-sidecar 2>&1 | tail -1
export X402_SIDECAR_BIN="$(swift build --show-bin-path)/x402-sidecar"
unset X402_TEST_DEVNET_INFO
exec .venv/bin/python deploy/demo/demo.py
