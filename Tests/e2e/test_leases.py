"""Leases end to end through a real nginx (stock include files), the sidecar and the devnet: buy a
lease with the official x402 client at a lease path, stream SSE and talk WebSocket with it, renew,
revoke, run out of max_requests and max_concurrent, and every bad token refused with its reason,
the backend never called and nothing charged."""
import base64
import hashlib
import json
import os
import socket
import subprocess
import time

import jwt
import pytest
import requests
from payments import sync_client
from stack import BACKEND_SECRET, SIDECAR_BIN, Backend, Nginx, Sidecar, free_port, verify_context, wait_for
from streaming import CLOSE, TEXT, encode_frame, read_frame
from x402.http.clients import wrapRequestsWithPayment

SECRET = os.urandom(32)
KEY_LINE = "k1 HS256 " + base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode()
ADMIN_TOKEN = "e2e-lease-admin-token-7d2a9c41b5e8f036"
ADMIN_PORT = free_port()

ROUTES = """\
  stream:
    description: "An SSE stream"
    price: "0.01"
  socket:
    description: "A WebSocket"
    price: "0.01"
  metered:
    description: "A JSON API"
    price: "0.01"
  pass:
    description: "An hour of streams"
    price: "0.05"
    lease: {opens: [stream, socket], seconds: 3600, max_concurrent: 2}
  counted:
    description: "Three calls"
    price: "0.02"
    lease: {opens: [metered], seconds: 600, max_requests: 3}
  short:
    description: "A few seconds, renewable"
    price: "0.01"
    lease: {opens: [metered], seconds: 4, renewal_window_seconds: 4}
"""

TOP = f"""leases:
  keys: ["{KEY_LINE}"]
  query_token_routes: [socket]
admin:
  listen: "127.0.0.1:{ADMIN_PORT}"
  token: "{ADMIN_TOKEN}"
"""

LOCATIONS = """\
        location = /lease/pass { set $x402_route pass; include {run}/x402/lease.conf; }
        location = /lease/counted { set $x402_route counted; include {run}/x402/lease.conf; }
        location = /lease/short { set $x402_route short; include {run}/x402/lease.conf; }
        location /stream {
            set $x402_route stream;
            include {run}/x402/protect.conf;
            include {run}/x402/sse.conf;
            proxy_pass http://backend;
        }
        location /socket {
            set $x402_route socket;
            include {run}/x402/protect.conf;
            include {run}/x402/websocket.conf;
            proxy_pass http://backend;
        }
        location /metered { set $x402_route metered; include {run}/x402/protect.conf; proxy_pass http://backend; }
"""


@pytest.fixture(scope="module")
def leased(devnet, run_root):
    run = os.path.join(run_root, "leases")
    backend = Backend()
    sidecar = Sidecar(run, devnet, extra_routes=ROUTES, extra_top=TOP).start()
    nginx = Nginx(run, backend.port, locations=LOCATIONS).start()

    class Stack:
        pass

    s = Stack()
    s.devnet, s.backend, s.sidecar, s.nginx, s.run = devnet, backend, sidecar, nginx, run
    yield s
    nginx.stop()
    sidecar.stop()
    backend.stop()


def buy(stack, lease, payer=2, headers=None):
    key = stack.devnet.info["payers"][payer]["privateKey"]
    session = wrapRequestsWithPayment(requests.Session(), sync_client(key))
    response = session.get(stack.nginx.url + f"/lease/{lease}", headers=headers or {})
    assert response.status_code == 200, (response.status_code, response.text)
    return response


def payer_address(stack, payer=2):
    return stack.devnet.info["payers"][payer]["address"]


def mint(stack, **claims):
    """A token signed with the configured key, as any JWT library would make one."""
    now = int(time.time())
    body = {"iss": "x402-nginx", "sub": payer_address(stack).lower(), "aud": "127.0.0.1", "jti": os.urandom(16).hex(),
            "iat": now, "nbf": now, "exp": now + 600, "x402_routes": ["metered"], "x402_lease": "counted",
            "x402_amount": "20000", "x402_asset": stack.devnet.info["token"].lower(), "x402_network": "eip155:84532",
            "x402_payment_id": os.urandom(16).hex()}
    body.update(claims)
    return jwt.encode(body, SECRET, algorithm="HS256", headers={"kid": "k1"})


def sse_first_event(stack, path, token):
    with socket.create_connection(("127.0.0.1", stack.nginx.port), timeout=15) as sock:
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{stack.nginx.port}\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n").encode())
        data = b""
        while b"event: tick" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        return time.time(), data


def test_the_official_client_buys_a_lease_at_the_lease_path(leased):
    before = leased.devnet.balance(payer_address(leased))
    unpaid = requests.get(leased.nginx.url + "/lease/pass")
    assert unpaid.status_code == 402 and "PAYMENT-REQUIRED" in unpaid.headers
    assert unpaid.json()["accepts"][0]["maxAmountRequired"] == "50000"
    response = buy(leased, "pass")
    body = response.json()
    assert response.headers["X-X402-Lease"] == body["token"] and body["token_type"] == "Bearer"
    assert body["routes"] == ["stream", "socket"] and body["max_concurrent"] == 2 and body["expires_in"] == 3600
    assert "PAYMENT-RESPONSE" in response.headers, "the lease's payment is settled before it is issued"
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"], audience="127.0.0.1")
    assert claims["sub"] == payer_address(leased).lower() and claims["x402_lease"] == "pass"
    assert leased.devnet.balance(payer_address(leased)) == before - 50000
    assert not leased.backend.requests_to("/lease/"), "the backend never sees a lease purchase"


def test_sse_stream_with_a_lease_arrives_event_by_event(leased):
    token = buy(leased, "pass").json()["token"]
    received, data = sse_first_event(leased, "/stream?events=2&gap=1.5&leased-sse", token)
    assert b"200 OK" in data.split(b"\r\n")[0]
    wait_for(lambda: len(leased.backend.requests_to("leased-sse")[-1].get("events", [])) == 2, timeout=10,
             what="the second event")
    first, second = leased.backend.requests_to("leased-sse")[-1]["events"]
    # The backend notes the time just after its write returns, so the client may see it a hair earlier.
    assert first - 0.25 <= received < second, (first, received, second)
    seen = leased.backend.requests_to("leased-sse")[-1]["headers"]
    assert seen["x-x402-payer"] == payer_address(leased).lower() and len(seen["x-x402-lease-id"]) == 32
    record = leased.backend.requests_to("leased-sse")[-1]
    assert record["hmac_ok"] is True and seen["x-x402-context-version"] == "2"
    # The context is bound to the lease too: under another lease's id it does not verify.
    other = dict(seen, **{"x-x402-lease-id": "0" * 32})
    assert verify_context(record["method"], record["path"], other, BACKEND_SECRET) is False


def test_websocket_with_the_token_in_the_query_string_and_never_logged(leased):
    token = buy(leased, "pass").json()["token"]
    with socket.create_connection(("127.0.0.1", leased.nginx.port), timeout=10) as sock:
        sock.sendall((f"GET /socket?x402_lease={token}&leased-ws HTTP/1.1\r\nHost: 127.0.0.1:{leased.nginx.port}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        stream = sock.makefile("rb")
        assert b"101" in stream.readline()
        while stream.readline() not in (b"\r\n", b""):
            pass
        for message in (b"hello", b"again"):
            sock.sendall(encode_frame(TEXT, message, mask=os.urandom(4)))
            assert read_frame(stream) == (TEXT, message)
        sock.sendall(encode_frame(CLOSE, b"\x03\xe8", mask=os.urandom(4)))
        read_frame(stream)
    wait_for(lambda: any("leased-ws" in line.get("uri", "") for line in leased.nginx.json_log()), what="the log line")
    logged = [line for line in leased.nginx.json_log() if "leased-ws" in line.get("uri", "")]
    assert logged and all(token not in json.dumps(line) and "x402_lease=-" in line["uri"] for line in logged)
    assert token not in open(leased.sidecar.log_path).read()


def test_max_concurrent_is_held_while_streams_are_open_and_released_by_the_report(leased):
    token = buy(leased, "pass").json()["token"]
    socks = []
    for n in range(2):
        sock = socket.create_connection(("127.0.0.1", leased.nginx.port), timeout=15)
        sock.sendall((f"GET /stream?events=3&gap=1&open{n} HTTP/1.1\r\nHost: 127.0.0.1:{leased.nginx.port}\r\n"
                      f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n").encode())
        assert b"200 OK" in sock.recv(4096)
        socks.append(sock)
    third = requests.get(leased.nginx.url + "/stream?events=1&gap=0&third", headers={"Authorization": f"Bearer {token}"})
    assert third.status_code == 429 and third.headers["X-X402-Reason"] == "lease_concurrency_limit"
    assert third.headers["Retry-After"] == "1"
    assert not leased.backend.requests_to("third")
    for sock in socks:
        while sock.recv(65536):
            pass
        sock.close()
    # nginx reports the end of each stream; the slots come back.
    wait_for(lambda: requests.get(leased.nginx.url + "/stream?events=1&gap=0&after-release",
                                  headers={"Authorization": f"Bearer {token}"}).status_code == 200,
             timeout=10, what="the slots to be released")


def test_max_requests_runs_out_and_a_new_lease_is_asked_for(leased):
    token = buy(leased, "counted").json()["token"]
    statuses = [requests.get(leased.nginx.url + f"/metered?call={n}", headers={"X-X402-Lease": token}).status_code
                for n in range(4)]
    assert statuses == [200, 200, 200, 402]
    refused = requests.get(leased.nginx.url + "/metered?call=9", headers={"X-X402-Lease": token})
    assert refused.headers["X-X402-Reason"] == "lease_request_limit" and "PAYMENT-REQUIRED" in refused.headers
    assert not leased.backend.requests_to("call=9")


def test_renewal_inside_the_window_extends_and_revokes_the_old_token(leased):
    first = buy(leased, "short").json()
    renewed = buy(leased, "short", headers={"Authorization": f"Bearer {first['token']}"}).json()
    assert renewed["renews"] == first["jti"]
    assert renewed["expires_at"] == first["expires_at"] + 4
    old = requests.get(leased.nginx.url + "/metered?renew-old", headers={"X-X402-Lease": first["token"]})
    assert old.status_code == 402 and old.headers["X-X402-Reason"] == "lease_revoked"
    assert requests.get(leased.nginx.url + "/metered?renew-new",
                        headers={"X-X402-Lease": renewed["token"]}).status_code == 200
    time.sleep(max(0, first["expires_at"] + 1 - time.time()))
    # Past the first lease's end, the successor still runs: it was extended from there.
    assert requests.get(leased.nginx.url + "/metered?renew-later",
                        headers={"X-X402-Lease": renewed["token"]}).status_code == 200


def test_revocation_through_the_admin_cli_refuses_the_next_request(leased):
    body = buy(leased, "pass").json()
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert requests.get(leased.nginx.url + "/stream?events=1&gap=0&pre-revoke", headers=headers).status_code == 200
    result = subprocess.run(
        [SIDECAR_BIN, "admin", "lease", "revoke", "--url", f"http://127.0.0.1:{ADMIN_PORT}", "--jti", body["jti"],
         "--exp", str(body["expires_at"])], capture_output=True, text=True,
        env=dict(os.environ, X402_ADMIN_TOKEN=ADMIN_TOKEN))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["jti"] == body["jti"]
    refused = requests.get(leased.nginx.url + "/stream?events=1&gap=0&post-revoke", headers=headers)
    assert refused.status_code == 402 and refused.headers["X-X402-Reason"] == "lease_revoked"
    assert not leased.backend.requests_to("post-revoke")
    # By payer: every lease of the wallet.
    other = buy(leased, "counted", payer=3).json()
    revoked = requests.delete(f"http://127.0.0.1:{ADMIN_PORT}/admin/lease", params={"payer": payer_address(leased, 3)},
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert revoked.status_code == 200 and revoked.json()["revoked"] >= 1
    after = requests.get(leased.nginx.url + "/metered?payer-revoked", headers={"X-X402-Lease": other["token"]})
    assert after.headers["X-X402-Reason"] == "lease_revoked"


def tampered(token):
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["x402_routes"] = ["metered", "stream"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_bad_tokens_are_refused_with_their_reason_and_nothing_reaches_the_backend(leased):
    now = int(time.time())
    none_token = jwt.encode({"sub": "x"}, None, algorithm="none")
    cases = {
        "lease_bad_signature": tampered(mint(leased)),
        "lease_expired": mint(leased, exp=now - 120, nbf=now - 600, iat=now - 600),
        "lease_not_yet_valid": mint(leased, nbf=now + 300),
        "lease_wrong_route": mint(leased, x402_routes=["stream"]),
        "lease_wrong_host": mint(leased, aud="api.example.com"),
        "lease_unsupported_alg": none_token,
        "lease_malformed": "not-a-token",
        "lease_unknown_key": jwt.encode({"sub": "x"}, SECRET, algorithm="HS256", headers={"kid": "k9"}),
        "lease_wrong_issuer": mint(leased, iss="someone-else"),
    }
    before = leased.devnet.balance(payer_address(leased))
    for reason, token in cases.items():
        response = requests.get(leased.nginx.url + f"/metered?bad={reason}", headers={"X-X402-Lease": token})
        assert response.status_code == 402, (reason, response.status_code)
        assert response.headers["X-X402-Reason"] == reason, (reason, response.headers.get("X-X402-Reason"))
        assert "PAYMENT-REQUIRED" in response.headers
        assert not leased.backend.requests_to(f"bad={reason}"), reason
    assert leased.devnet.balance(payer_address(leased)) == before
    # The backend's own bearer tokens are not leases: the request is simply asked to pay.
    own = requests.get(leased.nginx.url + "/metered?own-bearer", headers={"Authorization": "Bearer api-key-123"})
    assert own.status_code == 402 and "X-X402-Reason" not in own.headers
    decisions = [json.loads(line) for line in open(leased.sidecar.log_path) if '"lease_refused"' in line]
    assert {d["reason"] for d in decisions} >= set(cases)


def test_two_sidecars_on_one_redis_share_the_lease_limits(devnet, run_root):
    redis_url = os.environ.get("X402_TEST_REDIS_URL")
    if not redis_url:
        if os.environ.get("X402_REQUIRE_INTEGRATION") == "1":
            pytest.fail("X402_TEST_REDIS_URL is not set")
        pytest.skip("no Redis")
    run = os.path.join(run_root, "leases-redis")
    prefix = f"lease{time.time_ns()}"
    admin_ports = [free_port(), free_port()]
    sidecars = [Sidecar(os.path.join(run, name), devnet, store="redis", redis_url=redis_url, prefix=prefix,
                        extra_routes=ROUTES, extra_top=TOP.replace(str(ADMIN_PORT), str(port)), name=name).start()
                for name, port in zip(("one", "two"), admin_ports)]

    class Info:
        pass

    stack = Info()
    stack.devnet = devnet
    try:
        def ask(index, token, request_id):
            return requests.get(sidecars[index % 2].url + "/authorize", headers={
                "X-X402-Route": "metered", "X-Forwarded-Host": "127.0.0.1", "X-Request-ID": request_id,
                "X-X402-Lease": token})
        counted = mint(stack, x402_max_requests=4)
        statuses = [ask(n, counted, f"c{n}").headers["X-X402-Status"] for n in range(7)]
        assert statuses == ["200"] * 4 + ["402"] * 3, statuses
        concurrent = mint(stack, x402_max_concurrent=2)
        held = [ask(n, concurrent, f"slot{n}") for n in range(4)]
        assert [r.headers["X-X402-Status"] for r in held] == ["200", "200", "429", "429"]
        assert held[2].headers["X-X402-Reason"] == "lease_concurrency_limit"
        revoked = mint(stack)
        assert ask(0, revoked, "r0").headers["X-X402-Status"] == "200"
        jti = jwt.decode(revoked, options={"verify_signature": False})["jti"]
        assert requests.delete(f"http://127.0.0.1:{admin_ports[1]}/admin/lease", params={"jti": jti},
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
        refused = ask(0, revoked, "r1")
        assert refused.headers["X-X402-Status"] == "402" and refused.headers["X-X402-Reason"] == "lease_revoked"
    finally:
        for sidecar in sidecars:
            sidecar.stop()
