"""nginx's decision cache (server.decision_cache_seconds) end to end, on both integrations: the 402
of an unpaid request and the allow of a lease without counters are kept by nginx for a moment and
answered without asking the sidecar; payments, sign-in, counted leases and rate-limited routes are
always asked; a revocation is in force everywhere once the admin API has answered."""
import base64
import json
import os
import time

import jwt
import pytest
import requests
from payments import sync_client
from stack import Backend, Nginx, Sidecar, free_port
from x402.http.clients import wrapRequestsWithPayment

INTEGRATION_PARAMETRIZED = True

SECRET = os.urandom(32)
KEY_LINE = "c1 HS256 " + base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode()
ADMIN_TOKEN = "e2e-cache-admin-token-5b1e9f0c2d7a4e63"
CACHE_SECONDS = 2

ROUTES = """\
  plain:
    description: "A plain paid route"
    price: "0.01"
  limited:
    description: "Rate limited"
    price: "0.01"
    rate_limits: [{limit: "100/s", key: ip}]
  pass:
    description: "The lease"
    price: "0.05"
    lease: {opens: [plain], seconds: 600}
"""


@pytest.fixture(scope="module")
def cached(devnet, run_root, integration):
    run = os.path.join(run_root, "decision-cache-" + integration)
    admin_port = free_port()
    top = f"""leases:
  keys: ["{KEY_LINE}"]
admin:
  listen: "127.0.0.1:{admin_port}"
  token: "{ADMIN_TOKEN}"
"""
    backend = Backend()
    sidecar = Sidecar(run, devnet, extra_routes=ROUTES, extra_top=top,
                      server_extra=f"  decision_cache_seconds: {CACHE_SECONDS}\n").start()
    nginx = Nginx(run, backend.port, routes=("plain", "limited"), integration=integration).start()

    class Stack:
        pass

    s = Stack()
    s.devnet, s.backend, s.sidecar, s.nginx, s.admin_port = devnet, backend, sidecar, nginx, admin_port
    yield s
    nginx.stop()
    sidecar.stop()
    backend.stop()


def decisions(stack, route):
    """The sidecar's decision log lines for `route`."""
    lines = []
    for line in stack.sidecar.log_lines():
        if '"event":"decision"' in line:
            entry = json.loads(line)
            if entry.get("route") == route:
                lines.append(entry)
    return lines


def lease(stack, max_requests=None):
    now = int(time.time())
    claims = {"iss": "x402-nginx", "sub": stack.devnet.info["payers"][6]["address"].lower(), "aud": "127.0.0.1",
              "jti": os.urandom(16).hex(), "iat": now, "nbf": now, "exp": now + 600, "x402_routes": ["plain"],
              "x402_lease": "pass", "x402_amount": "50000", "x402_asset": stack.devnet.info["token"].lower(),
              "x402_network": "eip155:84532", "x402_payment_id": os.urandom(16).hex()}
    if max_requests:
        claims["x402_max_requests"] = max_requests
    return claims["jti"], jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "c1"})


def test_a_repeated_unpaid_request_is_answered_by_nginx_until_the_answer_expires(cached):
    url = cached.nginx.url + "/plain?cache=unpaid"
    before = len(decisions(cached, "plain"))
    first, second = requests.get(url), requests.get(url)
    assert first.status_code == second.status_code == 402
    assert first.headers["PAYMENT-REQUIRED"] == second.headers["PAYMENT-REQUIRED"]
    assert first.json() == second.json() and first.json()["x402Version"] == 1
    assert first.headers["Cache-Control"] == second.headers["Cache-Control"] == "no-store"
    assert len(decisions(cached, "plain")) == before + 1, "the second 402 came from nginx's cache"
    # Another URL is another answer (its resource.url differs).
    other = requests.get(cached.nginx.url + "/plain?cache=other")
    assert other.status_code == 402 and other.headers["PAYMENT-REQUIRED"] != first.headers["PAYMENT-REQUIRED"]
    assert len(decisions(cached, "plain")) == before + 2
    time.sleep(CACHE_SECONDS + 1.5)  # nginx keeps it through the second it expires in
    assert requests.get(url).status_code == 402
    assert len(decisions(cached, "plain")) == before + 3, "an expired answer is asked for again"
    assert not [r for r in cached.backend.seen if "cache=" in r["path"]], "no unpaid request reached the backend"


def test_a_payment_is_never_answered_from_the_cache(cached):
    url = cached.nginx.url + "/plain?cache=paid"
    assert requests.get(url).status_code == 402  # now cached for this URL
    key = cached.devnet.info["payers"][6]["privateKey"]
    balance = cached.devnet.balance(cached.devnet.info["payTo"]["address"])
    session = wrapRequestsWithPayment(requests.Session(), sync_client(key))
    paid = session.get(url)
    assert paid.status_code == 200, paid.text
    header = paid.request.headers["PAYMENT-SIGNATURE"]
    replayed = requests.get(url, headers={"PAYMENT-SIGNATURE": header})
    assert replayed.status_code == 402
    assert replayed.headers["X-X402-Reason"] == "invalid_exact_evm_nonce_already_used"
    assert len(cached.backend.requests_to("cache=paid")) == 1
    deadline = time.time() + 30
    while cached.devnet.balance(cached.devnet.info["payTo"]["address"]) != balance + 10000:
        assert time.time() < deadline, "the one served payment settles"
        time.sleep(0.5)


def test_rate_limited_routes_are_always_asked(cached):
    before = len(decisions(cached, "limited"))
    for _ in range(3):
        assert requests.get(cached.nginx.url + "/limited?cache=limited").status_code == 402
    assert len(decisions(cached, "limited")) == before + 3


def test_a_lease_without_counters_is_kept_and_its_revocation_waits_out_the_cache(cached):
    jti, token = lease(cached)
    url = cached.nginx.url + "/plain?cache=lease"
    before = len(decisions(cached, "plain"))
    for _ in range(3):
        assert requests.get(url, headers={"X-X402-Lease": token}).status_code == 200
    assert len(decisions(cached, "plain")) == before + 1
    assert len(cached.backend.requests_to("cache=lease")) == 3
    seen = cached.backend.requests_to("cache=lease")[-1]["headers"]
    assert seen["x-x402-lease-id"] == jti and "x-x402-lease" not in seen
    started = time.time()
    revoked = requests.delete(f"http://127.0.0.1:{cached.admin_port}/admin/lease", params={"jti": jti},
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    assert revoked.status_code == 200, revoked.text
    assert time.time() - started >= CACHE_SECONDS + 1, "the admin API answers once nginx's copies are gone"
    refused = requests.get(url, headers={"X-X402-Lease": token})
    assert refused.status_code == 402 and refused.headers["X-X402-Reason"] == "lease_revoked"
    assert len(cached.backend.requests_to("cache=lease")) == 3


def test_a_counted_lease_is_asked_every_time(cached):
    _, token = lease(cached, max_requests=2)
    url = cached.nginx.url + "/plain?cache=counted"
    answers = [requests.get(url, headers={"X-X402-Lease": token}).status_code for _ in range(3)]
    assert answers == [200, 200, 402]
    assert len(cached.backend.requests_to("cache=counted")) == 2
