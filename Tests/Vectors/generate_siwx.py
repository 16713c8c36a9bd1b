#!/usr/bin/env python3
"""Sign-In-With-X proofs made by the official x402 Python SDK's client (x402 2.25.0).

Writes Tests/X402Tests/Fixtures/siwx.json, which SIWXTests.swift verifies case by case.

    .venv/bin/python Tests/Vectors/generate_siwx.py

How a proof is made:
- "official": our 402 (a `PAYMENT-REQUIRED` header whose `extensions["sign-in-with-x"]` is the
  declaration our server writes, built here the way SIWXChallenge.swift builds it) is decoded by
  the SDK (`decode_payment_required_header`) and handed to the SDK's own client extension
  (`create_siwx_client_extension(...).transport_hooks.http.on_payment_required`), which builds the
  SIWE message, signs it with `eth_account` and encodes the `SIGN-IN-WITH-X` header itself.
- "helper": a payload the client would never produce (another statement, a notBefore, a
  lowercase address, ...) built as the SDK's `SIWxPayload`, signed by the SDK's own
  `format_siwe_message` + `sign_evm_message`, and encoded with `encode_siwx_header`.
- "modified": an official header decoded, changed after signing, and re-encoded like the SDK.

Deterministic: fixed keys, fixed times, nonce randomness = sha256(case name)[:8], and the nonce MAC
is keccak256(MAC_KEY ‖ message) (the Swift tests use the same stand-in; the sidecar uses HMAC).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import pathlib
from datetime import datetime, timezone

from eth_account import Account
from eth_hash.auto import keccak

from x402.extensions.sign_in_with_x import (
    CreateSIWxClientExtensionOptions,
    SIWxPayload,
    build_siwx_schema,
    create_siwx_client_extension,
    encode_siwx_header,
    format_siwe_message,
    sign_evm_message,
)
from x402.http.utils import decode_payment_required_header
from x402.schemas.hooks import PaymentRequiredContext

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "X402Tests" / "Fixtures" / "siwx.json"
NOW = 1767225600  # 2026-01-01T00:00:00Z
MAX_AGE, SKEW = 300, 30
MAC_KEY = b"x402-nginx siwx fixture nonce key"
ORIGIN, PATH = "https://api.example.com", "/weather?city=Paris"
STATEMENT = "Sign in to reach paid routes you already bought"
CHAINS = ["eip155:84532", "eip155:8453"]
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def key(n: int) -> str:
    return "0x" + n.to_bytes(32, "big").hex()


PAYER = Account.from_key(key(1))  # 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf
OTHER = Account.from_key(key(2))


def rfc3339(seconds: int) -> str:
    """As RFC3339.format in Swift: UTC with milliseconds."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def mac(message: bytes) -> bytes:
    return keccak(MAC_KEY + message)


def nonce_for(label: str, issued_at: str, expiration: str | None, domain: str, uri: str, mac_key=mac) -> str:
    random = hashlib.sha256(label.encode()).digest()[:8]
    message = f"x402-siwx-nonce\n{random.hex()}\n{issued_at}\n{expiration or ''}\n{domain}\n{uri}".encode()
    return (random + mac_key(message)[:8]).hex()


def declaration(label, origin=ORIGIN, path=PATH, statement=STATEMENT, chains=CHAINS, issued=NOW, lifetime=600,
                mac_key=mac) -> dict:
    """What SIWXChallenge.declarationJSON writes, key for key."""
    domain = origin.split("://", 1)[1]
    uri = origin + path
    issued_at = rfc3339(issued)
    expiration = rfc3339(issued + lifetime) if lifetime is not None else None
    info = {"domain": domain, "uri": uri, "version": "1",
            "nonce": nonce_for(label, issued_at, expiration, domain, uri, mac_key), "issuedAt": issued_at,
            "resources": [uri]}
    if expiration:
        info["expirationTime"] = expiration
    if statement:
        info["statement"] = statement
    return {"info": info, "supportedChains": [{"chainId": c, "type": "eip191"} for c in chains],
            "schema": build_siwx_schema()}


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def official(decl: dict, signer=PAYER, request_url: str | None = None) -> str:
    """The SDK's client answering our 402: returns the SIGN-IN-WITH-X header value."""
    required = {"x402Version": 2, "error": "payment required",
                "resource": {"url": decl["info"]["uri"], "description": "Weather", "mimeType": "application/json"},
                "accepts": [{"scheme": "exact", "network": "eip155:84532", "amount": "10000",
                             "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                             "payTo": "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69", "maxTimeoutSeconds": 60,
                             "extra": {"name": "USDC", "version": "2"}}],
                "extensions": {"sign-in-with-x": decl}}
    header = base64.b64encode(compact(required).encode()).decode()
    payment_required = decode_payment_required_header(header)
    extension = create_siwx_client_extension(CreateSIWxClientExtensionOptions(signers=[signer]))
    context = PaymentRequiredContext(payment_required=payment_required,
                                     request_url=request_url or decl["info"]["uri"])
    result = asyncio.run(extension.transport_hooks.http.on_payment_required(None, context))
    assert result is not None, "the SDK client declined the challenge"
    (name, value), = result.headers.items()
    assert name.lower() == "sign-in-with-x", name  # the SDK names it in lowercase
    return value


def helper(fields: dict, signer=PAYER, sign_as: dict | None = None) -> str:
    """A payload signed by the SDK's own message formatter and signer (sign_as: fields to sign
    instead, for proofs whose signature covers something else)."""
    signed = SIWxPayload.model_validate({**(sign_as or fields), "signature": "0x"})
    message = format_siwe_message(signed, signed.address)
    signature = asyncio.run(sign_evm_message(message, signer))
    return encode_siwx_header(SIWxPayload.model_validate({**fields, "signature": signature}))


def decode(header: str) -> dict:
    return json.loads(base64.b64decode(header))


def modified(header: str, change) -> str:
    document = decode(header)
    change(document)
    return base64.b64encode(json.dumps(document).encode()).decode()


def main() -> None:
    cases: list[dict] = []

    def add(name, header, made, reason=None, now=NOW + 5, payer=None, route_statement=STATEMENT):
        case = {"name": name, "made": made, "header": header, "now": now}
        if route_statement != STATEMENT:
            case["routeStatement"] = route_statement  # the route advertises this statement (null: none)
        case["expect"] = {"valid": True, "payer": (payer or PAYER.address).lower()} if reason is None else {
            "valid": False, "reason": reason}
        cases.append(case)

    base = declaration("official")
    good = official(base)
    payload = decode(good)
    assert payload["address"] == PAYER.address and payload["chainId"] == CHAINS[0]
    add("official", good, "official")
    add("official at max age", good, "official", now=NOW + MAX_AGE)
    add("official issued slightly ahead", good, "official", now=NOW - SKEW)
    add("official without expiration", official(declaration("no expiration", lifetime=None)), "official")
    no_statement = official(declaration("no statement", statement=None))
    add("official without statement", no_statement, "official", route_statement=None)
    add("statement added", no_statement, "official", "siwx_echo_mismatch")
    add("official second key", official(declaration("second key"), signer=OTHER), "official", payer=OTHER.address)
    lower = {**{k: v for k, v in payload.items() if k != "signature"}, "address": PAYER.address.lower()}
    add("lowercase address", helper(lower), "helper")

    add("stale", good, "official", "siwx_stale", now=NOW + MAX_AGE + 1)
    add("issued in the future", good, "official", "siwx_not_yet_valid", now=NOW - SKEW - 1)
    short = official(declaration("short lifetime", lifetime=60))
    add("expired", short, "official", "siwx_expired", now=NOW + 61)
    add("not before ahead", helper({**{k: v for k, v in payload.items() if k != "signature"},
                                    "notBefore": rfc3339(NOW + 120)}), "helper", "siwx_not_yet_valid")
    add("wrong domain", official(declaration("wrong domain", origin="https://evil.example.com")), "official",
        "siwx_wrong_domain")
    add("wrong path", official(declaration("wrong path", path="/admin")), "official", "siwx_wrong_uri")
    add("wrong scheme", helper({**{k: v for k, v in payload.items() if k != "signature"},
                                "uri": "http://api.example.com" + PATH}), "helper", "siwx_wrong_uri")
    add("unsupported chain", official(declaration("mainnet only", chains=["eip155:1"])), "official",
        "siwx_unsupported_chain")
    add("solana type", modified(good, lambda d: d.update(type="ed25519")), "modified", "siwx_unsupported_chain")
    add("eip1271 scheme", modified(good, lambda d: d.update(signatureScheme="eip1271")), "modified",
        "siwx_unsupported_chain")
    add("statement changed", helper({**{k: v for k, v in payload.items() if k != "signature"},
                                     "statement": "Something else"}), "helper", "siwx_echo_mismatch")
    add("statement dropped", helper({k: v for k, v in payload.items() if k not in ("signature", "statement")}),
        "helper", "siwx_echo_mismatch")
    add("resources dropped", helper({k: v for k, v in payload.items() if k not in ("signature", "resources")}),
        "helper", "siwx_echo_mismatch")
    add("version changed", modified(good, lambda d: d.update(version="2")), "modified", "siwx_echo_mismatch")
    add("nonce from another key", official(declaration("other mac", mac_key=lambda m: keccak(b"other" + m))),
        "official", "siwx_nonce_unknown")
    later = rfc3339(NOW + 2)
    add("issuedAt changed and re-signed", helper({**{k: v for k, v in payload.items() if k != "signature"},
                                                  "issuedAt": later}), "helper", "siwx_nonce_unknown")
    add("nonce changed", modified(good, lambda d: d.update(nonce="0" * 32)), "modified", "siwx_nonce_unknown")

    def flip_r(d):
        sig = bytearray(bytes.fromhex(d["signature"][2:]))
        sig[5] ^= 1
        d["signature"] = "0x" + sig.hex()

    def high_s(d):
        sig = bytes.fromhex(d["signature"][2:])
        s = SECP256K1_N - int.from_bytes(sig[32:64], "big")
        d["signature"] = "0x" + (sig[:32] + s.to_bytes(32, "big") + bytes([55 - sig[64]])).hex()

    add("signature tampered", modified(good, flip_r), "modified", "siwx_bad_signature")
    add("high s", modified(good, high_s), "modified", "siwx_bad_signature")
    add("v as 0/1", modified(good, lambda d: d.update(signature=d["signature"][:-2] + f"{int(d['signature'][-2:], 16) - 27:02x}")),
        "modified", "siwx_bad_signature")
    add("signed by another wallet", modified(official(base, signer=OTHER), lambda d: d.update(address=PAYER.address)),
        "modified", "siwx_bad_signature")
    add("signature over other fields", helper({k: v for k, v in payload.items() if k != "signature"},
                                              sign_as={**payload, "requestId": "x"}), "helper", "siwx_bad_signature")

    add("not base64", "not base64!", "hand", "siwx_malformed")
    add("not JSON", base64.b64encode(b"address=0x").decode(), "hand", "siwx_malformed")
    add("array", base64.b64encode(b"[]").decode(), "hand", "siwx_malformed")
    add("unpadded base64", good.rstrip("="), "official", "siwx_malformed") if good.endswith("=") else None
    add("missing signature", modified(good, lambda d: d.pop("signature")), "modified", "siwx_malformed")
    add("missing issuedAt", modified(good, lambda d: d.pop("issuedAt")), "modified", "siwx_malformed")
    add("chainId a number", modified(good, lambda d: d.update(chainId=84532)), "modified", "siwx_malformed")
    add("address not hex", modified(good, lambda d: d.update(address="0x" + "g" * 40)), "modified", "siwx_malformed")
    add("address bad checksum", modified(good, lambda d: d.update(address="0x7e5F4552091A69125d5DfCb7b8C2659029395Bdf")),
        "modified", "siwx_malformed")
    add("signature short", modified(good, lambda d: d.update(signature=d["signature"][:-2])), "modified",
        "siwx_malformed")
    add("statement with a line break", modified(good, lambda d: d.update(statement=STATEMENT + "\nURI: https://evil")),
        "modified", "siwx_malformed")
    add("resources hold a number", modified(good, lambda d: d.update(resources=[1])), "modified", "siwx_malformed")
    add("issuedAt not a date", modified(good, lambda d: d.update(issuedAt="yesterday")), "modified", "siwx_malformed")
    add("duplicate key", base64.b64encode(json.dumps(payload)[:-1].encode() + b', "address": "0x0000000000000000000000000000000000000001"}').decode(),
        "modified", "siwx_malformed")
    add("oversize", modified(good, lambda d: d.update(requestId="x" * 9000)), "modified", "siwx_malformed")

    # The SDK's client refuses a challenge whose origin is not the URL it asked for.
    try:
        official(declaration("client refuses"), request_url="https://evil.example.com" + PATH)
        raise AssertionError("the SDK client answered a challenge for another origin")
    except AssertionError as error:
        assert "declined" in str(error)

    names = [c["name"] for c in cases]
    assert len(names) == len(set(names))
    document = {
        "generator": "Tests/Vectors/generate_siwx.py",
        "sdk": "x402 2.25.0",
        "macKeyHex": MAC_KEY.hex(),
        "maxAgeSeconds": MAX_AGE,
        "clockSkew": SKEW,
        "expect": {"origin": ORIGIN, "pathAndQuery": PATH, "statement": STATEMENT, "chains": CHAINS},
        "declaration": {"label": "official", "issued": NOW, "lifetime": 600, "json": compact(base),
                        "random": hashlib.sha256(b"official").digest()[:8].hex()},
        "message": {"text": format_siwe_message({**payload, "chainId": payload["chainId"]}, payload["address"]),
                    "header": good},
        "cases": cases,
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
