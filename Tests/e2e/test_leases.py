"""Leases end to end through a real nginx, the sidecar and the devnet: buy a lease with the official
x402 client at a lease path, stream SSE and talk WebSocket with it, renew, revoke, run out of
max_requests and max_concurrent, and every bad token refused with its reason, the backend never
called and nothing charged. Every test runs twice, once per integration (`--integration` picks
one): the stock include files (auth_request, nginx/x402/lease.conf) and ngx_http_x402_module
(`x402 ROUTE;`, leases checked in nginx with x402_lease_keys, nginx/module/lease.conf)."""
import base64
import http.client
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

INTEGRATION_PARAMETRIZED = True

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
  clock_skew_seconds: 30
  query_token_routes: [socket]
admin:
  listen: "127.0.0.1:{ADMIN_PORT}"
  token: "{ADMIN_TOKEN}"
"""

STOCK_LOCATIONS = """\
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

# The module checks the token in nginx with the sidecar's key (x402_lease_keys), with the sidecar's
# clock skew; it asks the sidecar about leases with counters on every request, and about the others
# on a worker's first sight and every x402_lease_recheck (revocation).
MODULE_LOCATIONS = """\
        x402_lease_keys {run}/lease.keys;
        x402_lease_clock_skew %(skew)s;
        x402_lease_recheck %(recheck)s;
        location = /lease/pass { set $x402_route pass; include {run}/x402-module/lease.conf; }
        location = /lease/counted { set $x402_route counted; include {run}/x402-module/lease.conf; }
        location = /lease/short { set $x402_route short; include {run}/x402-module/lease.conf; }
        location /stream {
            x402 stream;
            include {run}/x402-module/sse.conf;
            proxy_set_header Host $host;  # the backend context is bound to the client's host
            proxy_pass http://backend;
        }
        location /socket {
            x402 socket;
            include {run}/x402-module/websocket.conf;
            proxy_set_header Host $host;
            proxy_pass http://backend;
        }
        location /metered { x402 metered; proxy_set_header Host $host; proxy_pass http://backend; }
"""


def lease_nginx(run, backend_port, integration, recheck="30s", skew="30s"):
    """nginx with the lease locations of `integration`, in front of the sidecar in `run`; `skew` is
    the module's x402_lease_clock_skew, the sidecar's leases.clock_skew_seconds (30 in TOP)."""
    if integration == "module":
        with open(os.path.join(run, "lease.keys"), "w") as f:
            f.write(KEY_LINE + "\n")
        locations = MODULE_LOCATIONS % {"recheck": recheck, "skew": skew}
    else:
        locations = STOCK_LOCATIONS
    return Nginx(run, backend_port, locations=locations, integration=integration).start()


@pytest.fixture(scope="module")
def leased(devnet, run_root, integration):
    run = os.path.join(run_root, "leases-" + integration)
    backend = Backend()
    sidecar = Sidecar(run, devnet, extra_routes=ROUTES, extra_top=TOP).start()
    nginx = lease_nginx(run, backend.port, integration)

    class Stack:
        pass

    s = Stack()
    s.devnet, s.backend, s.sidecar, s.nginx, s.run = devnet, backend, sidecar, nginx, run
    s.integration = integration
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


def open_sse(nginx, path, token):
    """An SSE stream through `nginx`, open once its head has arrived."""
    sock = socket.create_connection(("127.0.0.1", nginx.port), timeout=15)
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{nginx.port}\r\n"
                  f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n").encode())
    head = sock.recv(4096)
    assert b"200 OK" in head.split(b"\r\n")[0], head
    return sock


def read_to_end(sock):
    while sock.recv(65536):
        pass
    sock.close()


def test_websocket_with_the_token_in_the_query_string_and_never_logged(leased):
    body = buy(leased, "pass").json()
    token = body["token"]
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
    # The sidecar checked this token (the module does not read the query string): the request is
    # still a leased one, logged with its lease and reported when it ends, which gives the
    # WebSocket's concurrency slot back. With one stream open, a second one needs that slot.
    assert [line["lease_id"] for line in logged] == [body["jti"]]
    held = open_sse(leased.nginx, "/stream?events=6&gap=1&ws-slot-held", token)
    try:
        wait_for(lambda: requests.get(leased.nginx.url + "/stream?events=1&gap=0&ws-slot-back",
                                      headers={"Authorization": f"Bearer {token}"}).status_code == 200,
                 timeout=10, what="the WebSocket's slot to be given back")
    finally:
        read_to_end(held)


def test_max_concurrent_is_held_while_streams_are_open_and_released_by_the_report(leased):
    token = buy(leased, "pass").json()["token"]
    socks = [open_sse(leased.nginx, f"/stream?events=3&gap=1&open{n}", token) for n in range(2)]
    third = requests.get(leased.nginx.url + "/stream?events=1&gap=0&third", headers={"Authorization": f"Bearer {token}"})
    assert third.status_code == 429 and third.headers["X-X402-Reason"] == "lease_concurrency_limit"
    assert third.headers["Retry-After"] == "1"
    assert not leased.backend.requests_to("third")
    for sock in socks:
        read_to_end(sock)
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


def twice(stack, path, name, value):
    """A GET with the header `name` sent twice (requests folds duplicates into one)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.nginx.port, timeout=10)
    try:
        conn.putrequest("GET", path)
        conn.putheader(name, value)
        conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def assert_refused(stack, status, headers, reason):
    """A refused lease, as each integration answers it: the stock files relay the sidecar's 402
    with a fresh challenge; the module checks the token itself (x402_lease_keys) and answers 401
    invalid_token with the same reason code, without asking the sidecar (README, "With the module")."""
    assert headers.get("X-X402-Reason") == reason, (reason, status, headers)
    if stack.integration == "module":
        assert status == 401, (reason, status)
        assert f'error="invalid_token", error_description="{reason}"' in headers["WWW-Authenticate"]
    else:
        assert status == 402, (reason, status)
        assert "PAYMENT-REQUIRED" in headers


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
        assert_refused(leased, response.status_code, response.headers, reason)
        assert not leased.backend.requests_to(f"bad={reason}"), reason
    # Two X-X402-Lease headers, even the same valid token twice: which one would count?
    valid = mint(leased)
    status, headers, _ = twice(leased, "/metered?bad=lease_duplicated", "X-X402-Lease", valid)
    assert_refused(leased, status, headers, "lease_duplicated")
    assert not leased.backend.requests_to("bad=lease_duplicated")
    assert leased.devnet.balance(payer_address(leased)) == before
    # The backend's own bearer tokens are not leases: the request is simply asked to pay.
    own = requests.get(leased.nginx.url + "/metered?own-bearer", headers={"Authorization": "Bearer api-key-123"})
    assert own.status_code == 402 and "X-X402-Reason" not in own.headers
    reasons = set(cases) | {"lease_duplicated"}
    # nginx's JSON log has every refusal with its reason, whoever decided it.
    wait_for(lambda: len([line for line in leased.nginx.json_log() if "bad=" in line["uri"]]) == len(reasons),
             what="the refusals in nginx's JSON log")
    logged = {line["uri"].split("bad=")[1]: line for line in leased.nginx.json_log() if "bad=" in line["uri"]}
    assert {uri: line["x402_reason"] for uri, line in logged.items()} == {reason: reason for reason in reasons}
    decisions = [json.loads(line) for line in open(leased.sidecar.log_path) if '"lease_refused"' in line]
    if leased.integration == "module":
        # refused in nginx: the sidecar never saw them
        assert not [d for d in decisions if "bad=" in d.get("uri", "")]
        assert all(f"x402: lease refused: {reason}" in leased.nginx.error_log() for reason in reasons)
    else:
        assert {d["reason"] for d in decisions if "bad=" in d.get("uri", "")} == reasons


def test_a_stream_ends_when_the_sidecar_stops_accepting_its_lease(devnet, run_root, integration):
    """The sidecar with leases.clock_skew_seconds: 2, the module with x402_lease_clock_skew 2s: a
    lease is valid until exp + 2 on both sides, and the module's timer cuts a stream opened with it
    at that instant, when the sidecar starts refusing the lease. Stock nginx checks the lease once,
    when the stream starts: the stream runs on until the backend ends it."""
    run = os.path.join(run_root, "leases-skew-" + integration)
    backend = Backend()
    top = TOP.replace("clock_skew_seconds: 30", "clock_skew_seconds: 2").replace(str(ADMIN_PORT), str(free_port()))
    sidecar = Sidecar(run, devnet, extra_routes=ROUTES, extra_top=top).start()
    nginx = lease_nginx(run, backend.port, integration, skew="2s")

    class Info:
        pass

    stack = Info()
    stack.devnet = devnet

    def sidecar_says(token):
        answer = requests.get(sidecar.url + "/authorize", headers={
            "X-X402-Route": "stream", "X-Forwarded-Host": "127.0.0.1", "X-Request-ID": os.urandom(16).hex(),
            "X-X402-Lease": token})
        return answer.headers["X-X402-Status"], answer.headers.get("X-X402-Reason")

    try:
        exp = int(time.time()) + 2
        token = mint(stack, exp=exp, x402_routes=["stream"])
        ends = exp + 2
        # 12 events half a second apart: about 6 s, ending well after exp + 2
        sock = socket.create_connection(("127.0.0.1", nginx.port), timeout=15)
        sock.sendall((f"GET /stream?events=12&gap=0.5&skewed HTTP/1.1\r\nHost: 127.0.0.1:{nginx.port}\r\n"
                      f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n").encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if time.time() < ends - 0.5:
                assert sidecar_says(token) == ("200", None), "the sidecar admits the lease until exp + skew"
        closed = time.time()
        sock.close()
        assert sidecar_says(token) == ("402", "lease_expired")
        assert b"200 OK" in data.split(b"\r\n")[0], data[:200]
        events = data.count(b"event: tick")
        if integration == "module":
            assert ends - 0.05 <= closed <= ends + 0.8, (closed - ends)
            assert 4 <= events < 12, events
            assert f"x402: lease {jwt.decode(token, options={'verify_signature': False})['jti']} expired" \
                in nginx.error_log()
        else:
            assert closed > ends + 1 and events == 12, (closed - ends, events)
    finally:
        nginx.stop()
        sidecar.stop()
        backend.stop()


def test_the_lease_path_fails_closed_when_the_sidecar_is_down(leased):
    """Sidecar down: the lease path answers 503 with Retry-After (never nginx's 502), as do the
    protected locations, and the backend is never called."""
    counted = mint(leased, x402_max_requests=5)
    leased.sidecar.stop()
    try:
        response = requests.get(leased.nginx.url + "/lease/pass")
        assert response.status_code == 503, (response.status_code, response.text)
        assert response.headers["Retry-After"] == "5" and response.headers["Cache-Control"] == "no-store"
        assert response.json() == {"error": "payment_service_unavailable"}
        protected = requests.get(leased.nginx.url + "/metered?sidecar-down", headers={"X-X402-Lease": counted})
        assert protected.status_code == 503 and protected.headers["Retry-After"] == "5"
        assert not leased.backend.requests_to("sidecar-down")
    finally:
        leased.sidecar.start()
    assert requests.get(leased.nginx.url + "/lease/pass").status_code == 402


def test_two_sidecars_on_one_redis_share_the_lease_limits(devnet, run_root, integration):
    """Two hosts, each an nginx in front of its own sidecar, both sidecars on one Redis: the
    requests alternate between them and max_requests, max_concurrent and a revocation hold across
    them."""
    redis_url = os.environ.get("X402_TEST_REDIS_URL")
    if not redis_url:
        if os.environ.get("X402_REQUIRE_INTEGRATION") == "1":
            pytest.fail("X402_TEST_REDIS_URL is not set")
        pytest.skip("no Redis")
    run = os.path.join(run_root, "leases-redis-" + integration)
    prefix = f"lease{time.time_ns()}"
    admin_ports = [free_port(), free_port()]
    backend = Backend()
    sidecars, hosts = [], []

    class Info:
        pass

    stack = Info()
    stack.devnet = devnet
    try:
        for name, port in zip(("one", "two"), admin_ports):
            sidecar = Sidecar(os.path.join(run, name), devnet, store="redis", redis_url=redis_url, prefix=prefix,
                              extra_routes=ROUTES, extra_top=TOP.replace(str(ADMIN_PORT), str(port)), name=name)
            sidecars.append(sidecar.start())
            # with the module, a lease without counters is asked of the sidecar every second here
            hosts.append(lease_nginx(sidecar.run_dir, backend.port, integration, recheck="1s"))

        def get(index, path, token):
            return requests.get(hosts[index % 2].url + path, headers={"X-X402-Lease": token})

        counted = mint(stack, x402_max_requests=4)
        statuses = [get(n, f"/metered?redis-count={n}", counted).status_code for n in range(7)]
        assert statuses == [200] * 4 + [402] * 3, statuses
        assert get(1, "/metered?redis-count=last", counted).headers["X-X402-Reason"] == "lease_request_limit"
        assert len(backend.requests_to("redis-count=")) == 4

        concurrent = mint(stack, x402_max_concurrent=2, x402_routes=["stream"])
        held = [open_sse(hosts[n], f"/stream?events=4&gap=1&redis-held{n}", concurrent) for n in range(2)]
        try:
            for n in range(2):
                third = get(n, f"/stream?events=1&gap=0&redis-third{n}", concurrent)
                assert third.status_code == 429 and third.headers["X-X402-Reason"] == "lease_concurrency_limit"
            assert not backend.requests_to("redis-third")
        finally:
            for sock in held:
                read_to_end(sock)
        # each nginx reports the end of its stream to its own sidecar; both slots come back
        wait_for(lambda: get(1, "/stream?events=1&gap=0&redis-released", concurrent).status_code == 200,
                 timeout=10, what="the slots to be released")

        revoked = mint(stack)
        assert get(0, "/metered?redis-pre-revoke", revoked).status_code == 200
        jti = jwt.decode(revoked, options={"verify_signature": False})["jti"]
        assert requests.delete(f"http://127.0.0.1:{admin_ports[1]}/admin/lease", params={"jti": jti},
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
        if integration == "module":
            # nginx admitted this lease in process a moment ago: it asks the sidecar again once
            # x402_lease_recheck (1 s) has passed
            time.sleep(1.2)
        refused = get(0, "/metered?redis-post-revoke", revoked)
        assert refused.status_code == 402 and refused.headers["X-X402-Reason"] == "lease_revoked"
        assert not backend.requests_to("redis-post-revoke")
    finally:
        for host in hosts:
            host.stop()
        for sidecar in sidecars:
            sidecar.stop()
        backend.stop()
