#!/usr/bin/env python3
"""Pays the sidecar's /authorize with the official x402 Python client, as Nginx would ask it.

Shows: the challenge (v2 PAYMENT-REQUIRED and v1 body), a v2 and a v1 payment accepted, a replay
refused with the used-nonce reason, and a tampered payment refused with the signature reason.
"""
import base64
import json
import sys

import requests
from eth_account import Account
from x402 import x402ClientSync
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header
from x402.mechanisms.evm.exact.register import register_exact_evm_client
from x402.schemas.v1 import PaymentRequiredV1

SIDECAR = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8402"
PAYER_KEY = "0x" + "11" * 32   # a throwaway demo key; nothing is settled on a real chain here
FORWARDED = {"X-X402-Route": "weather", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com",
             "X-Original-URI": "/weather?city=Paris", "X-Original-Method": "GET"}


def ask(extra=None, request_id="demo"):
    headers = dict(FORWARDED, **{"X-Request-ID": request_id}, **(extra or {}))
    return requests.get(f"{SIDECAR}/authorize", headers=headers, timeout=5)


def show(title, response):
    print(f"\n== {title}")
    print(f"   HTTP {response.status_code}  X-X402-Status: {response.headers.get('X-X402-Status')}"
          + (f"  reason: {response.headers['X-X402-Reason']}" if "X-X402-Reason" in response.headers else ""))
    for name in ["X-X402-Payer", "X-X402-Amount", "X-X402-Network", "X-X402-Payment-Id"]:
        if name in response.headers:
            print(f"   {name}: {response.headers[name]}")


def main():
    payer = Account.from_key(PAYER_KEY)
    client = register_exact_evm_client(x402ClientSync().set_spend_controls(False), payer)

    unpaid = ask(request_id="demo-unpaid")
    show("1. no payment", unpaid)
    required = decode_payment_required_header(unpaid.headers["PAYMENT-REQUIRED"])
    option = required.accepts[0]
    print(f"   v2 challenge: {option.amount} atomic units of {option.asset} on {option.network} to {option.pay_to}")
    print(f"   resource.url: {required.resource.url}")
    v1_body = json.loads(unpaid.text)
    print(f"   v1 body: x402Version={v1_body['x402Version']}, network={v1_body['accepts'][0]['network']}, "
          f"maxAmountRequired={v1_body['accepts'][0]['maxAmountRequired']}")

    header = encode_payment_signature_header(client.create_payment_payload(required))
    paid = ask({"PAYMENT-SIGNATURE": header}, request_id="demo-paid-v2")
    show(f"2. paid with the official client, v2 (payer {payer.address})", paid)

    replay = ask({"PAYMENT-SIGNATURE": header}, request_id="demo-replay")
    show("3. the same PAYMENT-SIGNATURE again", replay)

    v1_required = PaymentRequiredV1.model_validate(v1_body)
    v1_header = encode_payment_signature_header(client.create_payment_payload(v1_required))
    show("4. paid with the official client, v1 (X-PAYMENT)", ask({"X-PAYMENT": v1_header}, request_id="demo-paid-v1"))

    document = json.loads(base64.b64decode(encode_payment_signature_header(client.create_payment_payload(required))))
    document["payload"]["authorization"]["nonce"] = "0x" + "ab" * 32
    tampered = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
    show("5. a payment whose nonce was changed after signing", ask({"PAYMENT-SIGNATURE": tampered}, "demo-tampered"))

    ok = (unpaid.status_code == 401 and paid.status_code == 200 and replay.status_code == 401
          and replay.headers.get("X-X402-Reason") == "invalid_exact_evm_nonce_already_used")
    print("\n" + ("demo OK" if ok else "demo FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
