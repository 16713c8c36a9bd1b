"""End to end through a real nginx, the sidecar binary, the devnet, and the official x402 Python
client as the payer. Every test that uses `stack` runs twice, once per integration: the stock
include files (auth_request, nginx/x402/) and ngx_http_x402_module (`x402 ROUTE;`, nginx/module/);
`--integration stock|module` picks one."""
import asyncio
import os
import shutil
import subprocess
import time

import requests
from payments import async_client, decode, encode, sync_client, v1_header, v2_header
from stack import NGINX_BIN, render_includes, wait_for
from x402.http.clients import wrapRequestsWithPayment
from x402.http.clients.httpx import x402HttpxClient

INTEGRATION_PARAMETRIZED = True

PRICE = {"weather": 10000, "before": 20000, "after": 30000, "facilitated": 40000}


def payer(stack, index):
    account = stack.devnet.info["payers"][index]
    return account["address"], account["privateKey"]


def pay_to(stack):
    return stack.devnet.info["payTo"]["address"]


def test_unpaid_request_gets_402_with_both_challenges(stack):
    before = len(stack.backend.seen)
    response = requests.get(stack.nginx.url + "/weather?city=Paris")
    assert response.status_code == 402
    assert response.headers["Cache-Control"] == "no-store"
    assert "PAYMENT-REQUIRED" in response.headers["Access-Control-Expose-Headers"]
    required = decode(response.headers["PAYMENT-REQUIRED"])
    assert required["x402Version"] == 2
    assert required["resource"]["url"] == f"http://127.0.0.1:{stack.nginx.port}/weather?city=Paris"
    assert required["accepts"][0]["amount"] == "10000"
    assert required["accepts"][0]["network"] == "eip155:84532"
    body = response.json()
    assert body["x402Version"] == 1 and body["accepts"][0]["network"] == "base-sepolia"
    assert body["accepts"][0]["maxAmountRequired"] == "10000"
    assert len(stack.backend.seen) == before, "the backend must not be called for an unpaid request"


def test_paid_with_requests_client_backend_sees_verified_context(stack):
    address, key = payer(stack, 0)
    before = stack.devnet.balance(pay_to(stack))
    session = wrapRequestsWithPayment(requests.Session(), sync_client(key))
    forged = {"X-X402-Payer": "0x000000000000000000000000000000000000dEaD", "X-X402-Free": "1",
              "X-X402-Transaction": "0xforged", "X-X402-Signature": "forged", "X-X402-Version": "9",
              "X-X402-Lease": "forged", "X-X402-Via": "forged", "X-X402-Context-Version": "1"}
    response = session.get(stack.nginx.url + "/weather?flavour=requests", headers=forged)
    assert response.status_code == 200, response.text
    seen = stack.backend.requests_to("flavour=requests")[-1]["headers"]
    assert seen["x-x402-payer"] == address.lower(), "a client-sent X-X402-Payer must never reach the backend"
    assert seen["x-x402-amount"] == "10000"
    assert seen["x-x402-network"] == "eip155:84532"
    assert len(seen["x-x402-payment-id"]) == 32
    assert "payment-signature" not in seen and "x-payment" not in seen
    for name in ("x-x402-free", "x-x402-transaction", "x-x402-lease", "x-x402-via"):
        assert seen.get(name, "") == "", f"client-sent {name} reached the backend"
    assert seen["x-x402-version"] == "2" and seen["x-x402-signature"] != "forged"
    assert seen["x-x402-context-version"] == "2", "a client cannot claim the unbound context version"
    assert stack.backend.requests_to("flavour=requests")[-1]["hmac_ok"] is True
    assert response.json()["context_verified"] is True
    # deferred: settled on chain shortly after
    wait_for(lambda: stack.devnet.balance(pay_to(stack)) == before + PRICE["weather"], timeout=30,
             what="deferred settlement on chain")


def test_paid_with_httpx_client(stack):
    _, key = payer(stack, 1)

    async def go():
        async with x402HttpxClient(async_client(key)) as client:
            return await client.get(stack.nginx.url + "/weather?flavour=httpx")

    response = asyncio.run(go())
    assert response.status_code == 200, response.text
    assert stack.backend.requests_to("flavour=httpx")[-1]["hmac_ok"] is True


def test_v1_payment_in_x_payment(stack):
    address, key = payer(stack, 2)
    challenge = requests.get(stack.nginx.url + "/weather?flavour=v1")
    response = requests.get(stack.nginx.url + "/weather?flavour=v1",
                            headers={"X-PAYMENT": v1_header(sync_client(key), challenge)})
    assert response.status_code == 200, response.text
    seen = stack.backend.requests_to("flavour=v1")[-1]["headers"]
    assert seen["x-x402-payer"] == address.lower() and seen["x-x402-version"] == "1"
    assert "x-payment" not in seen


def test_replayed_header_is_refused_with_used_nonce(stack):
    _, key = payer(stack, 3)
    client = sync_client(key)
    challenge = requests.get(stack.nginx.url + "/weather?replay")
    header = v2_header(client, challenge)
    first = requests.get(stack.nginx.url + "/weather?replay", headers={"PAYMENT-SIGNATURE": header})
    assert first.status_code == 200
    calls = len(stack.backend.requests_to("replay"))
    again = requests.get(stack.nginx.url + "/weather?replay", headers={"PAYMENT-SIGNATURE": header})
    assert again.status_code == 402
    assert again.headers["X-X402-Reason"] == "invalid_exact_evm_nonce_already_used"
    assert decode(again.headers["PAYMENT-REQUIRED"])["error"] == "invalid_exact_evm_nonce_already_used"
    assert len(stack.backend.requests_to("replay")) == calls


def refused(stack, header, path="/weather?bad"):
    calls = len(stack.backend.requests_to(path.split("?")[1]))
    response = requests.get(stack.nginx.url + path, headers={"PAYMENT-SIGNATURE": header})
    assert response.status_code == 402, response.text
    assert len(stack.backend.requests_to(path.split("?")[1])) == calls
    return response.headers.get("X-X402-Reason")


def test_bad_payments_get_the_right_reason(stack):
    _, key = payer(stack, 4)
    client = sync_client(key)
    challenge = requests.get(stack.nginx.url + "/weather?bad")

    tampered = decode(v2_header(client, challenge))
    tampered["payload"]["authorization"]["nonce"] = "0x" + "ab" * 32
    assert refused(stack, encode(tampered)) == "invalid_exact_evm_payload_signature"

    expired = decode(v2_header(client, challenge))
    expired["payload"]["authorization"]["validBefore"] = str(int(time.time()) - 5)
    assert refused(stack, encode(expired)) == "invalid_exact_evm_payload_authorization_valid_before"

    def other_pay_to(requirement):
        requirement.pay_to = "0x000000000000000000000000000000000000bEEF"

    assert refused(stack, v2_header(client, challenge, other_pay_to)) == "invalid_exact_evm_payload_recipient_mismatch"

    def other_network(requirement):
        requirement.network = "eip155:8453"

    assert refused(stack, v2_header(client, challenge, other_network)) == "network_mismatch"

    assert refused(stack, "not base64!") == "invalid_payload"
    # Oversized: nginx's own header limit answers 400 before anything else runs.
    calls = len(stack.backend.seen)
    huge = requests.get(stack.nginx.url + "/weather?bad", headers={"PAYMENT-SIGNATURE": "A" * 9000})
    assert huge.status_code == 400 and len(stack.backend.seen) == calls


def test_settle_before_returns_payment_response(stack):
    address, key = payer(stack, 5)
    before = stack.devnet.balance(address)
    session = wrapRequestsWithPayment(requests.Session(), sync_client(key))
    response = session.get(stack.nginx.url + "/before")
    assert response.status_code == 200, response.text
    settled = decode(response.headers["PAYMENT-RESPONSE"])
    assert settled["success"] is True and settled["transaction"].startswith("0x")
    assert settled["network"] == "eip155:84532"
    assert stack.devnet.balance(address) == before - PRICE["before"]
    receipt = stack.devnet.rpc("eth_getTransactionReceipt", [settled["transaction"]])
    assert int(receipt["status"], 16) == 1
    assert stack.backend.requests_to("/before")[-1]["headers"]["x-x402-transaction"] == settled["transaction"]


def test_settle_before_through_the_facilitator(stack):
    address, key = payer(stack, 6)
    before = stack.devnet.balance(address)
    session = wrapRequestsWithPayment(requests.Session(), sync_client(key))
    response = session.get(stack.nginx.url + "/facilitated")
    assert response.status_code == 200, response.text
    assert decode(response.headers["PAYMENT-RESPONSE"])["success"] is True
    assert stack.devnet.balance(address) == before - PRICE["facilitated"]


def test_settle_after_charges_on_success_and_releases_on_upstream_failure(stack):
    address, key = payer(stack, 7)
    client = sync_client(key)
    start = stack.devnet.balance(address)

    challenge = requests.get(stack.nginx.url + "/after/fail")
    failing = v2_header(client, challenge)
    response = requests.get(stack.nginx.url + "/after/fail", headers={"PAYMENT-SIGNATURE": failing})
    assert response.status_code == 500  # the backend's own error, passed through
    # nginx reports the 500 after the response; the reservation is released, nothing is charged
    wait_for(lambda: any("released" in line and "upstream failed" in line for line in stack.sidecar.log_lines()),
             timeout=10, what="the release")
    again = requests.get(stack.nginx.url + "/after/fail", headers={"PAYMENT-SIGNATURE": failing})
    assert again.status_code == 500, "a released authorization may be presented again"

    session = wrapRequestsWithPayment(requests.Session(), client)
    assert session.get(stack.nginx.url + "/after/ok").status_code == 200
    wait_for(lambda: stack.devnet.balance(address) == start - PRICE["after"], timeout=30, what="after settlement")
    time.sleep(6)  # past the report timeout: the failed ones must still not be charged
    assert stack.devnet.balance(address) == start - PRICE["after"]


def test_settle_after_with_the_backend_down_answers_502_and_charges_nothing(stack):
    """nginx's own 502 (backend unreachable) is the backend's failure, not the payment path's: the
    client sees 502, and the report releases the authorization instead of the report timeout
    settling it."""
    address, key = payer(stack, 7)
    client = sync_client(key)
    start = stack.devnet.balance(address)
    challenge = requests.get(stack.nginx.url + "/after-down")
    assert challenge.status_code == 402
    header = v2_header(client, challenge)
    nonce = decode(header)["payload"]["authorization"]["nonce"]
    response = requests.get(stack.nginx.url + "/after-down", headers={"PAYMENT-SIGNATURE": header})
    assert response.status_code == 502, response.text
    wait_for(lambda: any("released" in line and "upstream failed" in line and "502" in line
                         for line in stack.sidecar.log_lines()), timeout=10, what="the release after a 502")
    time.sleep(6)  # past the report timeout (5 s, policy settle): still nothing charged
    assert stack.devnet.balance(address) == start
    assert not stack.devnet.authorization_used(address, nonce)
    entry = [e for e in stack.nginx.json_log() if e["uri"] == "/after-down" and e["status"] == 502][-1]
    assert entry["payment_id"] and entry["upstream_status"].startswith("502")


def test_verify_both_asks_the_facilitator_which_refuses_an_unfunded_payer(stack):
    poor = stack.devnet.info["poorPayer"]
    client = sync_client(poor["privateKey"])
    challenge = requests.get(stack.nginx.url + "/checked?poor")
    header = v2_header(client, challenge)
    # Our verifier alone accepts it (the signature is fine); the facilitator knows the balance.
    response = requests.get(stack.nginx.url + "/checked?poor", headers={"PAYMENT-SIGNATURE": header})
    assert response.status_code == 402
    assert response.headers["X-X402-Reason"] == "invalid_exact_evm_insufficient_balance"
    assert stack.backend.requests_to("checked?poor") == []
    # A funded payer passes both.
    _, key = payer(stack, 1)
    session = wrapRequestsWithPayment(requests.Session(), sync_client(key))
    assert session.get(stack.nginx.url + "/checked?funded").status_code == 200


def test_sidecar_down_fails_closed_with_503(stack):
    _, key = payer(stack, 0)
    challenge = requests.get(stack.nginx.url + "/weather?down")
    header = v2_header(sync_client(key), challenge)
    stack.sidecar.stop()
    try:
        response = requests.get(stack.nginx.url + "/weather?down", headers={"PAYMENT-SIGNATURE": header})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert stack.backend.requests_to("down") == []
    finally:
        stack.sidecar.start()
    assert requests.get(stack.nginx.url + "/weather?down", headers={"PAYMENT-SIGNATURE": header}).status_code == 200


def test_json_access_log_has_the_payment(stack):
    entries = [e for e in stack.nginx.json_log() if e["route"] == "before" and e["status"] == 200]
    assert entries, "no x402_json line for the paid /before request"
    entry = entries[-1]
    assert entry["payer"].startswith("0x") and entry["amount"] == "20000"
    assert entry["transaction"].startswith("0x") and entry["upstream_status"] == "200"


def test_json_access_log_has_challenges_and_refusals(stack):
    """A 402 ends in a named location, not the protected one: it must still reach the x402 log,
    with the sidecar's reason."""
    marker = "logcheck=%d" % time.time_ns()
    assert requests.get(stack.nginx.url + "/weather?" + marker).status_code == 402
    bad = requests.get(stack.nginx.url + "/weather?" + marker + "&bad", headers={"X-PAYMENT": "e30="})
    assert bad.status_code == 402
    def both_lines():
        found = [e for e in stack.nginx.json_log() if marker in e["uri"]]
        return found if len(found) == 2 else None

    # nginx writes the line in its log phase, which may come just after the client has the answer.
    entries = wait_for(both_lines, timeout=5, what="x402_json lines for both 402s")
    by_uri = {e["uri"]: e for e in entries}
    plain = by_uri["/weather?" + marker]
    assert plain["status"] == 402 and plain["route"] == "weather" and plain["x402_status"] == "402"
    assert plain["x402_reason"] == "" and plain["payer"] == ""
    refused = by_uri["/weather?" + marker + "&bad"]
    assert refused["status"] == 402 and refused["x402_reason"] == "invalid_payload"


def test_snippets_pass_nginx_t_in_debian_layout(tmp_path):
    """Our files included into a copy of Debian's /etc/nginx, checked with nginx -t."""
    if not os.path.exists("/etc/nginx/nginx.conf"):
        import pytest
        pytest.skip("no /etc/nginx")
    prefix = str(tmp_path / "etc-nginx")
    shutil.copytree("/etc/nginx", prefix, symlinks=False)
    render_includes(prefix)
    for name in ("nginx.conf", "sites-enabled/default"):
        path = os.path.join(prefix, name)
        with open(path) as f:
            text = f.read().replace("/etc/nginx/", prefix + "/")
        if name == "sites-enabled/default":
            text = text.replace("server_name _;", "server_name _;\n\tinclude %s/x402/server.conf;\n"
                                "\tlocation /api/weather {\n\t\tset $x402_route weather;\n"
                                "\t\tinclude %s/x402/protect.conf;\n\t\tproxy_pass http://127.0.0.1:9;\n\t}\n"
                                % (prefix, prefix), 1)
        with open(path, "w") as f:
            f.write(text)
    with open(os.path.join(prefix, "conf.d", "x402.conf"), "w") as f:
        f.write(f"include {prefix}/x402/http.conf;\n")
    result = subprocess.run([NGINX_BIN, "-t", "-c", os.path.join(prefix, "nginx.conf"), "-p", prefix],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
