"""Sign-In-With-X end to end through a real nginx: the official x402 client (httpx, v2) with the
SDK's sign-in-with-x extension registered pays once, then gets the route again by signing in —
the devnet's balances prove there was no second payment — and replayed, tampered, foreign and
unpaid proofs are refused with their reasons."""
import asyncio
import base64
import json
import os

import httpx
import pytest
import requests
from eth_account import Account
from payments import async_client
from stack import Backend, Nginx, Sidecar
from x402.extensions.sign_in_with_x import CreateSIWxClientExtensionOptions, create_siwx_client_extension
from x402.http.clients.httpx import x402AsyncTransport

ROUTES = """\
  members:
    description: "Pay once, come back for ten minutes"
    price: "0.01"
    settlement: before
    sign_in_with_x: {access_seconds: 600, statement: "Sign in to read the members' page"}
"""
TOP = """sign_in_with_x:
  nonce_secret: "%s"
""" % os.urandom(32).hex()


@pytest.fixture(scope="module")
def signin(devnet, run_root):
    run = os.path.join(run_root, "siwx")
    backend = Backend()
    sidecar = Sidecar(run, devnet, extra_routes=ROUTES, extra_top=TOP).start()
    nginx = Nginx(run, backend.port, routes=("members",)).start()

    class Stack:
        pass

    s = Stack()
    s.devnet, s.backend, s.sidecar, s.nginx = devnet, backend, sidecar, nginx
    yield s
    nginx.stop()
    sidecar.stop()
    backend.stop()


def siwx_client(key):
    client = async_client(key)
    client.register_extension(create_siwx_client_extension(CreateSIWxClientExtensionOptions(
        signers=[Account.from_key(key)])))
    return client


class Recorder(httpx.AsyncBaseTransport):
    """Keeps every request the client sends (to capture a proof it made)."""

    def __init__(self):
        self.inner = httpx.AsyncHTTPTransport()
        self.sent = []

    async def handle_async_request(self, request):
        self.sent.append(dict(request.headers))
        return await self.inner.handle_async_request(request)


def get(key, url):
    recorder = Recorder()

    async def go():
        async with httpx.AsyncClient(transport=x402AsyncTransport(siwx_client(key), transport=recorder)) as client:
            return await client.get(url)

    return asyncio.run(go()), recorder.sent


def proof_of(sent):
    return next(headers["sign-in-with-x"] for headers in sent if "sign-in-with-x" in headers)


def test_the_402_declares_sign_in_with_x_for_the_client_visible_origin(signin):
    response = requests.get(signin.nginx.url + "/members?page=1")
    assert response.status_code == 402
    required = json.loads(base64.b64decode(response.headers["PAYMENT-REQUIRED"]))
    info = required["extensions"]["sign-in-with-x"]["info"]
    assert info["domain"] == f"127.0.0.1:{signin.nginx.port}"
    assert info["uri"] == signin.nginx.url + "/members?page=1"
    assert info["statement"] == "Sign in to read the members' page" and len(info["nonce"]) == 32
    assert required["extensions"]["sign-in-with-x"]["supportedChains"] == [{"chainId": "eip155:84532", "type": "eip191"}]


def test_pay_once_then_sign_in_without_paying_again(signin):
    account = signin.devnet.info["payers"][4]
    url = signin.nginx.url + "/members"
    before = signin.devnet.balance(account["address"])
    first, sent = get(account["privateKey"], url)
    assert first.status_code == 200, first.text
    # The client tried to sign in first (no payment yet: refused), then paid.
    assert any("sign-in-with-x" in headers for headers in sent)
    assert any("payment-signature" in headers for headers in sent)
    wait = signin.devnet.balance(account["address"])
    second, sent_again = get(account["privateKey"], url)
    assert second.status_code == 200, second.text
    assert not any("payment-signature" in headers for headers in sent_again), "signed in: no second payment"
    seen = signin.backend.requests_to("/members")[-1]["headers"]
    assert seen["x-x402-payer"] == account["address"].lower() and "sign-in-with-x" not in seen
    assert wait == before - 10000, "settled before the first answer"
    assert signin.devnet.balance(account["address"]) == before - 10000, "exactly one payment"

    # The proof the client just sent cannot be used again.
    replay = requests.get(url, headers={"SIGN-IN-WITH-X": proof_of(sent_again)})
    assert replay.status_code == 402 and replay.headers["X-X402-Reason"] == "siwx_nonce_used"


def test_bad_proofs_are_refused_with_their_reason(signin):
    account = signin.devnet.info["payers"][4]
    url = signin.nginx.url + "/members?bad"
    _, sent = get(account["privateKey"], url)
    proof = json.loads(base64.b64decode(proof_of(sent)))
    served = len(signin.backend.requests_to("?bad"))

    def send(edit):
        edited = dict(proof)
        edit(edited)
        header = base64.b64encode(json.dumps(edited).encode()).decode()
        return requests.get(url, headers={"SIGN-IN-WITH-X": header})

    cases = {
        "siwx_wrong_domain": lambda p: p.update(domain="evil.example.com"),
        "siwx_wrong_uri": lambda p: p.update(uri="http://evil.example.com/members"),
        "siwx_bad_signature": lambda p: p.update(signature="0x" + "11" * 65),
        "siwx_unsupported_chain": lambda p: p.update(chainId="eip155:1"),
    }
    for reason, edit in cases.items():
        response = send(edit)
        assert response.status_code == 402 and response.headers["X-X402-Reason"] == reason, (reason, response.headers)
    garbage = requests.get(url, headers={"SIGN-IN-WITH-X": "not base64 json"})
    assert garbage.headers["X-X402-Reason"] == "siwx_malformed"
    assert len(signin.backend.requests_to("?bad")) == served, "no bad proof reached the backend"


def test_a_wallet_that_never_paid_is_asked_to_pay(signin):
    stranger = Account.create()
    response, sent = get(stranger.key.hex(), signin.nginx.url + "/members?stranger")
    # The stranger's client signs in, is refused (never paid), tries to pay and cannot: the route
    # settles before it serves, and the wallet holds no USDC.
    assert any("sign-in-with-x" in headers for headers in sent)
    assert response.status_code == 402
    proof = proof_of(sent)
    again = requests.get(signin.nginx.url + "/members?stranger", headers={"SIGN-IN-WITH-X": proof})
    assert again.status_code == 402
    assert not signin.backend.requests_to("stranger")
    reasons = [json.loads(line).get("reason") for line in open(signin.sidecar.log_path)
               if '"sign_in_refused"' in line]
    assert "siwx_not_paid" in reasons


def test_a_payment_that_changes_the_declared_extension_is_refused(signin):
    from payments import sync_client
    from x402.http.utils import decode_payment_required_header
    account = signin.devnet.info["payers"][5]
    url = signin.nginx.url + "/members?echo"
    challenge = requests.get(url)
    payload = sync_client(account["privateKey"]).create_payment_payload(
        decode_payment_required_header(challenge.headers["PAYMENT-REQUIRED"]))
    document = json.loads(payload.model_dump_json(by_alias=True, exclude_none=True))
    assert "sign-in-with-x" in document["extensions"], "the official client echoes what we declared"
    document["extensions"]["sign-in-with-x"]["info"]["domain"] = "evil.example.com"
    header = base64.b64encode(json.dumps(document).encode()).decode()
    before = signin.devnet.balance(account["address"])
    refused = requests.get(url, headers={"PAYMENT-SIGNATURE": header})
    assert refused.status_code == 402 and refused.headers["X-X402-Reason"] == "extension_echo_mismatch"
    assert not signin.backend.requests_to("?echo") and signin.devnet.balance(account["address"]) == before
