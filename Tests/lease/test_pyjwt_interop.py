"""Lease tokens between our Swift code and ordinary JWT code (PyJWT + cryptography), both ways,
through the `x402-sidecar lease` subcommands. (PyJWT-made tokens verified by the Swift tests are in
Tests/X402SidecarTests/Fixtures/leases.json, from Tests/Vectors/generate_leases.py.)"""
import base64
import json
import os
import pathlib
import secrets
import subprocess
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("X402_SIDECAR_BIN", str(ROOT / ".build" / "debug" / "x402-sidecar"))
HOST = "api.example.com"

if not os.path.exists(BIN):
    if os.environ.get("X402_REQUIRE_INTEGRATION") == "1":
        raise RuntimeError(f"x402-sidecar binary not found at {BIN}")
    pytest.skip(f"x402-sidecar binary not built ({BIN})", allow_module_level=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sidecar(*args, check=True):
    result = subprocess.run([BIN, "lease", *args], capture_output=True, text=True, timeout=30)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


@pytest.fixture
def keys(tmp_path):
    secret = secrets.token_bytes(48)
    ed_key = Ed25519PrivateKey.generate()
    seed = ed_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    path = tmp_path / "lease-keys"
    path.write_text(f"# test keys\ned-1 EdDSA {b64url(seed)}\nhs-1 HS256 {b64url(secret)}\n")
    return {"path": str(path), "hs-1": secret, "ed-1": ed_key}


def claims(**changes):
    now = int(time.time())
    base = {"iss": "x402-nginx", "sub": "0x" + secrets.token_hex(20), "aud": HOST, "jti": secrets.token_hex(16),
            "iat": now, "nbf": now, "exp": now + 600, "x402_routes": ["stream", "socket"],
            "x402_lease": "stream-hour", "x402_amount": "250000",
            "x402_asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "x402_network": "eip155:84532",
            "x402_payment_id": secrets.token_hex(16), "x402_tx": "0x" + secrets.token_hex(32),
            "x402_max_requests": 10, "x402_max_concurrent": 2}
    base.update(changes)
    return base


@pytest.mark.parametrize("kid,alg", [("hs-1", "HS256"), ("ed-1", "EdDSA")])
def test_pyjwt_verifies_tokens_we_sign(keys, kid, alg):
    wanted = claims()
    token = sidecar("sign", "--key-file", keys["path"], "--signing-key", kid, "--claims", json.dumps(wanted)).stdout.strip()
    assert jwt.get_unverified_header(token) == {"alg": alg, "typ": "JWT", "kid": kid}
    assert json.loads(unb64url(token.split(".")[0])) == {"alg": alg, "typ": "JWT", "kid": kid}
    key = keys[kid] if alg == "HS256" else keys[kid].public_key()
    decoded = jwt.decode(token, key, algorithms=[alg], audience=HOST, issuer="x402-nginx",
                         options={"require": ["exp", "nbf", "iat", "jti", "sub"]})
    assert decoded == wanted
    assert "=" not in token and "+" not in token and "/" not in token
    # An ordinary verifier pinned to the other algorithm refuses it (no HS/EdDSA confusion).
    other = ["EdDSA"] if alg == "HS256" else ["HS256"]
    with pytest.raises(jwt.exceptions.InvalidTokenError):
        jwt.decode(token, key, algorithms=other, audience=HOST)


def test_nginx_key_file_holds_the_secret_and_the_raw_public_key(keys):
    lines = [line for line in sidecar("nginx-keys", "--key-file", keys["path"]).stdout.splitlines()
             if line and not line.startswith("#")]
    ed_line, hs_line = (line.split(" ") for line in lines)
    assert ed_line[:2] == ["ed-1", "EdDSA"] and hs_line[:2] == ["hs-1", "HS256"]
    public = keys["ed-1"].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert unb64url(ed_line[2]) == public and len(public) == 32
    assert unb64url(hs_line[2]) == keys["hs-1"]
    # The published public key verifies what we sign.
    token = sidecar("sign", "--key-file", keys["path"], "--claims", json.dumps(claims())).stdout.strip()
    jwt.decode(token, Ed25519PublicKey.from_public_bytes(unb64url(ed_line[2])), algorithms=["EdDSA"], audience=HOST)


@pytest.mark.parametrize("kid,alg", [("hs-1", "HS256"), ("ed-1", "EdDSA")])
def test_we_verify_what_pyjwt_signs_and_refuse_tampering(keys, kid, alg):
    wanted = claims(x402_routes=["socket"])
    token = jwt.encode(wanted, keys[kid], algorithm=alg, headers={"kid": kid})
    result = sidecar("verify", "--key-file", keys["path"], "--route", "socket", "--host", "API.example.com:8443", token)
    assert json.loads(result.stdout) == wanted
    refused = sidecar("verify", "--key-file", keys["path"], "--route", "stream", "--host", HOST, token, check=False)
    assert refused.returncode == 1 and refused.stdout.startswith("lease_wrong_route:")
    header, payload, signature = token.split(".")
    forged = b64url(json.dumps({**wanted, "x402_routes": ["stream"]}).encode())
    refused = sidecar("verify", "--key-file", keys["path"], "--route", "stream", "--host", HOST,
                      f"{header}.{forged}.{signature}", check=False)
    assert refused.returncode == 1 and refused.stdout.startswith("lease_bad_signature:")


def test_keygen_lines_load_and_sign(tmp_path):
    path = tmp_path / "generated"
    lines = [sidecar("keygen", "--alg", alg, "--kid", f"k-{alg}").stdout.strip() for alg in ("EdDSA", "HS256")]
    path.write_text("\n".join(lines) + "\n")
    assert lines[0].startswith("k-EdDSA EdDSA ") and len(unb64url(lines[0].split(" ")[2])) == 32
    assert lines[1].startswith("k-HS256 HS256 ") and len(unb64url(lines[1].split(" ")[2])) == 32
    seed = unb64url(lines[0].split(" ")[2])
    token = sidecar("sign", "--key-file", str(path), "--claims", json.dumps(claims())).stdout.strip()
    jwt.decode(token, Ed25519PrivateKey.from_private_bytes(seed).public_key(), algorithms=["EdDSA"], audience=HOST)
    assert sidecar("keygen", "--alg", "RS256", "--kid", "x", check=False).returncode != 0
