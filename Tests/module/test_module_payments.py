"""ngx_http_x402_module in one round trip, against the real sidecar and devnet: the answers nginx
sends itself (402, 429, 503), the backend never reached on a refusal, headers stripped by prefix,
settlement `before` (PAYMENT-RESPONSE, X-PAYMENT-RESPONSE for v1), broken sidecar answers,
configuration errors, reload. The official client (v1 and v2, requests and httpx), replays, bad
payments, `after` settlement driven by the module's report and the backend-down case run in
Tests/e2e/test_nginx.py, once per integration (stock include files and this module)."""
import os
import subprocess

import pytest
import requests
from harness import VALGRIND, FakeSidecar, ModuleNginx, raw_get
from payments import decode, sync_client, v1_header, v2_header
from stack import NGINX_BIN, wait_for
from x402.http.clients import wrapRequestsWithPayment

PRICE = {"weather": 10000, "before": 20000, "after": 30000}


def payer(stack, index):
    account = stack.devnet.info["payers"][index]
    return account["address"], account["privateKey"]


def calls(stack, fragment):
    return len(stack.backend.requests_to(fragment))


def test_unpaid_gets_402_with_both_challenges_and_no_backend_call(stack):
    response = raw_get(stack.nginx, "/weather?city=Paris")
    assert response.status == 402
    assert response.header("Content-Type") == "application/json"
    assert response.header("Cache-Control") == "no-store"
    assert "PAYMENT-REQUIRED" in response.header("Access-Control-Expose-Headers")
    required = decode(response.header("PAYMENT-REQUIRED"))
    assert required["x402Version"] == 2
    assert required["resource"]["url"] == f"http://127.0.0.1:{stack.nginx.port}/weather?city=Paris"
    assert required["accepts"][0]["amount"] == "10000"
    body = response.json()
    assert body["x402Version"] == 1 and body["accepts"][0]["maxAmountRequired"] == "10000"
    assert int(response.header("Content-Length")) == len(response.body)
    assert calls(stack, "city=Paris") == 0
    # No named location, no error_page: nginx's own 402 page never appears.
    assert b"<html>" not in response.body


def test_route_from_a_variable(stack):
    response = raw_get(stack.nginx, "/r/before?variable")
    assert response.status == 402
    assert decode(response.header("PAYMENT-REQUIRED"))["accepts"][0]["amount"] == "20000"
    unknown = raw_get(stack.nginx, "/r/nosuchroute")
    assert unknown.status == 500 and unknown.json() == {"error": "x402_misconfigured"}
    assert calls(stack, "/r/") == 0


def test_x402_off_is_unprotected(stack):
    assert raw_get(stack.nginx, "/off?plain").status == 200
    assert calls(stack, "/off?plain") == 1


def test_rate_limited_gets_429_with_retry_after(stack):
    statuses = [raw_get(stack.nginx, "/slow?n=%d" % i) for i in range(3)]
    assert [r.status for r in statuses[:2]] == [402, 402]
    limited = statuses[2]
    assert limited.status == 429
    assert int(limited.header("Retry-After")) > 0
    assert limited.header("RateLimit-Policy").startswith('"')
    assert limited.header("RateLimit") is not None
    assert limited.header("X-X402-Reason") == "rate_limited"
    assert limited.json() == {"error": "rate_limited", "reason": "rate_limited"}
    assert calls(stack, "/slow") == 0


def test_paid_with_requests_client_headers_stripped_by_prefix(stack):
    address, key = payer(stack, 0)
    session = wrapRequestsWithPayment(requests.Session(), sync_client(key))
    forged = {"X-X402-Payer": "0x000000000000000000000000000000000000dEaD", "X-X402-Free": "1",
              "X-X402-Transaction": "0xforged", "X-X402-Signature": "forged", "X-X402-Version": "9",
              "X-X402-Lease": "forged", "X-X402-Anything-New": "forged", "x-x402-lowercase": "forged",
              "SIGN-IN-WITH-X": "forged", "X-Keep-Me": "kept"}
    response = session.get(stack.nginx.url + "/weather?flavour=requests", headers=forged)
    assert response.status_code == 200, response.text
    seen = stack.backend.requests_to("flavour=requests")[-1]["headers"]
    assert seen["x-x402-payer"] == address.lower()
    assert seen["x-x402-amount"] == "10000" and seen["x-x402-network"] == "eip155:84532"
    assert len(seen["x-x402-payment-id"]) == 32 and seen["x-x402-version"] == "2"
    for name in ("payment-signature", "x-payment", "sign-in-with-x", "x-x402-free", "x-x402-transaction",
                 "x-x402-lease", "x-x402-anything-new", "x-x402-lowercase", "x-x402-status"):
        assert name not in seen, f"client-sent {name} reached the backend"
    assert seen["x-keep-me"] == "kept"
    assert stack.backend.requests_to("flavour=requests")[-1]["hmac_ok"] is True
    assert "PAYMENT-RESPONSE" in response.headers["Access-Control-Expose-Headers"]


def test_replay_is_refused_without_backend_call(stack):
    _, key = payer(stack, 3)
    challenge = requests.get(stack.nginx.url + "/weather?replay")
    header = v2_header(sync_client(key), challenge)
    assert requests.get(stack.nginx.url + "/weather?replay", headers={"PAYMENT-SIGNATURE": header}).status_code == 200
    again = raw_get(stack.nginx, "/weather?replay", [("PAYMENT-SIGNATURE", header)])
    assert again.status == 402
    assert again.header("X-X402-Reason") == "invalid_exact_evm_nonce_already_used"
    assert calls(stack, "replay") == 1
    garbage = raw_get(stack.nginx, "/weather?garbage", [("PAYMENT-SIGNATURE", "not base64!")])
    assert garbage.status == 402 and garbage.header("X-X402-Reason") == "invalid_payload"
    twice = raw_get(stack.nginx, "/weather?twice", [("PAYMENT-SIGNATURE", header), ("PAYMENT-SIGNATURE", header)])
    assert twice.status == 402
    assert calls(stack, "garbage") == 0 and calls(stack, "twice") == 0


def test_settle_before_returns_payment_response(stack):
    address, key = payer(stack, 4)
    before = stack.devnet.balance(address)
    session = wrapRequestsWithPayment(requests.Session(), sync_client(key))
    response = session.get(stack.nginx.url + "/before?settled")
    assert response.status_code == 200, response.text
    settled = decode(response.headers["PAYMENT-RESPONSE"])
    assert settled["success"] is True and settled["transaction"].startswith("0x")
    assert stack.devnet.balance(address) == before - PRICE["before"]
    assert stack.backend.requests_to("settled")[-1]["headers"]["x-x402-transaction"] == settled["transaction"]
    # v1 answers carry X-PAYMENT-RESPONSE instead.
    challenge = requests.get(stack.nginx.url + "/before?settled-v1")
    v1 = requests.get(stack.nginx.url + "/before?settled-v1",
                      headers={"X-PAYMENT": v1_header(sync_client(key), challenge)})
    assert v1.status_code == 200 and "PAYMENT-RESPONSE" not in v1.headers
    assert decode(v1.headers["X-PAYMENT-RESPONSE"])["success"] is True


def test_sidecar_killed_fails_closed_with_503(stack):
    _, key = payer(stack, 7)
    header = v2_header(sync_client(key), requests.get(stack.nginx.url + "/weather?down"))
    stack.sidecar.kill9()
    try:
        response = raw_get(stack.nginx, "/weather?down", [("PAYMENT-SIGNATURE", header)])
        assert response.status == 503
        assert response.header("Retry-After") == "5"
        assert response.json() == {"error": "payment_service_unavailable"}
        unpaid = raw_get(stack.nginx, "/weather?down-unpaid")
        assert unpaid.status == 503
        assert calls(stack, "down") == 0
        assert "x402: the sidecar at \"/_x402/authorize\" failed (status 502), failing closed" in (
            stack.nginx.error_log())
    finally:
        stack.sidecar.start()
    assert requests.get(stack.nginx.url + "/weather?down", headers={"PAYMENT-SIGNATURE": header}).status_code == 200


@pytest.mark.parametrize("case", ["allow-without-status", "closes-mid-answer", "too-large", "garbage", "slow"])
def test_broken_sidecar_answers_fail_closed(stack, case, tmp_path):
    """A sidecar location that answers 200 by mistake, closes mid-answer, sends more than the
    buffer holds, sends garbage or nothing in time: 503, an error-log line, backend never called."""
    fakes = {
        "allow-without-status": FakeSidecar(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        "closes-mid-answer": FakeSidecar(b"HTTP/1.1 401 Unauthorized\r\nX-X402-Status: 402\r\nPAYMENT-REQ"),
        "too-large": FakeSidecar(b"HTTP/1.1 401 Unauthorized\r\nX-X402-Status: 402\r\nPAYMENT-REQUIRED: "
                                 + b"A" * 40000 + b"\r\nContent-Length: 0\r\n\r\n"),
        "garbage": FakeSidecar(b"\x00\x01 this is not http\r\n\r\n"),
        "slow": FakeSidecar(b"", hang=True),
    }
    fake = fakes.pop(case)
    for other in fakes.values():
        other.stop()
    locations = """\
        location = /_x402/fake {
            internal;
            proxy_pass http://127.0.0.1:%d/authorize;
            proxy_read_timeout 1s;
            proxy_buffer_size 32k;
            proxy_buffers 4 32k;
        }
        location /weather { x402 weather; x402_sidecar /_x402/fake; proxy_pass http://backend; }
""" % fake.port
    nginx = ModuleNginx(str(tmp_path), stack.sidecar.run_dir, stack.backend.port, locations).start()
    try:
        response = raw_get(nginx, "/weather?broken=" + case)
        assert response.status == 503, response.raw
        assert response.header("Retry-After") == "5"
        assert calls(stack, "broken=" + case) == 0
        assert "failing closed" in nginx.error_log()
        assert fake.connections >= 1
    finally:
        nginx.stop()
        fake.stop()


def test_nginx_t_and_reload_with_the_module(stack, tmp_path):
    if VALGRIND:
        pytest.skip("one process under valgrind: no reload")
    result = stack.nginx.test_config()
    assert result.returncode == 0 and "test is successful" in result.stderr
    pid = open(os.path.join(stack.nginx.run_dir, "nginx.pid")).read().strip()
    stack.nginx.reload()

    def new_worker_answers():
        return raw_get(stack.nginx, "/weather?after-reload").status == 402

    wait_for(new_worker_answers, timeout=10, what="a 402 after reload")
    assert open(os.path.join(stack.nginx.run_dir, "nginx.pid")).read().strip() == pid
    assert "reconfiguring" in stack.nginx.error_log()


def test_configuration_errors_are_reported(tmp_path):
    def check(locations):
        nginx = ModuleNginx(str(tmp_path), str(tmp_path), 9, locations)
        return nginx.test_config()

    bad_fail = check("        location /a { x402 a; x402_fail open; }\n")
    assert bad_fail.returncode != 0 and 'x402 only fails "closed"' in bad_fail.stderr
    duplicate = check("        location /a { x402 a; x402 b; }\n")
    assert duplicate.returncode != 0 and "is duplicate" in duplicate.stderr
    keys = tmp_path / "bad.keys"
    keys.write_text("k1 HS256 c2hvcnQ\n")
    short = check("        location /a { x402 a; x402_lease_keys %s; }\n" % keys)
    assert short.returncode != 0 and "at least 32 bytes" in short.stderr
    keys.write_text("k1 RS256 c2hvcnQ\n")
    rs = check("        location /a { x402 a; x402_lease_keys %s; }\n" % keys)
    assert rs.returncode != 0 and 'unsupported algorithm "RS256"' in rs.stderr
    report = check("        location /a { x402 a; x402_report 127.0.0.1:514; }\n")
    assert report.returncode != 0 and 'needs a "unix:" socket path' in report.stderr
    assert check("        location /a { x402 a; x402_lease_clock_skew 0s; }\n").returncode == 0
    assert check("        x402_lease_clock_skew 10m;\n        location /a { x402 a; }\n").returncode == 0
    skew = check("        location /a { x402 a; x402_lease_clock_skew soon; }\n")
    assert skew.returncode != 0 and '"x402_lease_clock_skew" directive invalid value' in skew.stderr
    negative = check("        location /a { x402 a; x402_lease_clock_skew -5s; }\n")
    assert negative.returncode != 0 and "invalid value" in negative.stderr
    too_large = check("        location /a { x402 a; x402_lease_clock_skew 11m; }\n")
    assert too_large.returncode != 0 and "x402_lease_clock_skew must be at most 600s" in too_large.stderr
    twice = check("        location /a { x402 a; x402_lease_clock_skew 5s; x402_lease_clock_skew 6s; }\n")
    assert twice.returncode != 0 and "is duplicate" in twice.stderr


def test_debian_modules_available_layout(tmp_path):
    """The module loaded the way Debian's libnginx-mod-* packages do it: modules-enabled symlink to
    modules-available/mod-http-x402.conf, `load_module modules/…` relative to the prefix."""
    from harness import MODULE_DIR, MODULE_SO
    prefix = tmp_path / "nginx"
    (prefix / "modules").mkdir(parents=True)
    (prefix / "modules-available").mkdir()
    (prefix / "modules-enabled").mkdir()
    os.symlink(MODULE_SO, prefix / "modules" / "ngx_http_x402_module.so")
    with open(os.path.join(MODULE_DIR, "mod-http-x402.conf")) as f:
        (prefix / "modules-available" / "mod-http-x402.conf").write_text(f.read())
    os.symlink(prefix / "modules-available" / "mod-http-x402.conf", prefix / "modules-enabled" / "50-mod-http-x402.conf")
    (prefix / "nginx.conf").write_text(
        "include %s/modules-enabled/*.conf;\npid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\n"
        "http { access_log off; server { listen 127.0.0.1:9; location / { x402 weather; } } }\n"
        % (prefix, prefix, prefix))
    result = subprocess.run([NGINX_BIN, "-t", "-c", str(prefix / "nginx.conf"), "-p", str(prefix) + "/"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_stream_recheck_needs_a_sidecar_address(tmp_path):
    """x402_lease_recheck rechecks open streams with upstream x402_sidecar's first server, or
    x402_recheck_sidecar: without either, nginx -t fails instead of silently not rechecking."""
    from harness import MODULE_SO, write_key_file
    keys = write_key_file(str(tmp_path / "lease.keys"))

    def check(extra):
        conf = tmp_path / "nginx.conf"
        conf.write_text(
            "load_module %s;\npid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp { access_log off;\n%s"
            "server { listen 127.0.0.1:9; location / { x402 a; x402_lease_keys %s; x402_lease_recheck 10s; } } }\n"
            % (MODULE_SO, tmp_path, tmp_path, extra, keys))
        return subprocess.run([NGINX_BIN, "-t", "-c", str(conf), "-p", str(tmp_path) + "/"], capture_output=True,
                              text=True)

    missing = check("")
    assert missing.returncode != 0 and 'first server of "upstream x402_sidecar"' in missing.stderr
    assert check("upstream x402_sidecar { server unix:/run/x402/x402.sock; }\n").returncode == 0
    assert check("x402_recheck_sidecar unix:/run/x402/x402.sock;\n").returncode == 0
    bad = check("x402_recheck_sidecar unix:;\n")
    assert bad.returncode != 0 and "x402_recheck_sidecar" in bad.stderr


def test_the_module_lease_conf_has_the_stock_lines():
    """nginx/module/lease.conf is nginx/x402/lease.conf for module users (its fail-closed 503 is the
    module's server.conf's @x402_unavailable): the same directives, so the two cannot drift apart."""
    from harness import MODULE_DIR
    from stack import ROOT

    def directives(path):
        with open(path) as f:
            return [line for line in f.read().splitlines() if line.strip() and not line.startswith("#")]

    stock = directives(os.path.join(ROOT, "nginx", "x402", "lease.conf"))
    assert "error_page 502 504 = @x402_unavailable;" in stock
    assert directives(os.path.join(MODULE_DIR, "lease.conf")) == stock
    with open(os.path.join(MODULE_DIR, "server.conf")) as f:
        assert "location @x402_unavailable {" in f.read()
