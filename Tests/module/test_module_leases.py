"""Leases checked inside nginx (x402_lease_keys): the token format of issue 13 minted here with the
key file's keys, exactly as the sidecar will issue it; every bad token refused without reaching the
backend, with the sidecar's LeaseRefusal reason codes; SSE and WebSocket streams closed at `exp` by
the module's own timer, and sooner when a stream recheck finds the lease refused (revoked); the
report datagram of a leased request; the sidecar asked when the lease has counters or is due for a
recheck; the clock skew (x402_lease_clock_skew) on exp and nbf, and on the timer that ends a stream.
The locations the timing tests use set `x402_lease_clock_skew 0s`, so a lease ends at exp exactly."""
import base64
import hashlib
import hmac
import json
import threading
import time

import pytest
from harness import ED_PUBLIC, HS_SECRET, b64u, claims, mint, raw_get, stream_until_closed
from stack import wait_for


def calls(stack, fragment):
    return len(stack.backend.requests_to(fragment))


def test_hs256_lease_in_x402_lease_header_needs_no_sidecar(stack):
    document = claims(routes=["other", "stream"])
    stack.sidecar.stop()
    try:
        response = raw_get(stack.nginx, "/leased?hs", [("X-X402-Lease", mint(document)),
                                                        ("X-X402-Payer", "0xforged"), ("X-X402-Lease-Id", "forged")])
    finally:
        stack.sidecar.start()
    assert response.status == 200, response.raw
    seen = stack.backend.requests_to("/leased?hs")[-1]["headers"]
    assert seen["x-x402-payer"] == document["sub"]
    assert seen["x-x402-lease-id"] == document["jti"]
    assert seen["x-x402-lease-expires"] == str(document["exp"])
    assert seen["x-x402-lease-route"] == "day-pass"
    assert seen["x-x402-amount"] == "50000" and seen["x-x402-network"] == "eip155:84532"
    assert seen["x-x402-payment-id"] == "leasepayment0001"
    assert "x-x402-lease" not in seen


def test_eddsa_lease_as_bearer_token_is_removed_before_proxying(stack):
    document = claims()
    response = raw_get(stack.nginx, "/leased?ed", [("Authorization", "Bearer " + mint(document, alg="EdDSA"))])
    assert response.status == 200, response.raw
    seen = stack.backend.requests_to("/leased?ed")[-1]["headers"]
    assert seen["x-x402-lease-id"] == document["jti"]
    assert "authorization" not in seen


def test_a_bearer_token_that_is_not_a_lease_goes_to_the_sidecar(stack):
    response = raw_get(stack.nginx, "/leased?other-bearer", [("Authorization", "Bearer some-api-key")])
    assert response.status == 402
    assert calls(stack, "other-bearer") == 0


def test_leased_request_is_reported(stack):
    stack.reports.drain()
    document = claims()
    assert raw_get(stack.nginx, "/leased?report", [("X-X402-Lease", mint(document))]).status == 200
    report = stack.reports.next()
    assert report.startswith("<14>x402: - 200 bytes=")
    fields = dict(part.split("=") for part in report.split(" ")[3:])
    assert int(fields["bytes"]) > 100 and int(fields["duration_ms"]) >= 0
    assert fields["lease"] == document["jti"]


def forged_hs256(header, document, secret):
    signing = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(document).encode())
    return signing + "." + b64u(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


def signed_payload(payload_bytes):
    signing = b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "hs1"}).encode()) + "." + b64u(payload_bytes)
    return signing + "." + b64u(hmac.new(HS_SECRET, signing.encode(), hashlib.sha256).digest())


BAD_TOKENS = {
    "bad signature": (lambda: mint(claims(), secret=b"x" * 32), "lease_bad_signature"),
    "signature of another token": (lambda: mint(claims()).rsplit(".", 1)[0] + "." + mint(claims()).rsplit(".", 1)[1],
                                   "lease_bad_signature"),
    "alg none, no signature": (lambda: mint(claims(), alg="none", header={"alg": "none", "typ": "JWT", "kid": "hs1"}),
                               "lease_unsupported_alg"),
    "alg none, some signature": (lambda: mint(claims(), alg="none",
                                              header={"alg": "none", "typ": "JWT", "kid": "hs1"}) + "AAAA",
                                 "lease_unsupported_alg"),
    "HS256 keyed with the EdDSA public key": (
        lambda: forged_hs256({"alg": "HS256", "typ": "JWT", "kid": "ed1"}, claims(), ED_PUBLIC),
        "lease_alg_mismatch"),
    "EdDSA under the HS256 key id": (lambda: mint(claims(), alg="EdDSA", kid="hs1"), "lease_alg_mismatch"),
    # the sidecar's order: an unsupported alg is said first, whatever else the header holds
    "alg none, no kid (as PyJWT makes it)": (
        lambda: mint(claims(), alg="none", header={"alg": "none", "typ": "JWT"}), "lease_unsupported_alg"),
    "HS384 with a crit header": (
        lambda: forged_hs256({"alg": "HS384", "kid": "hs1", "crit": ["exp"]}, claims(), HS_SECRET),
        "lease_unsupported_alg"),
    "alg not a string": (lambda: forged_hs256({"alg": 256, "typ": "JWT", "kid": "hs1"}, claims(), HS_SECRET),
                         "lease_malformed"),
    "HS384": (lambda: forged_hs256({"alg": "HS384", "typ": "JWT", "kid": "hs1"}, claims(), HS_SECRET),
              "lease_unsupported_alg"),
    "RS256": (lambda: forged_hs256({"alg": "RS256", "typ": "JWT", "kid": "hs1"}, claims(), HS_SECRET),
              "lease_unsupported_alg"),
    "unknown kid": (lambda: mint(claims(), kid="nope"), "lease_unknown_key"),
    "crit header": (lambda: forged_hs256({"alg": "HS256", "kid": "hs1", "crit": ["exp"]}, claims(), HS_SECRET),
                    "lease_malformed"),
    "another header parameter": (lambda: forged_hs256({"alg": "HS256", "kid": "hs1", "jku": "https://x"}, claims(),
                                                      HS_SECRET), "lease_malformed"),
    "kid with a slash": (lambda: forged_hs256({"alg": "HS256", "kid": "../hs1"}, claims(), HS_SECRET),
                         "lease_malformed"),
    "expired": (lambda: mint(claims(ttl=-10)), "lease_expired"),
    "nbf in the future": (lambda: mint(claims(nbf=int(time.time()) + 120)), "lease_not_yet_valid"),
    "wrong route": (lambda: mint(claims(routes=["weather"])), "lease_wrong_route"),
    "wrong host": (lambda: mint(claims(aud="other.example")), "lease_wrong_host"),
    "wrong issuer": (lambda: mint(claims(iss="someone-else")), "lease_wrong_issuer"),
    "uppercase payer": (lambda: mint(claims(sub="0x" + "AB" * 20)), "lease_malformed"),
    "exp as a string": (lambda: mint(claims(exp=str(int(time.time()) + 60))), "lease_malformed"),
    "routes not an array": (lambda: mint(claims(x402_routes="stream")), "lease_malformed"),
    "header injection in a claim": (lambda: mint(claims(x402_asset="0x1\r\nX-Evil: 1")), "lease_malformed"),
    "garbage base64": (lambda: "@@@@.####.$$$$", "lease_malformed"),
    "padding": (lambda: mint(claims()) + "==", "lease_malformed"),
    "four segments": (lambda: mint(claims()) + ".AAAA", "lease_malformed"),
    "garbage JSON, signed": (lambda: signed_payload(b'{"iss": "x402-nginx", '), "lease_malformed"),
    "JSON array, signed": (lambda: signed_payload(b'["x402-nginx"]'), "lease_malformed"),
    "nested object, signed": (lambda: signed_payload(json.dumps(dict(claims(), extra={"a": 1})).encode()),
                              "lease_malformed"),
    "duplicate claim, signed": (lambda: signed_payload(json.dumps(claims())[:-1].encode() + b', "iss": "x"}'),
                                "lease_malformed"),
    "oversized": (lambda: mint(claims(padding="x" * 5000)), "lease_malformed"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_lease_is_refused_without_reaching_the_backend(stack, case):
    make, reason = BAD_TOKENS[case]
    marker = "bad=" + hashlib.sha1(case.encode()).hexdigest()[:8]
    headers = [("X-X402-Lease", make())]
    if case == "wrong host":
        headers.append(("Host", "127.0.0.1"))
    response = raw_get(stack.nginx, "/leased?" + marker, headers)
    assert response.status == 401, (case, response.raw[:300])
    assert response.header("X-X402-Reason") == reason, case
    assert 'error="invalid_token"' in response.header("WWW-Authenticate")
    assert response.json() == {"error": "unauthorized", "reason": reason}
    assert calls(stack, marker) == 0


def test_wrong_host_by_host_header(stack):
    response = raw_get(stack.nginx, "/leased?evil-host", [("X-X402-Lease", mint(claims())), ("Host", "evil.example")])
    assert response.status == 401 and response.header("X-X402-Reason") == "lease_wrong_host"
    assert calls(stack, "evil-host") == 0


def test_duplicate_lease_headers(stack):
    token = mint(claims())
    response = raw_get(stack.nginx, "/leased?dup", [("X-X402-Lease", token), ("X-X402-Lease", token)])
    assert response.status == 401 and response.header("X-X402-Reason") == "lease_duplicated"
    assert calls(stack, "?dup") == 0


def test_a_lease_with_counters_is_always_asked_of_the_sidecar(stack):
    """x402_max_requests / x402_max_concurrent live in the sidecar: the module asks it (today's
    sidecar has no leases and answers with a payment challenge)."""
    response = raw_get(stack.nginx, "/leased?counters", [("X-X402-Lease", mint(claims(x402_max_requests=10)))])
    assert response.status == 402
    assert calls(stack, "counters") == 0


def test_recheck_asks_the_sidecar_with_the_token(stack):
    document = claims(routes=["weather"])
    token = mint(document)
    response = raw_get(stack.nginx, "/rechecked?first", [("X-X402-Lease", token)])
    # The sidecar saw the request (and its token): today it answers with the weather challenge.
    assert response.status == 402
    assert decode_amount(response) == "10000"
    assert calls(stack, "rechecked") == 0
    assert any('"uri":"\\/rechecked?first"' in line or '"uri":"/rechecked?first"' in line
               for line in stack.sidecar.log_lines())


def decode_amount(response):
    return json.loads(base64.b64decode(response.header("PAYMENT-REQUIRED")))["accepts"][0]["amount"]


def test_sse_stream_is_closed_at_exp(stack):
    document = claims(ttl=3)
    left = document["exp"] - time.time()
    status, seconds, data = stream_until_closed(stack.nginx, "/sse?lease", [("X-X402-Lease", mint(document))])
    assert status == 200
    assert data.count(b"data: tick") >= 5, data
    assert left - 0.2 <= seconds <= left + 1.0, (left, seconds)
    record = wait_for(lambda: [s for s in stack.streams.streams if s["path"] == "/sse?lease" and s["end"]],
                      timeout=5, what="the backend side of the stream to close")[-1]
    assert "x-x402-lease" not in record["headers"] and record["headers"]["x-x402-lease-id"] == document["jti"]
    assert "lease " + document["jti"] + " expired" in stack.nginx.error_log()


def test_websocket_is_closed_at_exp(stack):
    document = claims(ttl=3)
    left = document["exp"] - time.time()
    status, seconds, data = stream_until_closed(stack.nginx, "/ws?lease", [("X-X402-Lease", mint(document))],
                                                websocket=True)
    assert status == 101, data[:200]
    assert data.count(b"tick") >= 5
    assert left - 0.2 <= seconds <= left + 1.0, (left, seconds)
    wait_for(lambda: [s for s in stack.streams.streams if s["path"] == "/ws?lease" and s["end"]],
             timeout=5, what="the backend side of the WebSocket to close")


def test_a_stream_without_a_lease_is_not_opened(stack):
    status, _, data = stream_until_closed(stack.nginx, "/sse?nolease", [], limit=5)
    assert status == 402
    assert not [s for s in stack.streams.streams if s["path"] == "/sse?nolease"]


def revoke_after(stack, seconds):
    def revoke():
        time.sleep(seconds)
        stack.authorizer.allow = False

    thread = threading.Thread(target=revoke, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("kind", ["sse", "ws"])
def test_a_revoked_lease_cuts_the_open_stream_at_the_next_recheck(stack, kind):
    """x402_lease_recheck 1s: while the stream is open the module asks /authorize every second
    (X-X402-Recheck: stream, with the token); allowed twice, then revoked: closed within a second
    of the revocation, long before exp."""
    stack.authorizer.allow = True
    document = claims(ttl=60)
    token = mint(document)
    revoker = revoke_after(stack, 2.5)
    try:
        status, seconds, data = stream_until_closed(stack.nginx, f"/revocable-{kind}?revoke",
                                                    [("X-X402-Lease", token)], websocket=kind == "ws",
                                                    limit=20)
    finally:
        revoker.join()
        stack.authorizer.allow = True
    assert status == (101 if kind == "ws" else 200), data[:200]
    assert 2.4 <= seconds <= 4.5, seconds
    assert data.count(b"tick") >= 8
    rechecks = stack.authorizer.rechecks(document["jti"])
    assert len(rechecks) >= 3, rechecks
    assert all(r["x-x402-lease"] == token for r in rechecks)
    assert rechecks[0]["x-x402-route"] == "stream" and rechecks[0]["x-x402-via"] == "nginx"
    assert rechecks[0]["x-original-uri"] == f"/revocable-{kind}?revoke"
    # the request's $request_id, as in the decision and the report's slot=: the same on every recheck
    assert len({r["x-request-id"] for r in rechecks}) == 1 and len(rechecks[0]["x-request-id"]) == 32
    assert ("lease %s refused by the sidecar on a stream recheck (lease_revoked)" % document["jti"]
            in stack.nginx.error_log())
    wait_for(lambda: [s for s in stack.streams.streams if s["path"] == f"/revocable-{kind}?revoke" and s["end"]],
             timeout=5, what="the backend side of the stream to close")


def test_a_stream_stays_open_while_the_sidecar_allows(stack):
    stack.authorizer.allow = True
    document = claims(ttl=3)
    left = document["exp"] - time.time()
    status, seconds, _ = stream_until_closed(stack.nginx, "/revocable-sse?allowed", [("X-X402-Lease", mint(document))])
    assert status == 200
    assert left - 0.2 <= seconds <= left + 1.0, (left, seconds)  # cut at exp, not before
    assert len(stack.authorizer.rechecks(document["jti"])) >= 1


def test_the_real_sidecar_refusing_a_recheck_cuts_the_stream(stack):
    """The rechecks go to upstream x402_sidecar (the real sidecar). Today's sidecar has no leases
    and answers with a 402 challenge; once it verifies leases, a token signed with a key it does not
    hold is refused as well: either way a refusal, and the stream ends at the first recheck."""
    stack.authorizer.allow = True
    document = claims(ttl=60)
    status, seconds, _ = stream_until_closed(stack.nginx, "/recheck-real-sse?real", [("X-X402-Lease", mint(document))],
                                             limit=20)
    assert status == 200
    assert 0.8 <= seconds <= 2.5, seconds
    assert "lease %s refused by the sidecar on a stream recheck" % document["jti"] in stack.nginx.error_log()
    assert any("recheck-real-sse?real" in line for line in stack.sidecar.log_lines())


def test_a_token_authenticated_before_is_still_checked_against_each_request(stack):
    """The worker caches the claims of tokens it has authenticated (no base64, JSON or signature
    again); host, route and time are checked on every request, and only the exact token hits."""
    document = claims(ttl=2)
    token = mint(document)
    assert raw_get(stack.nginx, "/leased?cache=1", [("X-X402-Lease", token)]).status == 200
    assert raw_get(stack.nginx, "/leased?cache=2", [("X-X402-Lease", token)]).status == 200
    other_host = raw_get(stack.nginx, "/leased?cache=host", [("X-X402-Lease", token), ("Host", "evil.example")])
    assert other_host.status == 401 and other_host.header("X-X402-Reason") == "lease_wrong_host"
    other_route = raw_get(stack.nginx, "/rechecked?cache=route", [("X-X402-Lease", token)])
    assert other_route.status == 401 and other_route.header("X-X402-Reason") == "lease_wrong_route"
    head, _, signature = token.rpartition(".")
    flipped = head + "." + ("B" if signature[0] != "B" else "C") + signature[1:]
    forged = raw_get(stack.nginx, "/leased?cache=forged", [("X-X402-Lease", flipped)])
    assert forged.status == 401 and forged.header("X-X402-Reason") == "lease_bad_signature"
    time.sleep(max(0, document["exp"] - time.time()) + 0.2)
    expired = raw_get(stack.nginx, "/leased?cache=expired", [("X-X402-Lease", token)])
    assert expired.status == 401 and expired.header("X-X402-Reason") == "lease_expired"
    assert calls(stack, "cache=") == 2


def test_the_clock_skew_admits_a_lease_until_exp_plus_skew(stack):
    """x402_lease_clock_skew is the sidecar's leases.clock_skew_seconds: a lease is valid until
    exp + skew and from nbf - skew. A token that expired 10 s ago is still valid with the default
    (30 s), and refused with 5 s; a token valid from 20 s on likewise."""
    now = int(time.time())
    late = claims(exp=now - 10, nbf=now - 70, iat=now - 70)
    token = mint(late)
    admitted = raw_get(stack.nginx, "/skew-default?late", [("X-X402-Lease", token)])
    assert admitted.status == 200, admitted.raw[:300]
    seen = stack.backend.requests_to("/skew-default?late")[-1]["headers"]
    assert seen["x-x402-lease-id"] == late["jti"] and seen["x-x402-lease-expires"] == str(late["exp"])
    # the same token again (now from the worker's cache of authenticated tokens), with 5 s of skew
    refused = raw_get(stack.nginx, "/skew-5?late", [("X-X402-Lease", token)])
    assert refused.status == 401 and refused.header("X-X402-Reason") == "lease_expired", refused.raw[:300]
    assert calls(stack, "/skew-5?late") == 0
    early = mint(claims(nbf=now + 20, iat=now + 20))
    assert raw_get(stack.nginx, "/skew-default?early", [("X-X402-Lease", early)]).status == 200
    too_early = raw_get(stack.nginx, "/skew-5?early", [("X-X402-Lease", early)])
    assert too_early.status == 401 and too_early.header("X-X402-Reason") == "lease_not_yet_valid"
    assert calls(stack, "/skew-5?early") == 0


def test_a_stream_ends_when_the_lease_stops_being_valid_at_exp_plus_skew(stack):
    """With x402_lease_clock_skew 2s the module's timer closes the stream 2 s after exp, the
    instant the sidecar (leases.clock_skew_seconds: 2) would start refusing the lease."""
    document = claims(ttl=1)
    left = document["exp"] + 2 - time.time()
    status, seconds, data = stream_until_closed(stack.nginx, "/sse-skew?lease", [("X-X402-Lease", mint(document))])
    assert status == 200
    assert left - 0.2 <= seconds <= left + 1.0, (left, seconds)
    assert data.count(b"data: tick") >= 10, data
    assert "lease " + document["jti"] + " expired" in stack.nginx.error_log()
