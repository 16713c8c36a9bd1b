"""Our local verifier and the official facilitator judge the same payments.

The vector generator (Tests/Vectors/generate.py, built on the official SDK) makes its 91 cases
again for the devnet: its token, its payTo, two funded payers and the current time. Each case is
put to our sidecar's /authorize and to the official facilitator's /verify (the devnet's), and the
verdicts are compared. Where we are deliberately stricter than the SDK, the case is listed below
with the reason; every other case must get the same verdict from both.
"""
import base64
import binascii
import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest
import requests
from stack import ROOT, SIDECAR_BIN, free_port, wait_for

# Payments the official facilitator accepts and we refuse, on purpose: we parse strictly (a
# gateway is an attack surface), check the client's `accepted` echo against what the route
# advertises, bind the header name to the version, refuse malleable signature encodings, and cap
# how far in the future `validBefore` may lie (it bounds how long the nonce ledger must remember).
STRICTER = {
    # header name and version must agree; unknown versions are refused
    "v1_payload_in_v2_header", "v2_payload_in_v1_header", "unknown_version_3", "version_as_string",
    "missing_x402_version",
    # strict JSON and size limits: 8192-byte header, depth 16, no duplicate keys
    "oversized_header", "deeply_nested_json", "json_depth_17", "duplicate_key",
    # canonical decimal strings and 0x-prefixed hex only
    "value_as_json_number", "value_leading_zero", "value_with_space", "valid_after_as_json_number",
    "nonce_without_0x", "signature_without_0x",
    # v must be 27 or 28
    "v2_bad_v_0", "v2_bad_v_1",
    # the echo must match the route (the official facilitator only sees the requirements it is given)
    "v2_echo_pay_to_mismatch", "v2_echo_amount_mismatch", "v2_wrong_asset_echo",
    # validBefore at most now + maxTimeoutSeconds + 600
    "v2_valid_before_too_far",
}

# Exactly at a time limit when generated; a second later they are on the other side. VectorTests
# checks them against a fixed clock instead.
TIME_BOUNDARY = {"v2_valid_before_min_boundary", "v2_valid_before_max_boundary"}

CONFIG = """\
server:
  listen: ["127.0.0.1:{port}"]
log: {{level: warning, decisions: false}}
defaults: {{pay_to: "{pay_to}", network: devnet, max_timeout_seconds: 60}}
networks:
  devnet:
    chain_id: 84532
    v1_name: base-sepolia
    asset: {{address: "{token}", name: "USDC", version: "2", decimals: 6}}
routes:
  weather: {{description: "Weather", price: "0.01"}}
stores: {{ledger: memory}}
"""


def chain_time(info):
    block = requests.post(info["rpcUrl"], json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber",
                                                "params": ["latest", False]}).json()["result"]
    return int(block["timestamp"], 16)


def load_generator(info):
    # eth-tester gives every transaction its own block, one second after its parent at least, so
    # after a burst of settlements the chain's clock runs ahead of the wall clock. The official
    # facilitator simulates at the chain's time and checks validBefore against the wall clock;
    # sign for the later of the two (our verifier allows that much skew).
    now = max(int(time.time()), chain_time(info))
    os.environ.update({
        "X402_VECTORS_NOW": str(now),
        "X402_VECTORS_ASSET": info["token"],
        "X402_VECTORS_PAY_TO": info["payTo"]["address"],
        "X402_VECTORS_PAYER_KEYS": ",".join(p["privateKey"] for p in info["payers"][:2]),
    })
    spec = importlib.util.spec_from_file_location("x402_vectors", os.path.join(ROOT, "Tests", "Vectors", "generate.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["x402_vectors"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def checksummed(document):
    """What the sidecar forwards to a facilitator: authorization addresses in EIP-55 form
    (SettlementJob.checksummingAddresses; web3.py in the official facilitator refuses lowercase)."""
    from eth_utils import is_hex_address, to_checksum_address
    authorization = (document.get("payload") or {}).get("authorization") if isinstance(document.get("payload"), dict) else None
    if isinstance(authorization, dict):
        for field in ("from", "to"):
            if isinstance(authorization.get(field), str) and is_hex_address(authorization[field]):
                authorization[field] = to_checksum_address(authorization[field])
    return document


def facilitator_verdict(info, generator, headers):
    (name, value), = headers.items() if len(headers) == 1 else [(None, None)]
    if name is None:
        return False, "invalid_payload"  # two payment headers: a server refuses before asking
    try:
        document = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return False, "invalid_payload"
    if not isinstance(document, dict):
        return False, "invalid_payload"
    document = checksummed(document)
    version = document.get("x402Version")
    server = generator.SERVER
    if version == 1:
        requirements = {"scheme": "exact", "network": "base-sepolia", "maxAmountRequired": server["amount"],
                        "resource": server["resource"]["url"], "description": server["resource"]["description"],
                        "mimeType": "application/json", "payTo": server["payTo"], "maxTimeoutSeconds": 60,
                        "asset": server["asset"], "extra": server["extra"]}
    else:
        requirements = {"scheme": "exact", "network": "eip155:84532", "amount": server["amount"],
                        "asset": server["asset"], "payTo": server["payTo"], "maxTimeoutSeconds": 60,
                        "extra": server["extra"]}
    answer = requests.post(info["facilitatorUrl"] + "/verify", timeout=30, json={
        "x402Version": version if version in (1, 2) else 2, "paymentPayload": document,
        "paymentRequirements": requirements})
    if answer.status_code == 400:
        return False, "invalid_payload"
    body = answer.json()
    return bool(body.get("isValid")), body.get("invalidReason")


def test_local_verifier_agrees_with_the_official_facilitator(devnet, run_root):
    info = devnet.info
    generator = load_generator(info)
    cases = generator.build_cases()
    run = os.path.join(run_root, "verdicts")
    os.makedirs(run, exist_ok=True)
    port = free_port()
    config = os.path.join(run, "x402.yaml")
    with open(config, "w") as f:
        f.write(CONFIG.format(port=port, pay_to=info["payTo"]["address"], token=info["token"]))
    with open(os.path.join(run, "sidecar.log"), "w") as log:
        sidecar = subprocess.Popen([SIDECAR_BIN, "serve", "--config", config, "--allow-memory-ledger"],
                                   stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(url + "/readyz", timeout=1).status_code == 200, what="sidecar")
        rows, disagreements = [], []
        skipped = []
        for case in cases:
            # Cases at a time limit flip while the test runs; VectorTests checks them with a fixed clock.
            # (Judged at the chain's time and at the wall clock's: both take part.)
            wall = int(time.time())
            verdicts = {generator.reference_verdict(case["headers"], now=base + d)[:2]
                        for base in (generator.NOW, wall) for d in range(-2, 40, 3)}
            if len(verdicts) > 1 or case["name"] in TIME_BOUNDARY:
                skipped.append(case["name"])
                continue
            answer = requests.get(url + "/authorize", headers=dict(case["headers"], **{"X-X402-Route": "weather"}))
            ours = (answer.status_code == 200, answer.headers.get("X-X402-Reason"))
            theirs = facilitator_verdict(info, generator, case["headers"])
            expected = case["expect"]["valid"]
            assert ours[0] == expected, f"{case['name']}: our verdict {ours} differs from the vector's {case['expect']}"
            rows.append((case["name"], ours, theirs))
            # Money safety: nothing we accept may be refused by the official facilitator; and
            # whatever it accepts that we refuse must be a documented strictness.
            if ours[0] and not theirs[0]:
                disagreements.append((case["name"], ours, theirs))
            if theirs[0] and not ours[0] and case["name"] not in STRICTER:
                disagreements.append((case["name"], ours, theirs))
        agree = sum(1 for _, o, t in rows if o[0] == t[0])
        same_reason = sum(1 for _, o, t in rows if not o[0] and not t[0] and o[1] == t[1])
        print(f"\nskipped (time limits): {skipped}")
        print(f"{len(rows)} cases: same verdict {agree}; both refuse with the same reason {same_reason}; "
              f"documented stricter cases {sum(1 for n, o, t in rows if n in STRICTER and o[0] != t[0])}")
        for name, ours, theirs in rows:
            if ours != theirs:
                print(f"  {name:40s} ours={ours} official={theirs}")
        assert not disagreements, f"verdicts differ: {disagreements}"
    finally:
        sidecar.terminate()
        sidecar.wait(10)
