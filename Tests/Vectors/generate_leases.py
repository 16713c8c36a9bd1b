#!/usr/bin/env python3
"""Lease-token fixtures made with ordinary JWT code: PyJWT (+ cryptography for EdDSA).

Writes Tests/X402SidecarTests/Fixtures/leases.json, which LeaseTokenFixtureTests.swift verifies
with our keyring (OpenSSL) and the pure checks in Sources/X402/Lease.

    .venv/bin/python Tests/Vectors/generate_leases.py

Deterministic: fixed keys (sha256 of a label), a fixed `now`, HMAC and Ed25519 signatures (both
deterministic), so a re-run is byte-identical. Tokens PyJWT cannot be made to write (duplicate
header keys, non-canonical base64url, an RS256/ES256 header with a junk signature) are assembled
by hand from PyJWT-made parts; each case says how it was made in `made`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pathlib

import warnings

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "X402SidecarTests" / "Fixtures" / "leases.json"
NOW = 1767225600  # 2026-01-01T00:00:00Z
SKEW = 30
ROUTE, HOST = "stream", "api.example.com"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HS_KID, ED_KID, OLD_KID = "hs-2026", "ed-2026", "hs-2025"
HS_SECRET = hashlib.sha256(b"x402-nginx lease fixture hs-2026").digest()
OLD_SECRET = hashlib.sha256(b"x402-nginx lease fixture hs-2025").digest() + b"rotated"
ED_SEED = hashlib.sha256(b"x402-nginx lease fixture ed-2026").digest()
ED_KEY = Ed25519PrivateKey.from_private_bytes(ED_SEED)
ED_PUBLIC = ED_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def claims(**changes):
    base = {
        "iss": "x402-nginx",
        "sub": "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf",
        "aud": HOST,
        "jti": hashlib.sha256(b"jti").hexdigest()[:32],
        "iat": NOW - 60,
        "nbf": NOW - 60,
        "exp": NOW + 3600,
        "x402_routes": [ROUTE, "socket"],
        "x402_lease": "stream-hour",
        "x402_amount": "250000",
        "x402_asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "x402_network": "eip155:84532",
        "x402_payment_id": "5f1d2c3b4a5968778695a4b3c2d1e0f0",
    }
    for name, value in changes.items():
        if value is DELETE:
            base.pop(name, None)
        else:
            base[name] = value
    return base


DELETE = object()


def hs(payload, kid=HS_KID, secret=HS_SECRET, algorithm="HS256", **headers):
    return jwt.encode(payload, secret, algorithm=algorithm, headers={"kid": kid, **headers})


def ed(payload, kid=ED_KID, **headers):
    return jwt.encode(payload, ED_KEY, algorithm="EdDSA", headers={"kid": kid, **headers})


def hs_raw(payload: bytes, kid=HS_KID, secret=HS_SECRET):
    """A validly signed token over arbitrary payload bytes (PyJWT's JWS layer)."""
    return jwt.api_jws.encode(payload, secret, algorithm="HS256", headers={"kid": kid})


def hand(header: str, payload: str, secret=HS_SECRET) -> str:
    """Header and payload JSON as given (duplicates and all), HMAC-SHA256 signed by hand."""
    signing_input = b64url(header.encode()) + "." + b64url(payload.encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def replace_part(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def flip_last_char(part: str) -> str:
    # 'A' <-> 'Q' keeps the trailing bits canonical for every segment length used here.
    return part[:-1] + ("Q" if part[-1] != "Q" else "A")


def main() -> None:
    warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)  # HS384/HS512 cases on purpose
    cases: list[dict] = []

    def valid(name, token, made, expected_claims):
        cases.append({"name": name, "made": made, "token": token, "expect": {"valid": True, "claims": expected_claims}})

    def refused(name, token, made, reason):
        cases.append({"name": name, "made": made, "token": token, "expect": {"valid": False, "reason": reason}})

    full = claims(x402_tx="0x" + "ab" * 32, x402_max_requests=100, x402_max_concurrent=2)
    valid("hs256", hs(claims()), "pyjwt", claims())
    valid("eddsa", ed(claims()), "pyjwt", claims())
    valid("optional claims", hs(full), "pyjwt", full)
    valid("eddsa optional claims", ed(full), "pyjwt", full)
    valid("second route", hs(claims(x402_routes=["other", ROUTE])), "pyjwt", claims(x402_routes=["other", ROUTE]))
    valid("older key", hs(claims(), kid=OLD_KID, secret=OLD_SECRET), "pyjwt", claims())
    valid("unknown claim ignored", hs(claims(extra={"a": 1})), "pyjwt", claims())
    valid("no typ", jwt.encode(claims(), HS_SECRET, algorithm="HS256", headers={"kid": HS_KID, "typ": None}), "pyjwt", claims())
    valid("expired within skew", hs(claims(exp=NOW - SKEW + 1)), "pyjwt", claims(exp=NOW - SKEW + 1))
    valid("nbf within skew", hs(claims(nbf=NOW + SKEW)), "pyjwt", claims(nbf=NOW + SKEW))

    refused("expired", hs(claims(exp=NOW - SKEW)), "pyjwt", "lease_expired")
    refused("eddsa expired", ed(claims(exp=NOW - 3600, nbf=NOW - 7200, iat=NOW - 7200)), "pyjwt", "lease_expired")
    refused("not yet valid", hs(claims(nbf=NOW + SKEW + 1)), "pyjwt", "lease_not_yet_valid")
    refused("wrong route", hs(claims(x402_routes=["other"])), "pyjwt", "lease_wrong_route")
    refused("wrong host", hs(claims(aud="evil.example.com")), "pyjwt", "lease_wrong_host")
    refused("wrong issuer", hs(claims(iss="someone-else")), "pyjwt", "lease_wrong_issuer")

    refused("alg none", jwt.encode(claims(), None, algorithm="none", headers={"kid": HS_KID}), "pyjwt", "lease_unsupported_alg")
    refused("HS384", hs(claims(), algorithm="HS384"), "pyjwt", "lease_unsupported_alg")
    refused("HS512", hs(claims(), algorithm="HS512"), "pyjwt", "lease_unsupported_alg")
    for alg in ("RS256", "ES256", "PS256", "none ", "hs256"):
        header = json.dumps({"alg": alg, "kid": HS_KID, "typ": "JWT"}, separators=(",", ":"))
        token = b64url(header.encode()) + "." + hs(claims()).split(".")[1] + "." + b64url(b"\x01" * 64)
        refused(f"alg {alg.strip() or 'blank'}{' (padded)' if alg.endswith(' ') else ''}", token, "hand", "lease_unsupported_alg")
    # HS256 keyed with the EdDSA key's public bytes, under the EdDSA kid: the classic confusion.
    refused("HS256 with the EdDSA kid", hs(claims(), kid=ED_KID, secret=ED_PUBLIC), "pyjwt", "lease_alg_mismatch")
    refused("EdDSA with an HS256 kid", ed(claims(), kid=HS_KID), "pyjwt", "lease_alg_mismatch")
    refused("unknown kid", hs(claims(), kid="retired-2024"), "pyjwt", "lease_unknown_key")
    refused("no kid", jwt.encode(claims(), HS_SECRET, algorithm="HS256"), "pyjwt", "lease_malformed")
    refused("kid with a space", hs(claims(), kid="hs 2026"), "pyjwt", "lease_malformed")
    refused("extra header jku", hs(claims(), jku="https://evil.example.com/keys"), "pyjwt", "lease_malformed")
    refused("typ not JWT", jwt.encode(claims(), HS_SECRET, algorithm="HS256", headers={"kid": HS_KID, "typ": "at+jwt"}), "pyjwt", "lease_malformed")
    refused("duplicate alg", hand('{"alg":"HS256","alg":"HS256","kid":"hs-2026","typ":"JWT"}', json.dumps(claims())), "hand", "lease_malformed")

    good = hs(claims())
    other = hs(claims(sub="0x2b5ad5c4795c026514f8317c7a215e218dccd6cf"))
    refused("payload swapped", replace_part(good, 1, other.split(".")[1]), "pyjwt", "lease_bad_signature")
    refused("signature tampered", replace_part(good, 2, flip_last_char(good.split(".")[2])), "pyjwt", "lease_bad_signature")
    refused("eddsa signature tampered", replace_part(ed(claims()), 2, "A" + ed(claims()).split(".")[2][1:]), "pyjwt", "lease_bad_signature")
    refused("signature from another secret", hs(claims(), secret=b"k" * 32), "pyjwt", "lease_bad_signature")
    refused("signature truncated", replace_part(good, 2, good.split(".")[2][:40]), "pyjwt", "lease_bad_signature")
    refused("empty signature", replace_part(good, 2, ""), "pyjwt", "lease_bad_signature")
    sig = good.split(".")[2]  # 43 chars: the last one carries 2 unused bits
    noncanonical = sig[:-1] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(sig[-1]) | 1]
    refused("signature non-canonical base64url", replace_part(good, 2, noncanonical), "pyjwt", "lease_malformed")
    refused("signature padded", good + "=", "pyjwt", "lease_malformed")
    refused("standard base64 alphabet", replace_part(good, 2, sig.replace("-", "+").replace("_", "/") if ("-" in sig or "_" in sig) else "+" + sig[1:]), "pyjwt", "lease_malformed")

    refused("not a token", "not-a-token", "hand", "lease_malformed")
    refused("two parts", ".".join(good.split(".")[:2]), "pyjwt", "lease_malformed")
    refused("four parts", good + ".x", "pyjwt", "lease_malformed")
    refused("empty", "", "hand", "lease_malformed")
    refused("header not base64url", replace_part(good, 0, "e30!"), "pyjwt", "lease_malformed")
    refused("header not JSON", replace_part(good, 0, b64url(b"alg=HS256")), "pyjwt", "lease_malformed")
    refused("header array", replace_part(good, 0, b64url(b'["HS256"]')), "pyjwt", "lease_malformed")
    refused("claims not JSON", hs_raw(b"not json"), "pyjwt", "lease_malformed")
    refused("claims array", hs_raw(b"[]"), "pyjwt", "lease_malformed")
    refused("claims duplicate sub", hand('{"alg":"HS256","kid":"hs-2026","typ":"JWT"}', json.dumps(claims())[:-1] + ',"sub":"0x2b5ad5c4795c026514f8317c7a215e218dccd6cf"}'), "hand", "lease_malformed")
    refused("iat as string", hs(claims(iat=str(NOW))), "pyjwt", "lease_malformed")
    refused("exp fractional", hs(claims(exp=NOW + 3600.5)), "pyjwt", "lease_malformed")
    refused("exp negative", hs(claims(exp=-1, nbf=-5)), "pyjwt", "lease_malformed")
    refused("exp missing", hs(claims(exp=DELETE)), "pyjwt", "lease_malformed")
    refused("nbf after exp", hs(claims(nbf=NOW + 7200)), "pyjwt", "lease_malformed")
    refused("sub checksummed", hs(claims(sub="0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")), "pyjwt", "lease_malformed")
    refused("sub not an address", hs(claims(sub="alice")), "pyjwt", "lease_malformed")
    refused("aud with port", hs(claims(aud="api.example.com:443")), "pyjwt", "lease_malformed")
    refused("aud uppercase", hs(claims(aud="API.example.com")), "pyjwt", "lease_malformed")
    refused("aud array", hs(claims(aud=[HOST])), "pyjwt", "lease_malformed")
    refused("jti short", hs(claims(jti="abc")), "pyjwt", "lease_malformed")
    refused("jti uppercase", hs(claims(jti="A" * 32)), "pyjwt", "lease_malformed")
    refused("routes empty", hs(claims(x402_routes=[])), "pyjwt", "lease_malformed")
    refused("routes a string", hs(claims(x402_routes=ROUTE)), "pyjwt", "lease_malformed")
    refused("routes hold a number", hs(claims(x402_routes=[ROUTE, 7])), "pyjwt", "lease_malformed")
    refused("amount leading zero", hs(claims(x402_amount="0250000")), "pyjwt", "lease_malformed")
    refused("amount a number", hs(claims(x402_amount=250000)), "pyjwt", "lease_malformed")
    refused("network not CAIP-2", hs(claims(x402_network="base-sepolia")), "pyjwt", "lease_malformed")
    refused("payment id missing", hs(claims(x402_payment_id=DELETE)), "pyjwt", "lease_malformed")
    refused("max requests zero", hs(claims(x402_max_requests=0)), "pyjwt", "lease_malformed")
    refused("max concurrent a string", hs(claims(x402_max_concurrent="2")), "pyjwt", "lease_malformed")
    refused("tx a number", hs(claims(x402_tx=5)), "pyjwt", "lease_malformed")
    big = hs(claims(x402_routes=[ROUTE] + [f"route-{i:03d}-" + "x" * 100 for i in range(31)]))
    assert len(big) > 4096, len(big)
    refused("oversize", big, "pyjwt", "lease_malformed")

    # Sanity: PyJWT itself accepts every token we call valid, with the same keys.
    keys = {HS_KID: HS_SECRET, OLD_KID: OLD_SECRET, ED_KID: ED_KEY.public_key()}
    for case in cases:
        if case["expect"]["valid"]:
            kid = jwt.get_unverified_header(case["token"])["kid"]
            # (PyJWT reads the wall clock; the fixture's times are checked by the Swift tests.)
            jwt.decode(case["token"], keys[kid], algorithms=["HS256", "EdDSA"], audience=HOST, issuer="x402-nginx",
                       options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})

    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    document = {
        "generator": "Tests/Vectors/generate_leases.py",
        "pyjwt": jwt.__version__,
        "now": NOW,
        "clockSkew": SKEW,
        "expect": {"route": ROUTE, "host": HOST},
        "signingKeyID": HS_KID,
        "keyFile": (
            f"# fixture keys (private)\n{HS_KID} HS256 {b64url(HS_SECRET)}\n"
            f"{ED_KID} EdDSA {b64url(ED_SEED)}\n{OLD_KID} HS256 {b64url(OLD_SECRET)}\n"
        ),
        "nginxKeyLines": [f"{HS_KID} HS256 {b64url(HS_SECRET)}", f"{ED_KID} EdDSA {b64url(ED_PUBLIC)}",
                          f"{OLD_KID} HS256 {b64url(OLD_SECRET)}"],
        "cases": cases,
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
