#!/usr/bin/env bash
# The README's test command runs this: every test layer, against real servers it starts itself on
# 127.0.0.1 and stops at the end. Exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
run="$root/.run/test"
mkdir -p "$run"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

redis_port=$(free_port)
cleanup() {
    deploy/dev/redis.sh stop "$run/redis" "$redis_port" >/dev/null 2>&1 || true
    deploy/devnet/devnet.sh stop "$run/devnet" >/dev/null 2>&1 || true
}
trap cleanup EXIT
deploy/dev/redis.sh start "$run/redis" "$redis_port"
echo "== devnet (eth-tester chain 84532, our EIP-3009 token, the official x402 facilitator)"
deploy/devnet/devnet.sh start "$run/devnet" >/dev/null
export X402_TEST_DEVNET_INFO="$run/devnet/devnet.json"
jq -c '{chainId, rpcUrl, facilitatorUrl, token}' "$X402_TEST_DEVNET_INFO"

export X402_REQUIRE_INTEGRATION=1
export X402_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
export X402_TEST_REDIS_CTL="$root/deploy/dev/redis.sh"
export X402_TEST_REDIS_DIR="$run/redis"
export X402_TEST_REDIS_PORT="$redis_port"

echo "== make module (ngx_http_x402_module.so against Debian's nginx-dev)"
make -C nginx/module

echo "== swift build (the sidecar binary the end-to-end tests run)"
swift build --product x402-sidecar

echo "== swift test (unit, router and integration tests; Redis on port $redis_port, the devnet)"
swift test 2>&1 | tee "$run/swift-test.log"
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || { echo "swift test failed" >&2; exit "$status"; }

echo "== pytest (the devnet itself; end to end through nginx with the official x402 client)"
export X402_SIDECAR_BIN="$root/.build/debug/x402-sidecar"
.venv/bin/python -m pytest -q deploy/devnet/tests Tests/lease Tests/e2e

echo "== pytest Tests/module (ngx_http_x402_module in a real nginx: one round trip, leases, reports)"
.venv/bin/python -m pytest -q Tests/module

# Last, after every test layer has reported; a crash or broken invariant fails the run. CI: 20 s a target.
echo "== fuzz (libFuzzer on the parsers of untrusted input, ${FUZZ_SECONDS:-20} s per target from Fuzz/Corpus)"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} Fuzz/run.sh
