#!/usr/bin/env python3
"""Signed x402 test vectors made by the official x402 Python SDK (x402 2.25.0).

Writes Tests/X402Tests/Fixtures/vectors.json and Tests/X402Tests/Fixtures/keccak.json.

    .venv/bin/python Tests/Vectors/generate.py           # write the fixtures
    .venv/bin/python Tests/Vectors/generate.py --check   # also print the SDK facilitator's opinion

Deterministic: fixed keys, a fixed `now`, nonces = sha256(case name), RFC 6979 signatures and
compact JSON in the SDK's field order, so a re-run is byte-identical.

How each header is made:
- "official": the server's 402 (a `PAYMENT-REQUIRED` header for v2, a JSON body for v1) is fed to
  the SDK's own HTTP client (`x402HTTPClientSync` over `x402ClientSync` + `register_exact_evm_client`),
  which signs with `EthAccountSigner` and encodes the header (name and value) itself. Only the
  clock (`time.time`) and `create_nonce` are pinned.
- "helper": for authorizations the client flow cannot produce (validAfter in the future, a
  validBefore outside the window, ...), an official header whose authorization was re-signed by
  the SDK's own `_sign_authorization` (EIP-712 via `build_typed_data_for_signing`) with explicit
  values.
- "modified": an official or helper header, decoded, changed after signing, and re-encoded as
  compact JSON in the same key order (byte-identical to the SDK's encoder for an unmodified
  document; asserted below).

Every expected reason is hand-written and then checked against `reference_verdict`, a transcription
of the server's rules (first failing check wins); generation aborts on any disagreement.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import pathlib
import re
import sys
from typing import Any, Callable
from unittest import mock

from Crypto.Hash import keccak as pycryptodome_keccak
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak as eth_hash_keccak
from eth_keys import keys as eth_keys

import x402
from x402 import x402ClientSync
from x402.http import x402HTTPClientSync
from x402.http.utils import encode_payment_required_header
from x402.mechanisms.evm import utils as evm_utils
from x402.mechanisms.evm.eip712 import hash_domain, hash_eip3009_authorization, hash_struct
from x402.mechanisms.evm.exact import client as v2_client_module
from x402.mechanisms.evm.exact.client import ExactEvmScheme
from x402.mechanisms.evm.exact.register import register_exact_evm_client
from x402.mechanisms.evm.exact.v1 import client as v1_client_module
from x402.mechanisms.evm.exact.v1.client import ExactEvmSchemeV1
from x402.mechanisms.evm.types import (
    AUTHORIZATION_TYPES,
    DOMAIN_TYPES,
    ExactEIP3009Authorization,
    ExactEIP3009Payload,
    TypedDataDomain,
)
from x402.mechanisms.evm.v1 import utils as evm_v1_utils
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements
from x402.schemas.v1 import PaymentPayloadV1, PaymentRequiredV1, PaymentRequirementsV1

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "X402Tests" / "Fixtures"
GENERATOR = "Tests/Vectors/generate.py"
SDK_VERSION = "2.25.0"
NOW = int(os.environ.get("X402_VECTORS_NOW", "1767225600"))  # 2026-01-01T00:00:00Z unless overridden
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def key(n: int) -> str:
    return "0x" + n.to_bytes(32, "big").hex()


# Overridable so that Tests/e2e/test_verdicts.py can make the same cases for the devnet (funded
# payers, the deployed token, the current time) and ask the official facilitator about each.
PAYER_KEYS = os.environ["X402_VECTORS_PAYER_KEYS"].split(",") if "X402_VECTORS_PAYER_KEYS" in os.environ else [key(1), key(2)]
PAYERS = [Account.from_key(k) for k in PAYER_KEYS]
PAY_TO = os.environ.get("X402_VECTORS_PAY_TO") or Account.from_key(key(3)).address  # 0x6813Eb93…cBA69
OTHER = Account.from_key(key(4)).address  # 0x1efF47bc3a10a45D4B230B5d10E37751FE6AA718
BASE_MAINNET_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"

V2, V1 = "PAYMENT-SIGNATURE", "X-PAYMENT"
MAX_HEADER_BYTES = 8192
MAX_JSON_DEPTH = 16
VALID_BEFORE_MARGIN = 6
CLOCK_SKEW_ALLOWANCE = 600

SERVER: dict[str, Any] = {
    "scheme": "exact",
    "network": "eip155:84532",
    "v1Network": "base-sepolia",
    "chainId": 84532,
    "asset": os.environ.get("X402_VECTORS_ASSET", "0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
    "payTo": PAY_TO,
    "amount": "10000",
    "maxTimeoutSeconds": 60,
    "extra": {"name": "USDC", "version": "2"},
    "resource": {"url": "https://api.example.com/weather", "description": "Weather", "mimeType": "application/json"},
}

# Reasons (the official facilitator's codes).
R_PAYLOAD = "invalid_payload"
R_VERSION = "invalid_x402_version"
R_SCHEME = "unsupported_scheme"
R_NETWORK = "network_mismatch"
R_RECIPIENT = "invalid_exact_evm_payload_recipient_mismatch"
R_VALUE = "invalid_exact_evm_payload_authorization_value_mismatch"
R_VALID_BEFORE = "invalid_exact_evm_payload_authorization_valid_before"
R_VALID_AFTER = "invalid_exact_evm_payload_authorization_valid_after"
R_SIGNATURE = "invalid_exact_evm_payload_signature"


# --------------------------------------------------------------------------------------------
# Making headers with the SDK
# --------------------------------------------------------------------------------------------

def nonce_for(label: str) -> str:
    return "0x" + hashlib.sha256(label.encode()).hexdigest()


@dataclasses.dataclass
class Signed:
    """A header as the client sent it, plus what its signature was made over."""

    name: str  # header name
    document: dict  # decoded JSON
    value: str  # header value (base64)
    signed_digest: bytes  # the EIP-712 digest the payer actually signed

    def changed(self, change: Callable[[dict], None]) -> "Signed":
        document = json.loads(json.dumps(self.document))
        change(document)
        return Signed(self.name, document, encode(document), self.signed_digest)

    def header(self) -> dict[str, str]:
        return {self.name: self.value}


def compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def encode(document: Any) -> str:
    return base64.b64encode(compact(document).encode()).decode()


def decode(value: str) -> dict:
    return json.loads(base64.b64decode(value))


def v2_requirements(**overrides) -> PaymentRequirements:
    fields = {
        "scheme": SERVER["scheme"], "network": SERVER["network"], "asset": SERVER["asset"],
        "amount": SERVER["amount"], "pay_to": SERVER["payTo"],
        "max_timeout_seconds": SERVER["maxTimeoutSeconds"], "extra": dict(SERVER["extra"]),
    }
    fields.update(overrides)
    return PaymentRequirements(**fields)


def v1_requirements(**overrides) -> PaymentRequirementsV1:
    fields = {
        "scheme": SERVER["scheme"], "network": SERVER["v1Network"], "max_amount_required": SERVER["amount"],
        "resource": SERVER["resource"]["url"], "description": SERVER["resource"]["description"],
        "mime_type": SERVER["resource"]["mimeType"], "pay_to": SERVER["payTo"],
        "max_timeout_seconds": SERVER["maxTimeoutSeconds"], "asset": SERVER["asset"],
        "extra": dict(SERVER["extra"]),
    }
    fields.update(overrides)
    return PaymentRequirementsV1(**fields)


def signing_digest(authorization: dict, chain_id: int, asset: str, name: str, version: str) -> bytes:
    return hash_eip3009_authorization(
        ExactEIP3009Authorization(
            from_address=authorization["from"], to=authorization["to"], value=authorization["value"],
            valid_after=authorization["validAfter"], valid_before=authorization["validBefore"],
            nonce=authorization["nonce"]),
        chain_id, asset, name, version)


def recover(digest: bytes, signature_hex: str) -> str:
    """eth_keys recovery, lenient like the SDK's facilitator (v 0/1/27/28, any s < n)."""
    sig = bytes.fromhex(signature_hex[2:])
    v = sig[64] - 27 if sig[64] >= 27 else sig[64]
    return eth_keys.Signature(signature_bytes=sig[:64] + bytes([v])).recover_public_key_from_msg_hash(
        digest).to_checksum_address()


def official(label: str, version: int = 2, payer: int = 0, now: int = NOW, **overrides) -> Signed:
    """A header made end to end by the official client: 402 in, payment header out."""
    client = register_exact_evm_client(
        # Spend controls off: some cases deliberately name other tokens and chains.
        x402ClientSync().set_spend_controls(False), PAYERS[payer])
    http = x402HTTPClientSync(client)
    if version == 2:
        requirements = v2_requirements(**overrides)
        challenge = {"PAYMENT-REQUIRED": encode_payment_required_header(PaymentRequired(
            x402_version=2, error="Payment required", resource=SERVER["resource"], accepts=[requirements]))}
        required = http.get_payment_required_response(lambda name: challenge.get(name.upper()))
        chain_id = evm_utils.get_evm_chain_id(str(requirements.network))
    else:
        requirements = v1_requirements(**overrides)
        body = PaymentRequiredV1(x402_version=1, error="Payment required", accepts=[requirements]).model_dump(
            by_alias=True, exclude_none=True)
        required = http.get_payment_required_response(lambda name: None, body)
        chain_id = evm_v1_utils.get_evm_chain_id(requirements.network)
    with mock.patch("time.time", return_value=float(now)), \
            mock.patch.object(v2_client_module, "create_nonce", return_value=nonce_for(label)), \
            mock.patch.object(v1_client_module, "create_nonce", return_value=nonce_for(label)):
        payload = http.create_payment_payload(required)
    ((name, value),) = http.encode_payment_signature_header(payload).items()
    document = decode(value)
    assert encode(document) == value, "re-encoding must reproduce the SDK's bytes"
    authorization = document["payload"]["authorization"]
    digest = signing_digest(authorization, chain_id, requirements.asset, requirements.extra["name"],
                            requirements.extra["version"])
    assert recover(digest, document["payload"]["signature"]) == PAYERS[payer].address
    return Signed(name, document, value, digest)


def helper(label: str, *, valid_after: int, valid_before: int, version: int = 2, payer: int = 0,
           value: str | None = None, to: str | None = None, **domain) -> Signed:
    """An official header whose authorization was re-signed by the SDK's signing helper with
    explicit fields (domain overrides: network, asset, extra)."""
    base = official(label, version=version, payer=payer)
    authorization = ExactEIP3009Authorization(
        from_address=PAYERS[payer].address, to=to or SERVER["payTo"], value=value or SERVER["amount"],
        valid_after=str(valid_after), valid_before=str(valid_before), nonce=nonce_for(label))
    if version == 2:
        requirements = v2_requirements(**domain)
        signature = ExactEvmScheme(PAYERS[payer])._sign_authorization(authorization, requirements)
        chain_id = evm_utils.get_evm_chain_id(str(requirements.network))
    else:
        requirements = v1_requirements(**domain)
        signature = ExactEvmSchemeV1(PAYERS[payer])._sign_authorization(authorization, requirements)
        chain_id = evm_v1_utils.get_evm_chain_id(requirements.network)
    document = json.loads(json.dumps(base.document))
    document["payload"] = ExactEIP3009Payload(authorization=authorization, signature=signature).to_dict()
    model = (PaymentPayload if version == 2 else PaymentPayloadV1).model_validate(document)
    value_ = base64.b64encode(model.model_dump_json(by_alias=True, exclude_none=True).encode()).decode()
    assert value_ == encode(document)
    digest = signing_digest(document["payload"]["authorization"], chain_id, requirements.asset,
                            requirements.extra["name"], requirements.extra["version"])
    assert recover(digest, signature) == PAYERS[payer].address
    return Signed(base.name, document, value_, digest)


# Mutations ---------------------------------------------------------------------------------

def set_auth(field: str, value: Any) -> Callable[[dict], None]:
    return lambda d: d["payload"]["authorization"].__setitem__(field, value)


def set_accepted(field: str, value: Any) -> Callable[[dict], None]:
    return lambda d: d["accepted"].__setitem__(field, value)


def echo_server_requirement(d: dict) -> None:
    """Put the server's own requirement back in `accepted` (the client signed something else)."""
    d["accepted"] = v2_requirements().model_dump(by_alias=True, exclude_none=True)


def split_signature(d: dict) -> tuple[bytes, int, int]:
    sig = bytes.fromhex(d["payload"]["signature"][2:])
    return sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]


def high_s(d: dict) -> None:
    r, s, v = split_signature(d)
    assert s <= SECP256K1_N // 2 and v in (27, 28)
    d["payload"]["signature"] = "0x" + (r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])).hex()


def set_v(v: int) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        r, s, _ = split_signature(d)
        d["payload"]["signature"] = "0x" + (r + s.to_bytes(32, "big") + bytes([v])).hex()
    return change


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"n": value}
    return value


def json_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


def padded_to(signed: Signed, header_bytes: int) -> Signed:
    """Pad `extensions` so the header value is exactly `header_bytes` long (a multiple of 4)."""
    assert header_bytes % 4 == 0
    json_bytes = header_bytes // 4 * 3
    probe = signed.changed(lambda d: d.__setitem__("extensions", {"padding": ""}))
    filler = json_bytes - len(compact(probe.document).encode())
    result = signed.changed(lambda d: d.__setitem__("extensions", {"padding": "x" * filler}))
    assert len(result.value) == header_bytes, len(result.value)
    return result


def official_where(label: str, wanted: Callable[[Signed], bool], **kwargs) -> Signed:
    """The first official header with the wanted property, trying nonce labels label, label#1, ..."""
    for attempt in range(256):
        signed = official(label if attempt == 0 else f"{label}#{attempt}", **kwargs)
        if wanted(signed):
            return signed
    raise AssertionError(f"{label}: no header with the wanted property")


def official_with_v(label: str, wanted_v: int) -> Signed:
    """An official header whose signature has the wanted v."""
    return official_where(label, lambda s: split_signature(s.document)[2] == wanted_v)


# --------------------------------------------------------------------------------------------
# The server's rules, transcribed (the self-check)
# --------------------------------------------------------------------------------------------

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
DECIMAL = re.compile(r"^(0|[1-9][0-9]*)$")
NONCE = re.compile(r"^0x[0-9a-fA-F]{64}$")
SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


class Refused(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def strict_json(data: bytes) -> Any:
    def pairs(items):
        keys = [k for k, _ in items]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key")
        return dict(items)

    def constant(name):
        raise ValueError(f"non-standard constant {name}")

    value = json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError("too deep")
    return value


def strict_authorization(document: dict) -> tuple[dict, Any] | None:
    """(authorization, signature) when rule 6's syntax holds for the authorization, else None."""
    payload = document.get("payload") if isinstance(document, dict) else None
    auth = payload.get("authorization") if isinstance(payload, dict) else None
    if not isinstance(auth, dict):
        return None
    ok = (all(isinstance(auth.get(f), str) and ADDRESS.match(auth[f]) for f in ("from", "to"))
          and all(isinstance(auth.get(f), str) and DECIMAL.match(auth[f])
                  for f in ("value", "validAfter", "validBefore"))
          and isinstance(auth.get("nonce"), str) and NONCE.match(auth["nonce"]))
    return (auth, payload.get("signature")) if ok else None


def lenient_decode(value: str) -> Any:
    """The document behind a header, forgiving transport damage (padding, alphabet, spaces, size,
    depth) but not duplicate keys: used only to decide whether a case gets `eip712` hashes."""
    def pairs(items):
        if len({k for k, _ in items}) != len(items):
            raise ValueError("duplicate key")
        return dict(items)

    text = value.replace(" ", "").replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return json.loads(base64.b64decode(text + "=" * (-len(text) % 4), validate=True), object_pairs_hook=pairs)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def reference_verdict(headers: dict[str, str], now: int = NOW) -> tuple[bool, str | None, str | None]:
    """(valid, reason, payer) under the rules in the order the server applies them."""
    try:
        payer = reference_verify(headers, now)
        return True, None, payer
    except Refused as refused:
        return False, refused.reason, None


def reference_verify(headers: dict[str, str], now: int) -> str:
    # 1. decoding
    if V2 in headers and V1 in headers:
        raise Refused(R_PAYLOAD, "two payment headers")
    name = V2 if V2 in headers else V1
    expected_version = 2 if name == V2 else 1
    value = headers[name]
    if len(value.encode()) > MAX_HEADER_BYTES:
        raise Refused(R_PAYLOAD, "too large")
    if not BASE64.match(value):
        raise Refused(R_PAYLOAD, "not standard base64")
    try:
        document = strict_json(base64.b64decode(value, validate=True))
    except (ValueError, UnicodeDecodeError, binascii.Error) as error:
        raise Refused(R_PAYLOAD, f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise Refused(R_PAYLOAD, "not an object")
    version = document.get("x402Version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise Refused(R_PAYLOAD, "x402Version missing or not an integer")
    # 2. version
    if version not in (1, 2) or version != expected_version:
        raise Refused(R_VERSION, f"version {version} in {name}")
    if not isinstance(document.get("payload"), dict):
        raise Refused(R_PAYLOAD, "payload missing")
    if version == 2:
        accepted = document.get("accepted")
        if not (isinstance(accepted, dict) and is_str(accepted.get("scheme")) and is_str(accepted.get("network"))):
            raise Refused(R_PAYLOAD, "accepted.scheme/network missing")
        scheme, network = accepted["scheme"], accepted["network"]
    else:
        if not (is_str(document.get("scheme")) and is_str(document.get("network"))):
            raise Refused(R_PAYLOAD, "scheme/network missing")
        scheme, network = document["scheme"], document["network"]
    # 3. scheme, 4. network
    if scheme != SERVER["scheme"]:
        raise Refused(R_SCHEME, scheme)
    if network != (SERVER["network"] if version == 2 else SERVER["v1Network"]):
        raise Refused(R_NETWORK, network)
    # 5. the v2 echo
    if version == 2:
        if not all(is_str(accepted.get(f)) for f in ("asset", "payTo", "amount")):
            raise Refused(R_PAYLOAD, "accepted.asset/payTo/amount missing")
        if not ADDRESS.match(accepted["asset"]) or accepted["asset"].lower() != SERVER["asset"].lower():
            raise Refused(R_PAYLOAD, "accepted.asset")
        if not ADDRESS.match(accepted["payTo"]) or accepted["payTo"].lower() != SERVER["payTo"].lower():
            raise Refused(R_RECIPIENT, "accepted.payTo")
        if accepted["amount"] != SERVER["amount"]:
            raise Refused(R_VALUE, "accepted.amount")
    # 6. syntax
    fields = strict_authorization(document)
    if fields is None:
        raise Refused(R_PAYLOAD, "authorization syntax")
    auth, signature = fields
    if not (is_str(signature) and SIGNATURE.match(signature)):
        raise Refused(R_SIGNATURE, "signature syntax")
    # 7. recipient, 8. value
    if auth["to"].lower() != SERVER["payTo"].lower():
        raise Refused(R_RECIPIENT, "to")
    if auth["value"] != SERVER["amount"]:
        raise Refused(R_VALUE, "value")
    # 9. validBefore, 10. validAfter
    valid_before, valid_after = int(auth["validBefore"]), int(auth["validAfter"])
    if valid_before < now + VALID_BEFORE_MARGIN:
        raise Refused(R_VALID_BEFORE, "too soon")
    if valid_before > now + SERVER["maxTimeoutSeconds"] + CLOCK_SKEW_ALLOWANCE:
        raise Refused(R_VALID_BEFORE, "too far")
    if valid_after > now:
        raise Refused(R_VALID_AFTER, "future")
    # 11. signature
    sig = bytes.fromhex(signature[2:])
    r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    if v not in (27, 28):
        raise Refused(R_SIGNATURE, "v")
    if not (1 <= r < SECP256K1_N and 1 <= s <= SECP256K1_N // 2):
        raise Refused(R_SIGNATURE, "r/s range or high s")
    digest = bytes.fromhex(server_hashes(auth)["digest"][2:])
    try:
        signer = recover(digest, signature)
    except Exception:
        raise Refused(R_SIGNATURE, "does not recover") from None
    if signer.lower() != auth["from"].lower():
        raise Refused(R_SIGNATURE, "wrong signer")
    return auth["from"].lower()


def server_hashes(auth: dict) -> dict[str, str]:
    """EIP-712 hashes the server computes for a presented authorization (server's domain), with
    the SDK's helpers, cross-checked against eth_account."""
    domain = TypedDataDomain(name=SERVER["extra"]["name"], version=SERVER["extra"]["version"],
                             chain_id=SERVER["chainId"], verifying_contract=SERVER["asset"])
    message = {"from": auth["from"], "to": auth["to"], "value": int(auth["value"]),
               "validAfter": int(auth["validAfter"]), "validBefore": int(auth["validBefore"]),
               "nonce": bytes.fromhex(auth["nonce"][2:])}
    separator = hash_domain(domain)
    struct = hash_struct("TransferWithAuthorization", {**DOMAIN_TYPES, **AUTHORIZATION_TYPES}, message)
    digest = eth_hash_keccak(b"\x19\x01" + separator + struct)
    signable = encode_typed_data(full_message={
        "types": {**DOMAIN_TYPES, **AUTHORIZATION_TYPES}, "primaryType": "TransferWithAuthorization",
        "domain": {"name": domain.name, "version": domain.version, "chainId": domain.chain_id,
                   "verifyingContract": domain.verifying_contract},
        "message": message})
    assert (signable.header, signable.body) == (separator, struct), "SDK and eth_account disagree"
    return {"domainSeparator": "0x" + separator.hex(), "structHash": "0x" + struct.hex(),
            "digest": "0x" + digest.hex()}


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------

def build_cases() -> list[dict]:
    cases: list[dict] = []
    p0, p1 = PAYERS[0].address, PAYERS[1].address

    def add(name: str, description: str, headers: dict[str, str], reason: str | None = None, *,
            payer: str | None = None, signed: Signed | None = None) -> None:
        assert name not in {c["name"] for c in cases}, name
        valid = reason is None
        expect: dict[str, Any] = {"valid": valid}
        if valid:
            expect["payer"] = payer.lower()
            expect["version"] = 2 if V2 in headers else 1
        else:
            expect["reason"] = reason
        case: dict[str, Any] = {"name": name, "description": description, "headers": headers, "expect": expect}
        if len(headers) == 1:
            document = lenient_decode(next(iter(headers.values())))
            fields = strict_authorization(document) if isinstance(document, dict) else None
            if fields:
                hashes = server_hashes(fields[0])
                if signed is not None and "0x" + signed.signed_digest.hex() != hashes["digest"]:
                    hashes["signedDigest"] = "0x" + signed.signed_digest.hex()
                case["eip712"] = hashes
        # The self-check: the hand-written expectation must be what the rules give.
        got_valid, got_reason, got_payer = reference_verdict(headers)
        assert (got_valid, got_reason) == (valid, reason), f"{name}: rules give {got_valid} {got_reason}"
        if valid:
            assert got_payer == payer.lower(), name
        cases.append(case)

    def case(name: str, description: str, signed: Signed, reason: str | None = None, *, payer: str = p0):
        add(name, description, signed.header(), reason, payer=payer, signed=signed)

    # Valid ---------------------------------------------------------------------------------
    v2_valid = official("v2_valid")
    v1_valid = official("v1_valid", version=1)
    case("v2_valid", "official v2 client (validAfter 0, validBefore now + maxTimeoutSeconds)", v2_valid)
    case("v1_valid", "official v1 client (validAfter now - 600, validBefore now + maxTimeoutSeconds)", v1_valid)
    case("v2_valid_lowercase_to", "authorization.to lowercased after signing (same address, still valid)",
         official("v2_valid_lowercase_to").changed(set_auth("to", PAY_TO.lower())))
    case("v2_valid_second_payer", "official v2 client, second payer key", official("v2_valid_second_payer", payer=1),
         payer=p1)
    checksummed = official("v1_valid_checksummed", version=1)
    assert checksummed.document["payload"]["authorization"]["to"] == PAY_TO != PAY_TO.lower()
    assert checksummed.document["payload"]["authorization"]["from"] == p0 != p0.lower()
    case("v1_valid_checksummed", "official v1 client; from and to are EIP-55 mixed case (must not require lowercase)",
         checksummed)
    case("v1_valid_lowercase_to", "v1: the client was advertised a lowercase payTo and signed it lowercase",
         official("v1_valid_lowercase_to", version=1, pay_to=PAY_TO.lower()))
    case("v2_valid_lowercase_from", "authorization.from lowercased after signing (recovery compares case-insensitively)",
         official("v2_valid_lowercase_from").changed(set_auth("from", p0.lower())))
    case("v1_valid_second_payer", "official v1 client, second payer key",
         official("v1_valid_second_payer", version=1, payer=1), payer=p1)
    case("v2_valid_recent_window", "validAfter now - 600, validBefore now + 60 (SDK signing helper)",
         helper("v2_valid_recent_window", valid_after=NOW - 600, valid_before=NOW + 60))
    case("v2_valid_before_min_boundary", "validBefore = now + 6 exactly (the facilitator's margin)",
         helper("v2_valid_before_min_boundary", valid_after=0, valid_before=NOW + 6))
    case("v2_valid_before_max_boundary", "validBefore = now + maxTimeoutSeconds + 600 exactly",
         helper("v2_valid_before_max_boundary", valid_after=0, valid_before=NOW + 660))
    case("v2_valid_after_equals_now", "validAfter = now exactly",
         helper("v2_valid_after_equals_now", valid_after=NOW, valid_before=NOW + 60))
    case("v2_valid_without_resource", "v2 without the optional top-level resource (removed after signing)",
         official("v2_valid_without_resource").changed(lambda d: d.pop("resource")))
    case("v2_valid_header_8192_bytes", "extensions padded so the header is exactly 8192 bytes",
         padded_to(official("v2_valid_header_8192_bytes"), MAX_HEADER_BYTES))
    depth16 = official("v2_valid_json_depth_16").changed(lambda d: d.__setitem__("extensions", nested(15)))
    assert json_depth(depth16.document) == 16
    case("v2_valid_json_depth_16", "extensions nested so the document is exactly 16 levels deep", depth16)

    # Signature -----------------------------------------------------------------------------
    case("v2_tampered_nonce", "nonce changed after signing",
         official("v2_tampered_nonce").changed(set_auth("nonce", nonce_for("another nonce"))), R_SIGNATURE)
    case("v2_tampered_from", "from changed to another address after signing",
         official("v2_tampered_from").changed(set_auth("from", OTHER)), R_SIGNATURE)
    case("v2_tampered_valid_before", "validBefore lowered by 1 s after signing (still inside the window)",
         official("v2_tampered_valid_before").changed(set_auth("validBefore", str(NOW + 59))), R_SIGNATURE)
    case("v2_tampered_valid_after", "validAfter raised from 0 to 1 after signing (still in the past)",
         official("v2_tampered_valid_after").changed(set_auth("validAfter", "1")), R_SIGNATURE)
    case("v2_wrong_domain_name", "signed with EIP-712 name \"USD Coin\" (Base mainnet's) instead of \"USDC\"",
         official("v2_wrong_domain_name", extra={"name": "USD Coin", "version": "2"}).changed(echo_server_requirement),
         R_SIGNATURE)
    case("v2_wrong_domain_version", "signed with EIP-712 version \"1\"",
         official("v2_wrong_domain_version", extra={"name": "USDC", "version": "1"}).changed(echo_server_requirement),
         R_SIGNATURE)
    case("v2_wrong_domain_chain_id", "signed for chain 8453, presented for 84532",
         official("v2_wrong_domain_chain_id", network="eip155:8453").changed(echo_server_requirement), R_SIGNATURE)
    case("v2_wrong_verifying_contract", "signed for another token contract (Base mainnet USDC)",
         official("v2_wrong_verifying_contract", asset=BASE_MAINNET_USDC).changed(echo_server_requirement),
         R_SIGNATURE)
    case("v2_high_s", "s replaced by n - s and v flipped: recovers the same key but is malleable",
         official("v2_high_s").changed(high_s), R_SIGNATURE)
    case("v2_bad_v_29", "v = 29", official("v2_bad_v_29").changed(set_v(29)), R_SIGNATURE)
    case("v2_bad_v_0", "v = 0 for a signature made with v = 27 (raw recovery id; would recover the payer)",
         official_with_v("v2_bad_v_0", 27).changed(set_v(0)), R_SIGNATURE)
    case("v2_bad_v_1", "v = 1 for a signature made with v = 28 (raw recovery id; would recover the payer)",
         official_with_v("v2_bad_v_1", 28).changed(set_v(1)), R_SIGNATURE)
    case("v2_signature_all_zero", "r = s = 0, v = 27",
         official("v2_signature_all_zero").changed(
             lambda d: d["payload"].__setitem__("signature", "0x" + "00" * 64 + "1b")), R_SIGNATURE)
    by_other = official("v2_signed_by_other_key", payer=1)
    case("v2_signed_by_other_key", "the second payer's signature (same nonce, from = itself) on the first payer's "
         "authorization", dataclasses.replace(official("v2_signed_by_other_key").changed(
             lambda d: d["payload"].__setitem__("signature", by_other.document["payload"]["signature"])),
             signed_digest=by_other.signed_digest), R_SIGNATURE)
    case("signature_wrong_length", "a 64-byte signature (v dropped)",
         official("signature_wrong_length").changed(
             lambda d: d["payload"].__setitem__("signature", d["payload"]["signature"][:-2])), R_SIGNATURE)
    case("signature_not_hex", "130 characters after 0x, not all hex",
         official("signature_not_hex").changed(
             lambda d: d["payload"].__setitem__("signature", d["payload"]["signature"][:-2] + "zz")), R_SIGNATURE)
    case("signature_without_0x", "the signature's hex without the 0x prefix",
         official("signature_without_0x").changed(
             lambda d: d["payload"].__setitem__("signature", d["payload"]["signature"][2:])), R_SIGNATURE)
    case("signature_missing", "payload without a signature",
         official("signature_missing").changed(lambda d: d["payload"].pop("signature")), R_SIGNATURE)
    case("v1_tampered_nonce", "v1 nonce changed after signing",
         official("v1_tampered_nonce", version=1).changed(set_auth("nonce", nonce_for("another nonce"))), R_SIGNATURE)
    case("v1_wrong_domain_name", "v1 signed with EIP-712 name \"USD Coin\"",
         official("v1_wrong_domain_name", version=1, extra={"name": "USD Coin", "version": "2"}), R_SIGNATURE)

    # Recipient and value -------------------------------------------------------------------
    case("v2_wrong_pay_to", "signed to another recipient; the echo names ours",
         official("v2_wrong_pay_to", pay_to=OTHER).changed(echo_server_requirement), R_RECIPIENT)
    case("v2_echo_pay_to_mismatch", "authorization pays us but accepted.payTo names another recipient",
         official("v2_echo_pay_to_mismatch").changed(set_accepted("payTo", OTHER)), R_RECIPIENT)
    case("v1_wrong_pay_to", "v1 signed to another recipient",
         official("v1_wrong_pay_to", version=1, pay_to=OTHER), R_RECIPIENT)

    def bump_value(d: dict) -> None:
        d["payload"]["authorization"]["value"] = "10001"
        d["accepted"]["amount"] = "10001"
    case("v2_tampered_value", "value and accepted.amount raised to 10001 after signing", official("v2_tampered_value")
         .changed(bump_value), R_VALUE)
    case("v2_cheaper_accepted_echo", "the client was offered amount \"1\" and signed value \"1\"",
         official("v2_cheaper_accepted_echo", amount="1"), R_VALUE)
    case("v2_echo_amount_mismatch", "authorization pays the price but accepted.amount is \"1\"",
         official("v2_echo_amount_mismatch").changed(set_accepted("amount", "1")), R_VALUE)
    case("v2_underpaid_signed", "a correctly signed value of 9999 with the right echo",
         helper("v2_underpaid_signed", valid_after=0, valid_before=NOW + 60, value="9999"), R_VALUE)
    case("v1_tampered_value", "v1 value raised to 10001 after signing",
         official("v1_tampered_value", version=1).changed(set_auth("value", "10001")), R_VALUE)

    # Time ----------------------------------------------------------------------------------
    case("v2_expired", "official client 100 s ago with a 60 s timeout (validBefore = now - 40)",
         official("v2_expired", now=NOW - 100), R_VALID_BEFORE)
    case("v2_valid_before_too_soon", "validBefore = now + 3 (< the 6 s margin)",
         helper("v2_valid_before_too_soon", valid_after=0, valid_before=NOW + 3), R_VALID_BEFORE)
    case("v2_valid_before_just_too_soon", "validBefore = now + 5",
         helper("v2_valid_before_just_too_soon", valid_after=0, valid_before=NOW + 5), R_VALID_BEFORE)
    case("v2_valid_before_too_far", "validBefore = now + 3600 (beyond maxTimeoutSeconds + 600)",
         helper("v2_valid_before_too_far", valid_after=0, valid_before=NOW + 3600), R_VALID_BEFORE)
    case("v2_valid_before_just_too_far", "validBefore = now + 661",
         helper("v2_valid_before_just_too_far", valid_after=0, valid_before=NOW + 661), R_VALID_BEFORE)
    case("v2_not_yet_valid", "validAfter = now + 60, validBefore = now + 120",
         helper("v2_not_yet_valid", valid_after=NOW + 60, valid_before=NOW + 120), R_VALID_AFTER)
    case("v2_valid_after_now_plus_1", "validAfter = now + 1",
         helper("v2_valid_after_now_plus_1", valid_after=NOW + 1, valid_before=NOW + 60), R_VALID_AFTER)
    case("v1_expired", "official v1 client 100 s ago with a 60 s timeout",
         official("v1_expired", version=1, now=NOW - 100), R_VALID_BEFORE)
    case("v1_not_yet_valid", "v1 validAfter = now + 60 (SDK v1 signing helper)",
         helper("v1_not_yet_valid", version=1, valid_after=NOW + 60, valid_before=NOW + 120), R_VALID_AFTER)

    # Scheme, network, version ---------------------------------------------------------------
    case("v2_wrong_network", "official client paying on eip155:8453 for a route on eip155:84532",
         official("v2_wrong_network", network="eip155:8453"), R_NETWORK)
    case("v2_v1_network_name", "accepted.network \"base-sepolia\" (a v1 name) in a v2 payload",
         official("v2_v1_network_name").changed(set_accepted("network", "base-sepolia")), R_NETWORK)
    case("v1_wrong_network", "official v1 client paying on \"base\" for a base-sepolia route",
         official("v1_wrong_network", version=1, network="base"), R_NETWORK)
    case("v1_caip_network", "v1 payload naming the CAIP-2 id eip155:84532",
         official("v1_caip_network", version=1).changed(lambda d: d.__setitem__("network", "eip155:84532")),
         R_NETWORK)
    case("v2_unsupported_scheme", "accepted.scheme \"upto\"",
         official("v2_unsupported_scheme").changed(set_accepted("scheme", "upto")), R_SCHEME)
    case("v1_unsupported_scheme", "v1 scheme \"upto\"",
         official("v1_unsupported_scheme", version=1).changed(lambda d: d.__setitem__("scheme", "upto")), R_SCHEME)
    case("v2_wrong_asset_echo", "accepted.asset names Base mainnet USDC",
         official("v2_wrong_asset_echo").changed(set_accepted("asset", BASE_MAINNET_USDC)), R_PAYLOAD)
    v1_in_v2 = official("v1_payload_in_v2_header", version=1)
    add("v1_payload_in_v2_header", "an official v1 payload sent in PAYMENT-SIGNATURE", {V2: v1_in_v2.value},
        R_VERSION, signed=v1_in_v2)
    v2_in_v1 = official("v2_payload_in_v1_header")
    add("v2_payload_in_v1_header", "an official v2 payload sent in X-PAYMENT", {V1: v2_in_v1.value},
        R_VERSION, signed=v2_in_v1)
    case("unknown_version_3", "x402Version 3",
         official("unknown_version_3").changed(lambda d: d.__setitem__("x402Version", 3)), R_VERSION)
    case("version_as_string", "x402Version \"2\" (a string)",
         official("version_as_string").changed(lambda d: d.__setitem__("x402Version", "2")), R_PAYLOAD)
    case("missing_x402_version", "no x402Version",
         official("missing_x402_version").changed(lambda d: d.pop("x402Version")), R_PAYLOAD)

    # Decoding ------------------------------------------------------------------------------
    add("malformed_base64", "not base64 at all", {V2: "eyJ4NDAyVmVyc2lvbiI6Mn0*!"}, R_PAYLOAD)
    unpadded = official_where("base64_unpadded", lambda s: s.value.endswith("="))
    add("base64_unpadded", "a valid payload's base64 with its '=' padding stripped", {V2: unpadded.value.rstrip("=")},
        R_PAYLOAD)
    # ASCII JSON only reaches base64 '+' and '/' through '>', '?' or '~': give it some.
    urlsafe = official("base64url_alphabet").changed(lambda d: d.__setitem__("extensions", {"q": "???"}))
    assert reference_verdict(urlsafe.header())[0] and "/" in urlsafe.value
    add("base64url_alphabet", "a valid payload (extensions {\"q\":\"???\"}) in the URL-safe alphabet ('_' for '/')",
        {V2: urlsafe.value.replace("+", "-").replace("/", "_")}, R_PAYLOAD)
    spaced = official("base64_with_space").value
    add("base64_with_space", "a valid payload's base64 with a space in the middle",
        {V2: spaced[:100] + " " + spaced[100:]}, R_PAYLOAD)
    add("base64_not_json", "base64 of text that is not JSON", {V2: base64.b64encode(b"x402Version=2").decode()},
        R_PAYLOAD)
    add("json_array", "a JSON array", {V2: base64.b64encode(b"[{\"x402Version\":2}]").decode()}, R_PAYLOAD)
    add("json_string", "a JSON string", {V2: base64.b64encode(b"\"x402\"").decode()}, R_PAYLOAD)
    add("oversized_header", "a valid payload padded to 8196 bytes (> 8192)",
        padded_to(official("oversized_header"), MAX_HEADER_BYTES + 4).header(), R_PAYLOAD)
    case("deeply_nested_json", "extensions nested 39 levels (document depth 40)",
         official("deeply_nested_json").changed(lambda d: d.__setitem__("extensions", nested(39))), R_PAYLOAD)
    case("json_depth_17", "extensions nested so the document is 17 levels deep",
         official("json_depth_17").changed(lambda d: d.__setitem__("extensions", nested(16))), R_PAYLOAD)
    duplicate = official("duplicate_key")
    duplicated_json = compact(duplicate.document).replace('"value":"10000"', '"value":"1","value":"10000"', 1)
    assert duplicated_json != compact(duplicate.document)
    add("duplicate_key", "authorization carries \"value\" twice (\"1\", then \"10000\")",
        {V2: base64.b64encode(duplicated_json.encode()).decode()}, R_PAYLOAD)
    case("value_as_json_number", "value 10000 as a JSON number",
         official("value_as_json_number").changed(set_auth("value", 10000)), R_PAYLOAD)
    case("value_leading_zero", "value \"010000\"",
         official("value_leading_zero").changed(set_auth("value", "010000")), R_PAYLOAD)
    case("value_negative", "value \"-10000\"",
         official("value_negative").changed(set_auth("value", "-10000")), R_PAYLOAD)
    case("value_with_space", "value \" 10000\"",
         official("value_with_space").changed(set_auth("value", " 10000")), R_PAYLOAD)
    case("value_empty", "value \"\"", official("value_empty").changed(set_auth("value", "")), R_PAYLOAD)
    case("valid_before_exponent", "validBefore \"1.7e9\"",
         official("valid_before_exponent").changed(set_auth("validBefore", "1.7e9")), R_PAYLOAD)
    case("valid_after_as_json_number", "validAfter 0 as a JSON number",
         official("valid_after_as_json_number").changed(set_auth("validAfter", 0)), R_PAYLOAD)
    case("nonce_wrong_length", "a 31-byte nonce",
         official("nonce_wrong_length").changed(set_auth("nonce", "0x" + "ab" * 31)), R_PAYLOAD)
    case("nonce_without_0x", "the nonce's 64 hex digits without 0x",
         official("nonce_without_0x").changed(lambda d: d["payload"]["authorization"].__setitem__(
             "nonce", d["payload"]["authorization"]["nonce"][2:])), R_PAYLOAD)
    case("from_malformed", "from is \"0x1234\"", official("from_malformed").changed(set_auth("from", "0x1234")),
         R_PAYLOAD)
    case("to_malformed", "to has 41 hex digits",
         official("to_malformed").changed(set_auth("to", PAY_TO + "0")), R_PAYLOAD)
    case("missing_authorization", "payload without authorization",
         official("missing_authorization").changed(lambda d: d["payload"].pop("authorization")), R_PAYLOAD)
    case("payload_not_object", "payload is a string",
         official("payload_not_object").changed(lambda d: d.__setitem__("payload", "0x")), R_PAYLOAD)
    case("missing_accepted", "v2 payload without accepted",
         official("missing_accepted").changed(lambda d: d.pop("accepted")), R_PAYLOAD)
    case("v1_missing_network", "v1 payload without network",
         official("v1_missing_network", version=1).changed(lambda d: d.pop("network")), R_PAYLOAD)
    add("both_headers", "a valid v2 and a valid v1 header on one request",
        {**official("both_headers_v2").header(), **official("both_headers_v1", version=1).header()}, R_PAYLOAD)
    return cases


# --------------------------------------------------------------------------------------------
# Keccak vectors
# --------------------------------------------------------------------------------------------

def keccak_vectors() -> dict:
    inputs = [b"abc" if n == 3 else bytes((i * 7 + 3) % 256 for i in range(n))
              for n in (0, 1, 3, 31, 32, 64, 135, 136, 137, 200, 271, 272, 273, 1000)]
    inputs.append(b"The quick brown fox jumps over the lazy dog")
    vectors = []
    for data in inputs:
        digest = pycryptodome_keccak.new(digest_bits=256, data=data).digest()
        assert digest == eth_hash_keccak(data)
        vectors.append({"inputHex": "0x" + data.hex(), "hash": "0x" + digest.hex()})
    assert vectors[0]["hash"] == "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert vectors[-1]["hash"] == "0x4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15"
    return {"generator": GENERATOR, "function": "Keccak-256 (pycryptodome, cross-checked with eth_hash)",
            "vectors": vectors}


# --------------------------------------------------------------------------------------------
# --check: what the SDK's own models and facilitator make of each case
# --------------------------------------------------------------------------------------------

class StubFacilitatorSigner:
    """Just enough chain for the SDK facilitator's local checks: the token has code, payers don't."""

    def get_addresses(self) -> list[str]:
        return [OTHER]

    def get_code(self, address: str) -> bytes:
        return b"\x60\x80" if address.lower() == SERVER["asset"].lower() else b""

    def read_contract(self, *args, **kwargs):
        raise RuntimeError("no chain")


def sdk_opinion(headers: dict[str, str]) -> str:
    from x402.http.utils import decode_payment_signature_header
    from x402.mechanisms.evm.exact.facilitator import ExactEvmScheme as Facilitator
    from x402.mechanisms.evm.exact.v1.facilitator import ExactEvmSchemeV1 as FacilitatorV1

    if len(headers) != 1:
        return "n/a (two headers: transport rule)"
    ((name, value),) = headers.items()
    try:
        payload = decode_payment_signature_header(value)
    except Exception as error:
        return f"models refuse: {type(error).__name__}"
    try:
        with mock.patch("time.time", return_value=float(NOW)):
            if isinstance(payload, PaymentPayloadV1):
                result = FacilitatorV1(StubFacilitatorSigner())._verify(payload, v1_requirements(), simulate=False)
            else:
                result = Facilitator(StubFacilitatorSigner())._verify(payload, v2_requirements(), simulate=False)[0]
    except Exception as error:
        return f"facilitator raises {type(error).__name__}"
    where = "" if (name == V2) == isinstance(payload, PaymentPayload) else " (header name ignored)"
    return ("valid" if result.is_valid else str(result.invalid_reason)) + where


def check(cases: list[dict]) -> None:
    print(f"{'case':34} {'expected':58} SDK facilitator (local checks only, now={NOW})")
    for c in cases:
        expected = "valid" if c["expect"]["valid"] else c["expect"]["reason"]
        opinion = sdk_opinion(c["headers"])
        mark = " " if opinion.split(" ")[0] == expected else "*"
        print(f"{mark}{c['name']:33} {expected:58} {opinion}")
    print("* = the SDK facilitator differs (it checks less: see Tests/Vectors/README.md)")


def main(argv: list[str]) -> int:
    assert getattr(x402, "__version__", SDK_VERSION) == SDK_VERSION, f"want x402 {SDK_VERSION}"
    cases = build_cases()
    document = {
        "generator": GENERATOR,
        "sdk": f"x402 {SDK_VERSION}",
        "now": NOW,
        "server": SERVER,
        "payers": [{"address": a.address, "privateKey": k} for a, k in zip(PAYERS, PAYER_KEYS)],
        "cases": cases,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vectors.json").write_text(json.dumps(document, indent=1) + "\n")
    (OUT / "keccak.json").write_text(json.dumps(keccak_vectors(), indent=1) + "\n")
    invalid = sum(1 for c in cases if not c["expect"]["valid"])
    print(f"wrote {len(cases)} cases ({len(cases) - invalid} valid, {invalid} invalid) to "
          f"{(OUT / 'vectors.json').relative_to(ROOT)} and keccak.json")
    if "--check" in argv:
        check(cases)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
