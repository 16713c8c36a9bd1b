"""kill -9 of the sidecar with 50 deferred settlements queued, then a restart: every one is
settled exactly once on chain, for the embedded journal and for Redis."""
import os
import time

import pytest
import requests
from payments import sync_client, v2_header
from stack import Sidecar, free_port, wait_for

COUNT = 50
PRICE = 10000


def authorize(sidecar, headers):
    base = {"X-X402-Route": "weather", "X-Original-URI": "/weather", "X-Forwarded-Host": "api.example.com"}
    return requests.get(sidecar.url + "/authorize", headers=dict(base, **headers), timeout=10)


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_kill9_with_50_queued_settles_each_exactly_once(devnet, run_root, store):
    redis_url = os.environ.get("X402_TEST_REDIS_URL")
    if store == "redis" and not redis_url:
        if os.environ.get("X402_REQUIRE_INTEGRATION") == "1":
            pytest.fail("X402_TEST_REDIS_URL is not set")
        pytest.skip("no Redis")
    run = os.path.join(run_root, f"crash-{store}")
    sidecar = Sidecar(run, devnet, store=store, redis_url=redis_url, prefix=f"crash{int(time.time())}")
    # First life: the chain is unreachable, so every settlement stays queued.
    sidecar.start(env={"X402_E2E_RPC_URL": f"http://127.0.0.1:{free_port()}"})
    payer = devnet.info["payers"][COUNT % 3]
    client = sync_client(payer["privateKey"])
    pay_to = devnet.info["payTo"]["address"]
    challenge = authorize(sidecar, {})
    assert challenge.status_code == 401 and "PAYMENT-REQUIRED" in challenge.headers
    nonces = []
    for _ in range(COUNT):
        header = v2_header(client, challenge)
        answer = authorize(sidecar, {"PAYMENT-SIGNATURE": header})
        assert answer.status_code == 200, answer.headers
        nonces.append(__import__("payments").decode(header)["payload"]["authorization"]["nonce"])
    metrics = sidecar.metrics()
    assert metrics['x402_settlements_total{outcome="enqueued"}'] == COUNT
    assert metrics['x402_settlements_total{outcome="settled"}'] == 0
    payer_before = devnet.balance(payer["address"])
    pay_to_before = devnet.balance(pay_to)

    sidecar.kill9()

    # Second life: the chain is back.
    sidecar.start()
    wait_for(lambda: devnet.balance(pay_to) == pay_to_before + COUNT * PRICE, timeout=120,
             what=f"{COUNT} settlements after the restart")
    wait_for(lambda: sidecar.metrics()['x402_settlement_queue_jobs{state="pending"}'] == 0, timeout=30,
             what="an empty queue")
    time.sleep(2)  # anything that would settle twice has had its chance
    assert devnet.balance(pay_to) == pay_to_before + COUNT * PRICE
    assert devnet.balance(payer["address"]) == payer_before - COUNT * PRICE
    assert all(devnet.authorization_used(payer["address"], nonce) for nonce in nonces)
    metrics = sidecar.metrics()
    assert metrics['x402_settlements_total{outcome="settled"}'] == COUNT
    assert metrics['x402_settlement_queue_jobs{state="dead"}'] == 0
    settled_lines = [line for line in sidecar.log_lines() if '"message":"settled"' in line]
    assert len(settled_lines) == COUNT
    sidecar.stop()
