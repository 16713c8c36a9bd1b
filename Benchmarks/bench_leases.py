"""The lease and Sign-In-With-X rows of `make bench` (Benchmarks/bench.py calls these):

  lease-valid request   every request carries the same valid lease token (X-X402-Lease): the
                        sidecar checks it in process and asks its store (revocation)
  SIWX re-entry         every request carries a fresh SIGN-IN-WITH-X proof from a wallet that paid
                        once; proofs are made beforehand by the official SDK's client extension
"""
import asyncio
import base64
import os
import time

import jwt
import requests
from eth_account import Account

LEASE_SECRET = os.urandom(32)
LEASE_KEY_LINE = "bench HS256 " + base64.urlsafe_b64encode(LEASE_SECRET).rstrip(b"=").decode()
SIWX_SECRET = os.urandom(32).hex()

ROUTES = """\
  leased: {description: "opened by a lease", price: "0.01"}
  leasepass:
    description: "the lease"
    price: "0.05"
    lease: {opens: [leased], seconds: 3600}
  members:
    description: "pay once, sign in after"
    price: "0.01"
    sign_in_with_x: {access_seconds: 3600}
"""

TOP = f"""leases:
  keys: ["{LEASE_KEY_LINE}"]
sign_in_with_x:
  nonce_secret: "{SIWX_SECRET}"
"""

LOCATIONS = """\
        location /leased {{ set $x402_route leased; include {run}/x402/protect.conf; access_log off; try_files /ok.json =404; }}
        location /members {{ set $x402_route members; include {run}/x402/protect.conf; access_log off; try_files /ok.json =404; }}
"""


def lease_token(devnet):
    now = int(time.time())
    claims = {"iss": "x402-nginx", "sub": devnet.info["payers"][0]["address"].lower(), "aud": "bench.local",
              "jti": os.urandom(16).hex(), "iat": now, "nbf": now, "exp": now + 3600, "x402_routes": ["leased"],
              "x402_lease": "leasepass", "x402_amount": "50000", "x402_asset": devnet.info["token"].lower(),
              "x402_network": "eip155:84532", "x402_payment_id": os.urandom(16).hex()}
    return jwt.encode(claims, LEASE_SECRET, algorithm="HS256", headers={"kid": "bench"})


def signin_proofs(devnet, base, count, path):
    """Pays `members` once (the official client), then makes `count` proofs with the SDK's SIWX
    client extension, each for a fresh challenge of ours."""
    from x402 import x402ClientSync
    from x402.extensions.sign_in_with_x import CreateSIWxClientExtensionOptions, create_siwx_client_extension
    from x402.http.clients import wrapRequestsWithPayment
    from x402.http.utils import decode_payment_required_header
    from x402.mechanisms.evm.exact.register import register_exact_evm_client
    from x402.schemas.hooks import PaymentRequiredContext

    key = devnet.info["payers"][1]["privateKey"]
    account = Account.from_key(key)
    client = register_exact_evm_client(x402ClientSync().set_spend_controls(False), account)
    session = wrapRequestsWithPayment(requests.Session(), client)
    paid = session.get(base + "/members", headers={"Host": "bench.local"})
    assert paid.status_code == 200, paid.status_code
    extension = create_siwx_client_extension(CreateSIWxClientExtensionOptions(signers=[account]))
    plain = requests.Session()

    async def make():
        proofs = []
        for _ in range(count):
            challenge = plain.get(base + "/members", headers={"Host": "bench.local"})
            required = decode_payment_required_header(challenge.headers["PAYMENT-REQUIRED"])
            context = PaymentRequiredContext(payment_required=required, request_url="http://bench.local/members")
            result = await extension.transport_hooks.http.on_payment_required(None, context)
            proofs.append(next(iter(result.headers.values())))
        return proofs

    proofs = asyncio.run(make())
    with open(path, "w") as f:
        f.write("\n".join(proofs) + "\n")
    return path


def scenarios(bench, workers, base, store):
    """The rows, each bracketed by anchor runs like every other scenario."""
    bench.scenario(f"lease-valid request ({store})", workers, base,
                   dict(TARGET="/leased", HEADER_NAME="X-X402-Lease", HEADER_VALUE=lease_token(bench.devnet)), 200)
    if not bench.wanted(f"SIWX re-entry ({store})"):
        return
    path = os.path.join(os.path.dirname(bench.devnet.run_dir), f"siwx-{store}-{workers}.txt")
    signin_proofs(bench.devnet, base, bench.args.siwx_proofs, path)
    # Every proof is single-use and costs the SDK about a millisecond to make: a short run, so that
    # the proofs outlast it (wrk's threads stop when their share runs out, which would count idle time).
    before = bench.last_anchor
    figures = bench.wrk(base + "/members", duration=2, TARGET="/members", PAYMENTS=path,
                        PAYMENTS_HEADER="SIGN-IN-WITH-X")
    bench.record(f"SIWX re-entry ({store})", workers, figures, 200,
                 note="" if figures["requests"] < bench.args.siwx_proofs else "proofs ran out: a lower bound")
    bench.results[-1]["anchor_rps"] = (before + bench.anchor(base, workers)["rps"]) / 2
