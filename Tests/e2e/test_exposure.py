"""Exposure control through a real nginx on the devnet: a route that serves before it is paid
(`deferred`, `after`) never serves a wallet that cannot pay. An unfunded wallet is refused; a
wallet funded for exactly one payment that signs ten distinct valid authorizations — five one
after another, then five at once — is served once, and that one request is settled on chain.
Embedded store with one sidecar, and Redis with two sidecars behind one nginx upstream."""
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from eth_account import Account
from payments import decode, sync_client, v2_header
from stack import Backend, Nginx, Sidecar, wait_for

PRICE = {"weather": 10000, "after": 30000}
@pytest.fixture(params=["embedded", "redis"])
def exposed(request, devnet, run_root):
    store = request.param
    redis_url = os.environ.get("X402_TEST_REDIS_URL")
    if store == "redis" and not redis_url:
        if os.environ.get("X402_REQUIRE_INTEGRATION") == "1":
            pytest.fail("X402_TEST_REDIS_URL is not set")
        pytest.skip("no Redis")
    run = os.path.join(run_root, f"exposure-{store}-{time.time_ns()}")
    prefix = f"exposure{time.time_ns()}"
    names = ["one", "two"] if store == "redis" else ["one"]
    sidecars = [Sidecar(os.path.join(run, name), devnet, store=store, redis_url=redis_url, prefix=prefix).start()
                for name in names]
    backend = Backend()
    nginx = Nginx(os.path.join(run, "one"), backend.port)
    if len(sidecars) == 2:
        # Both sidecars behind nginx's one upstream: consecutive requests alternate between them.
        path = os.path.join(run, "one", "x402", "http.conf")
        text = open(path).read()
        first = f"server unix:{os.path.join(run, 'one')}/x402.sock max_fails=0;"
        assert first in text
        with open(path, "w") as f:
            f.write(text.replace(first, first + f"\n    server unix:{os.path.join(run, 'two')}/x402.sock max_fails=0;"))
    nginx.start()

    class Stack:
        pass

    stack = Stack()
    stack.devnet, stack.sidecars, stack.backend, stack.nginx = devnet, sidecars, backend, nginx
    yield stack
    nginx.stop()
    for sidecar in sidecars:
        sidecar.stop()
    backend.stop()


def path_of(route):
    return "/weather?exposure" if route == "weather" else "/after/ok?exposure"


def pay(stack, route, header):
    response = requests.get(stack.nginx.url + path_of(route), headers={"PAYMENT-SIGNATURE": header}, timeout=30)
    reason = None
    if response.status_code == 402:
        reason = decode(response.headers["PAYMENT-REQUIRED"]).get("error")
    return response.status_code, reason


@pytest.mark.parametrize("route", ["weather", "after"])
def test_an_unfunded_wallet_is_never_served_and_one_payment_buys_one_request(exposed, route):
    stack = exposed
    challenge = requests.get(stack.nginx.url + path_of(route))
    assert challenge.status_code == 402
    seen_before = len(stack.backend.requests_to("exposure"))

    unfunded = Account.create()
    client = sync_client(unfunded.key.hex())
    for _ in range(3):
        status, reason = pay(stack, route, v2_header(client, challenge))
        assert (status, reason) == (402, "invalid_exact_evm_insufficient_balance")
    assert len(stack.backend.requests_to("exposure")) == seen_before, "an unfunded wallet reached the backend"

    funded = Account.create()
    stack.devnet.mint(funded.address, PRICE[route])
    assert stack.devnet.balance(funded.address) == PRICE[route]
    client = sync_client(funded.key.hex())
    headers = [v2_header(client, challenge) for _ in range(10)]
    nonces = [decode(h)["payload"]["authorization"]["nonce"] for h in headers]
    outcomes = [pay(stack, route, h) for h in headers[:5]]
    with ThreadPoolExecutor(max_workers=5) as pool:
        outcomes += list(pool.map(lambda h: pay(stack, route, h), headers[5:]))
    served = [i for i, (status, _) in enumerate(outcomes) if status == 200]
    assert served == [0], outcomes
    assert all(o == (402, "invalid_exact_evm_insufficient_balance") for o in outcomes[1:]), outcomes
    assert len(stack.backend.requests_to("exposure")) == seen_before + 1

    # The one served request is paid on chain; none of the refused authorizations was used.
    wait_for(lambda: stack.devnet.balance(funded.address) == 0, timeout=60, what="the served payment settled")
    assert stack.devnet.authorization_used(funded.address, nonces[0])
    assert not any(stack.devnet.authorization_used(funded.address, n) for n in nonces[1:])
    # Once settled (and after the balance cache and the settled hold), the wallet has nothing left.
    status, reason = pay(stack, route, v2_header(client, challenge))
    assert (status, reason) == (402, "invalid_exact_evm_insufficient_balance")
    decisions = [line for s in stack.sidecars for line in s.log_lines() if "insufficient_balance" in line]
    assert decisions, "refusals are logged with their reason"
