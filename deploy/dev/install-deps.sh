#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12, and the Python venv (.venv).
# Idempotent: does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/../.."

packages=(pkg-config libhiredis-dev libsecp256k1-dev libpq-dev libssl-dev redis-server nginx
          nginx-dev postgresql python3-venv wrk curl jq valgrind)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts packaged services where it can; ours run on our own ports, theirs are not needed.
    $SUDO service redis-server stop >/dev/null 2>&1 || true
    $SUDO service nginx stop >/dev/null 2>&1 || true
fi

if ! command -v swift >/dev/null; then
    echo "swift is not on PATH (Swift 6.1 or newer is required)" >&2
    exit 1
fi

requirements=()
for r in Tests/Vectors/requirements.txt deploy/devnet/requirements.txt Benchmarks/requirements.txt \
         Tests/Vectors/requirements-leases.txt Tests/e2e/requirements.txt; do [ -f "$r" ] && requirements+=("$r"); done
nodeps=Tests/Vectors/requirements-nodeps.txt
stamp=.venv/.requirements.sha256
want=$(cat "${requirements[@]}" "$nodeps" | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "preparing the Python venv (.venv)"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null
    for r in "${requirements[@]}"; do .venv/bin/pip install -q -r "$r"; done
    .venv/bin/pip install -q --no-deps -r "$nodeps"
    .venv/bin/pip install -q pytest requests httpx
    echo "$want" > "$stamp"
fi
