"""kill -9 of the sidecar with 50 deferred settlements queued, then a restart: every one is
settled exactly once on chain, for the embedded journal and for Redis.

Two moments for the kill: with every settlement still queued (the chain unreachable), and in the
middle of the worker's drain, when some transactions are mined, one may be signed and recorded
but not sent, and the queue does not yet know about the last receipts. The relayer's transaction
count tells that nothing was sent twice."""
import os
import time

import pytest
import requests
from payments import decode, sync_client, v2_header
from stack import Sidecar, free_port, wait_for

COUNT = 50
PRICE = 10000


# Deferred like `weather`, but served without reading the payer's balance: in the "queued" moment
# the chain (and so balanceOf) is unreachable, which a checked route answers with 503.
CRASH_ROUTE = """  crash:
    description: "Deferred, exposure unchecked"
    price: "0.01"
    exposure: unchecked
"""


def authorize(sidecar, headers):
    base = {"X-X402-Route": "crash", "X-Original-URI": "/crash", "X-Forwarded-Host": "api.example.com"}
    return requests.get(sidecar.url + "/authorize", headers=dict(base, **headers), timeout=10)


def transaction_count(devnet, address):
    return int(devnet.rpc("eth_getTransactionCount", [address, "latest"]), 16)


@pytest.mark.parametrize("moment", ["queued", "in_flight"])
@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_kill9_with_50_queued_settles_each_exactly_once(devnet, run_root, store, moment):
    redis_url = os.environ.get("X402_TEST_REDIS_URL")
    if store == "redis" and not redis_url:
        if os.environ.get("X402_REQUIRE_INTEGRATION") == "1":
            pytest.fail("X402_TEST_REDIS_URL is not set")
        pytest.skip("no Redis")
    run = os.path.join(run_root, f"crash-{store}-{moment}")
    sidecar = Sidecar(run, devnet, store=store, redis_url=redis_url, prefix=f"crash{moment}{time.time_ns()}",
                      extra_routes=CRASH_ROUTE)
    payer = devnet.info["payers"][2]
    relayer = devnet.info["sidecarRelayer"]["address"]
    pay_to = devnet.info["payTo"]["address"]
    client = sync_client(payer["privateKey"])
    payer_before = devnet.balance(payer["address"])
    pay_to_before = devnet.balance(pay_to)
    sent_before = transaction_count(devnet, relayer)

    # First life. "queued": the chain is unreachable, so every settlement stays in the queue.
    env = {"X402_E2E_RPC_URL": f"http://127.0.0.1:{free_port()}"} if moment == "queued" else {}
    sidecar.start(env=env)
    challenge = authorize(sidecar, {})
    assert challenge.status_code == 401 and "PAYMENT-REQUIRED" in challenge.headers
    headers = [v2_header(client, challenge) for _ in range(COUNT)]
    nonces = [decode(h)["payload"]["authorization"]["nonce"] for h in headers]
    for header in headers:
        answer = authorize(sidecar, {"PAYMENT-SIGNATURE": header})
        assert answer.status_code == 200, answer.headers
    assert sidecar.metrics()['x402_settlements_total{outcome="enqueued"}'] == COUNT
    if moment == "queued":
        assert sidecar.metrics()['x402_settlements_total{outcome="settled"}'] == 0
    else:
        # Kill once a few transfers are mined and most are not.
        wait_for(lambda: devnet.balance(pay_to) >= pay_to_before + 3 * PRICE, timeout=60, interval=0.01,
                 what="the first settlements of the drain")

    sidecar.kill9()
    mined_at_kill = (devnet.balance(pay_to) - pay_to_before) // PRICE
    if moment == "in_flight":
        assert mined_at_kill < COUNT, "the drain finished before the kill: nothing was in flight"

    # Second life: the chain is reachable.
    sidecar.start()
    wait_for(lambda: devnet.balance(pay_to) == pay_to_before + COUNT * PRICE, timeout=120,
             what=f"{COUNT} settlements after the restart")
    wait_for(lambda: sidecar.metrics()['x402_settlement_queue_jobs{state="pending"}'] == 0, timeout=30,
             what="an empty queue")
    time.sleep(2)  # anything that would settle twice has had its chance
    assert devnet.balance(pay_to) == pay_to_before + COUNT * PRICE
    assert devnet.balance(payer["address"]) == payer_before - COUNT * PRICE
    assert all(devnet.authorization_used(payer["address"], nonce) for nonce in nonces)
    # One mined transaction per payment: no resubmission of a settled one, none wasted on a revert.
    assert transaction_count(devnet, relayer) - sent_before == COUNT
    metrics = sidecar.metrics()
    assert metrics['x402_settlement_queue_jobs{state="dead"}'] == 0
    settled_now = metrics['x402_settlements_total{outcome="settled"}']
    if moment == "queued":
        assert settled_now == COUNT
        settled_lines = [line for line in sidecar.log_lines() if '"message":"settled"' in line]
        assert len(settled_lines) == COUNT
    else:
        # Jobs whose transfer was mined before the kill are finished from their recorded hash.
        assert COUNT - mined_at_kill <= settled_now <= COUNT
    sidecar.stop()
