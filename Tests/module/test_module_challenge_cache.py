"""The module's challenge cache: a sidecar with `server.decision_cache_seconds: 2` marks the 402 of
an unpaid request `X-Accel-Expires: 2`, and each worker answers the same request (route, method,
scheme, Host, URI) from memory for 2 seconds, with the same headers and body, without asking the
sidecar. Whether the sidecar was asked is read from its decision log (by the request id the
module's x402_json access log records), and `$x402_cache` (HIT, MISS, empty) from that log."""
import json
import os
import re
import time
import uuid

import pytest
from harness import ModuleNginx, raw_get, raw_request
from payments import decode
from stack import Sidecar, wait_for

TTL = 2

LOCATIONS = """\
        location /weather {
            x402 weather;
            proxy_pass http://backend;
        }
        location /uncached {
            x402 weather;
            x402_challenge_cache off;
            proxy_pass http://backend;
        }
"""


@pytest.fixture(scope="module")
def cached(stack, run_root):
    run = os.path.join(run_root, "challenge-cache")
    sidecar = Sidecar(os.path.join(run, "sidecar"), stack.devnet,
                      server_extra="  decision_cache_seconds: %d\n" % TTL).start()
    nginx = ModuleNginx(os.path.join(run, "nginx"), sidecar.run_dir, stack.backend.port, LOCATIONS).start()

    class Cached:
        pass

    c = Cached()
    c.sidecar, c.nginx, c.backend = sidecar, nginx, stack.backend
    yield c
    nginx.stop()
    sidecar.stop()


def unique(path):
    return "%s?cc=%s" % (path, uuid.uuid4().hex)


def entries(nginx, uri):
    """The x402_json access log lines of `uri`, oldest first (the log writes `x402_lease=-`)."""
    uri = re.sub(r"(x402_lease=)[^&#]*", r"\1-", uri)
    with open(os.path.join(nginx.run_dir, "x402.log")) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return [e for e in lines if e["uri"] == uri]


def get(c, path, headers=(), method="GET"):
    """One request; returns the response and its access log line (written before nginx closes)."""
    before = len(entries(c.nginx, path))
    response = raw_request(c.nginx, method, path, headers) if method != "GET" else raw_get(c.nginx, path, headers)
    entry = wait_for(lambda: entries(c.nginx, path)[before:], timeout=5, what="the access log line")[0]
    return response, entry


def asked(c, entry):
    """Whether the sidecar decided this request: its decision line is written before it answers."""
    return any('"event":"decision"' in line and '"request_id":"%s"' % entry["request_id"] in line
               for line in c.sidecar.log_lines())


def without_date(response):
    return [(k, v) for k, v in response.headers if k.lower() != "date"]


def test_a_repeated_unpaid_request_is_answered_from_the_cache(cached):
    path = unique("/weather")
    first, miss = get(cached, path)
    second, hit = get(cached, path)
    assert first.status == second.status == 402
    assert (miss["x402_cache"], hit["x402_cache"]) == ("MISS", "HIT")
    assert asked(cached, miss) and not asked(cached, hit)
    # The same answer, byte for byte but the date: headers in the same order, the same body.
    assert without_date(second) == without_date(first)
    assert second.body == first.body and second.json()["x402Version"] == 1
    assert second.header("PAYMENT-REQUIRED") == first.header("PAYMENT-REQUIRED")
    assert decode(second.header("PAYMENT-REQUIRED"))["resource"]["url"].endswith(path)
    assert second.header("Cache-Control") == "no-store"
    assert "PAYMENT-REQUIRED" in second.header("Access-Control-Expose-Headers")
    # The variables say what the sidecar's answer would have said.
    assert (hit["status"], hit["x402_status"], hit["x402_reason"], hit["route"]) == (
        miss["status"], miss["x402_status"], miss["x402_reason"], miss["route"])
    assert hit["x402_status"] == "402"
    assert cached.backend.requests_to(path.split("?")[1]) == []


def test_another_uri_method_or_host_is_asked(cached):
    path = unique("/weather")
    _, miss = get(cached, path)
    assert miss["x402_cache"] == "MISS"
    assert get(cached, path)[1]["x402_cache"] == "HIT"
    for other_path, headers, method in [(path + "&more", (), "GET"), (path, (), "POST"),
                                         (path, [("Host", "example.test")], "GET")]:
        response, entry = get(cached, other_path, headers, method)
        assert response.status == 402 and entry["x402_cache"] == "MISS", (other_path, headers, method)
        assert asked(cached, entry)
    # The other host's challenge names its own host: it was never served to this one.
    response, entry = get(cached, path, [("Host", "example.test")])
    assert entry["x402_cache"] == "HIT"
    assert decode(response.header("PAYMENT-REQUIRED"))["resource"]["url"] == "http://example.test" + path


def test_an_entry_expires_after_the_sidecars_seconds(cached):
    path = unique("/weather")
    _, miss = get(cached, path)
    _, hit = get(cached, path)
    assert (miss["x402_cache"], hit["x402_cache"]) == ("MISS", "HIT")
    time.sleep(TTL + 0.3)
    _, again = get(cached, path)
    assert again["x402_cache"] == "MISS" and asked(cached, again)
    _, hit = get(cached, path)
    assert hit["x402_cache"] == "HIT" and not asked(cached, hit)


def test_a_payment_is_never_answered_from_the_cache_nor_stored(cached):
    path = unique("/weather")
    _, miss = get(cached, path)
    assert miss["x402_cache"] == "MISS"
    garbage = [("PAYMENT-SIGNATURE", "not base64!")]
    response, entry = get(cached, path, garbage)
    assert response.status == 402 and response.header("X-X402-Reason") == "invalid_payload"
    assert entry["x402_cache"] == "" and entry["x402_reason"] == "invalid_payload" and asked(cached, entry)
    # The unpaid answer is still the one kept, not the refusal of the payment.
    response, entry = get(cached, path)
    assert entry["x402_cache"] == "HIT" and response.header("X-X402-Reason") is None
    # A payment's refusal is not kept for the next payment either.
    fresh = unique("/weather")
    for _ in range(2):
        response, entry = get(cached, fresh, garbage)
        assert response.status == 402 and entry["x402_cache"] == "" and asked(cached, entry)
    assert get(cached, fresh)[1]["x402_cache"] == "MISS"


@pytest.mark.parametrize("name, headers, query", [
    ("lease header", [("X-X402-Lease", "not-a-token")], ""),
    ("lease argument", [], "&x402_lease=not-a-token"),
    ("authorization", [("Authorization", "Bearer something-else")], ""),
    ("v1 payment", [("X-PAYMENT", "not base64!")], ""),
    ("sign-in proof", [("SIGN-IN-WITH-X", "not base64!")], ""),
])
def test_a_lease_or_proof_bypasses_the_cache(cached, name, headers, query):
    path = unique("/weather")
    assert get(cached, path)[1]["x402_cache"] == "MISS"
    assert get(cached, path)[1]["x402_cache"] == "HIT"
    for _ in range(2):
        response, entry = get(cached, path + query, headers)
        assert response.status in (401, 402), response.raw
        assert entry["x402_cache"] == "" and asked(cached, entry), name
    assert get(cached, path)[1]["x402_cache"] == "HIT"


def test_x402_challenge_cache_off_always_asks(cached):
    path = unique("/uncached")
    for _ in range(3):
        response, entry = get(cached, path)
        assert response.status == 402 and entry["x402_cache"] == "" and asked(cached, entry)


def test_a_sidecar_without_decision_cache_seconds_is_always_asked(stack):
    """The session's sidecar keeps the default (0): it marks nothing, so every request is a miss."""
    path = unique("/weather")
    for _ in range(3):
        response, entry = get(stack, path)
        assert response.status == 402 and entry["x402_cache"] == "MISS" and asked(stack, entry)


def test_x402_challenge_cache_takes_on_or_off(tmp_path):
    nginx = ModuleNginx(str(tmp_path), str(tmp_path), 9,
                        "        x402_challenge_cache off;\n"
                        "        location /a { x402 a; x402_challenge_cache on; }\n")
    assert nginx.test_config().returncode == 0
    nginx.write("        location /a { x402 a; x402_challenge_cache maybe; }\n", "", 9)
    result = nginx.test_config()
    assert result.returncode != 0 and "invalid value \"maybe\"" in result.stderr


def test_only_a_402_marked_1_to_60_seconds_and_at_most_16_kb_is_kept(stack, tmp_path):
    """Stand-in sidecars (one connection per subrequest, so `connections` counts the asks): the
    module keeps a 402 marked `X-Accel-Expires: 2`, and nothing else."""
    from harness import FakeSidecar

    def reply(expires, status=402, required=b"eyJ4NDAyVmVyc2lvbiI6Mn0"):
        return (b"HTTP/1.1 %d Unauthorized\r\nX-X402-Status: %d\r\nX-Accel-Expires: %s\r\n"
                b"PAYMENT-REQUIRED: %s\r\nX-X402-Challenge: {\"x402Version\":1}\r\nContent-Length: 0\r\n\r\n"
                % (401 if status == 402 else 403, status, expires, required))

    cases = {"kept": (reply(b"2"), True), "zero": (reply(b"0"), False), "too-long": (reply(b"61"), False),
             "absolute": (reply(b"@1893456000"), False), "not-a-number": (reply(b"2s"), False),
             "refused": (reply(b"2", status=403), False), "too-large": (reply(b"2", required=b"A" * 17000), False)}
    fakes = {name: FakeSidecar(answer) for name, (answer, _) in cases.items()}
    locations = "".join("""\
        location = /_x402/fake-%s {
            internal;
            proxy_pass http://127.0.0.1:%d/authorize;
            proxy_buffer_size 32k;
            proxy_buffers 4 32k;
        }
        location /%s { x402 weather; x402_sidecar /_x402/fake-%s; proxy_pass http://backend; }
""" % (name, fake.port, name, name) for name, fake in fakes.items())
    nginx = ModuleNginx(str(tmp_path), stack.sidecar.run_dir, stack.backend.port, locations).start()
    try:
        for name, (_, kept) in cases.items():
            first, second = raw_get(nginx, "/" + name), raw_get(nginx, "/" + name)
            status = 403 if name == "refused" else 402
            assert first.status == second.status == status, (name, first.raw)
            assert second.header("PAYMENT-REQUIRED") == first.header("PAYMENT-REQUIRED")
            assert second.body == first.body
            assert fakes[name].connections == (1 if kept else 2), name
    finally:
        nginx.stop()
        for fake in fakes.values():
            fake.stop()
