"""The peer in the benchmark: the official x402 FastAPI middleware (x402 2.25.0) protecting the
same tiny handler, verifying and settling through the devnet's facilitator.
Environment: DEVNET_INFO (the devnet's info JSON), PRICE_UNITS (default 10000)."""
import json
import os

from fastapi import FastAPI
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.middleware.fastapi import payment_middleware
from x402.http.types import PaymentOption, RouteConfig
from x402.mechanisms.evm.exact.register import register_exact_evm_server
from x402.schemas.base import AssetAmount
from x402.server import x402ResourceServer

with open(os.environ["DEVNET_INFO"]) as f:
    info = json.load(f)

server = register_exact_evm_server(
    x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=info["facilitatorUrl"]))), "eip155:84532")
routes = {
    "GET /paid": RouteConfig(
        accepts=PaymentOption(
            scheme="exact", network="eip155:84532", pay_to=info["payTo"]["address"],
            price=AssetAmount(amount=os.environ.get("PRICE_UNITS", "10000"), asset=info["token"],
                              extra={"name": "USDC", "version": "2"}),
            max_timeout_seconds=int(os.environ.get("MAX_TIMEOUT", "3000"))),
        description="bench", mime_type="application/json"),
}
app = FastAPI()
app.middleware("http")(payment_middleware(routes, server))


@app.get("/paid")
async def paid():
    return {"ok": True}


@app.get("/free")
async def free():
    return {"ok": True}
