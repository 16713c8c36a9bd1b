"""Coinbase CDP API-key JWTs from the sidecar, checked with PyJWT + cryptography (an independent
implementation): both key types, the claims CDP expects, and the signature."""
import base64
import os
import subprocess
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from stack import SIDECAR_BIN

URL = "https://api.cdp.coinbase.com/platform/v2/x402/settle"


def ec_key():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    return pem.replace("\n", "\\n"), key.public_key(), "ES256"  # as an env file would carry it


def ed_key():
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed + public).decode(), key.public_key(), "EdDSA"


@pytest.mark.parametrize("make_key", [ec_key, ed_key], ids=["ec-p256", "ed25519"])
def test_cdp_token_verifies_with_pyjwt(make_key):
    secret, public, algorithm = make_key()
    env = dict(os.environ, CDP_API_KEY_ID="organizations/org-1/apiKeys/key-1", CDP_API_KEY_SECRET=secret)
    token = subprocess.run([SIDECAR_BIN, "cdp-token", "--method", "POST", "--url", URL], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == algorithm and header["typ"] == "JWT"
    assert header["kid"] == "organizations/org-1/apiKeys/key-1"
    assert len(header["nonce"]) == 16 and header["nonce"].isdigit()
    claims = jwt.decode(token, public, algorithms=[algorithm], options={"verify_aud": False})
    assert claims["sub"] == "organizations/org-1/apiKeys/key-1" and claims["iss"] == "cdp"
    assert claims["uris"] == ["POST api.cdp.coinbase.com/platform/v2/x402/settle"]
    assert abs(claims["nbf"] - time.time()) < 5 and claims["exp"] - claims["nbf"] == 120
    # A different key does not verify it.
    _, other, _ = make_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=[algorithm], options={"verify_aud": False})


def test_unusable_secret_is_refused():
    env = dict(os.environ, CDP_API_KEY_ID="k", CDP_API_KEY_SECRET="not a key")
    result = subprocess.run([SIDECAR_BIN, "cdp-token"], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "neither an EC P-256 PEM key nor a base64 Ed25519 key" in result.stderr
