"""Payments made with the official x402 Python SDK (the reference payer)."""
import base64
import json

from eth_account import Account
from x402 import x402Client, x402ClientSync
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header
from x402.mechanisms.evm.exact.register import register_exact_evm_client
from x402.schemas.v1 import PaymentRequiredV1


def sync_client(key):
    return register_exact_evm_client(x402ClientSync().set_spend_controls(False), Account.from_key(key))


def async_client(key):
    return register_exact_evm_client(x402Client().set_spend_controls(False), Account.from_key(key))


def v2_header(client, response, edit=None):
    """PAYMENT-SIGNATURE for the challenge in `response` (a 402). `edit(requirement)` may change
    the chosen requirement before signing (to make wrong payments)."""
    required = decode_payment_required_header(response.headers["PAYMENT-REQUIRED"])
    if edit:
        edit(required.accepts[0])
    return encode_payment_signature_header(client.create_payment_payload(required))


def v1_header(client, response):
    required = PaymentRequiredV1.model_validate(json.loads(response.text))
    return encode_payment_signature_header(client.create_payment_payload(required))


def decode(header):
    return json.loads(base64.b64decode(header))


def encode(document):
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
