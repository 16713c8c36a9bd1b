#!/usr/bin/env python3
"""`make demo`: the devnet, a demo backend, the sidecar (embedded store) and nginx with our include
files, all on 127.0.0.1; then a paying client (the official x402 SDK) shows 402 -> payment -> 200
with the transaction hash and the balances before and after. Leaves everything running."""
import base64
import json
import os
import subprocess
import sys

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))
from payments import sync_client  # noqa: E402
from stack import BACKEND_SECRET, Devnet, Nginx, Sidecar, free_port, wait_for  # noqa: E402
from x402.http.clients import wrapRequestsWithPayment  # noqa: E402

RUN = os.path.join(ROOT, ".run", "demo")


def usdc(units):
    return f"{units / 1e6:.6f} USDC"


def main():
    os.makedirs(RUN, exist_ok=True)
    print("== devnet: a local EVM (chain 84532) with our EIP-3009 USDC and the official x402 facilitator")
    devnet = Devnet(os.path.join(RUN, "devnet"))
    info = devnet.info
    print(f"   rpc {info['rpcUrl']}   facilitator {info['facilitatorUrl']}   token {info['token']}")

    backend_port = free_port()
    with open(os.path.join(RUN, "backend.log"), "a") as log:
        backend = subprocess.Popen([sys.executable, os.path.join(ROOT, "deploy", "demo", "backend.py"),
                                    str(backend_port), BACKEND_SECRET], stdout=log, stderr=log, start_new_session=True)
    with open(os.path.join(RUN, "backend.pid"), "w") as f:
        f.write(str(backend.pid))
    print(f"== demo backend on 127.0.0.1:{backend_port} (checks the sidecar's HMAC on every request)")

    sidecar = Sidecar(RUN, devnet).start()
    with open(os.path.join(RUN, "sidecar.pid"), "w") as f:
        f.write(str(sidecar.process.pid))
    print(f"== sidecar: unix:{RUN}/x402.sock and {sidecar.url}, embedded journal, log {sidecar.log_path}")

    nginx = Nginx(RUN, backend_port, port=int(os.environ.get("X402_DEMO_PORT", "8402")))
    nginx.start()
    print(f"== nginx on {nginx.url}: /before, /weather, /after, /facilitated are protected (nginx -t passed)")

    payer = info["payers"][0]
    pay_to = info["payTo"]["address"]
    url = nginx.url + "/before?city=Paris"

    print(f"\n$ curl -i {url}")
    unpaid = requests.get(url)
    required = json.loads(base64.b64decode(unpaid.headers["PAYMENT-REQUIRED"]))
    option = required["accepts"][0]
    print(f"   HTTP {unpaid.status_code}   PAYMENT-REQUIRED: {option['amount']} units of {option['asset']} "
          f"on {option['network']} to {option['payTo']}")

    payer_before, pay_to_before = devnet.balance(payer["address"]), devnet.balance(pay_to)
    print(f"\n== paying with the official x402 Python client (payer {payer['address']})")
    session = wrapRequestsWithPayment(requests.Session(), sync_client(payer["privateKey"]))
    paid = session.get(url)
    settled = json.loads(base64.b64decode(paid.headers["PAYMENT-RESPONSE"]))
    print(f"   HTTP {paid.status_code}   body {paid.text.strip()}")
    print(f"   PAYMENT-RESPONSE: success={settled['success']} transaction={settled['transaction']}")
    payer_after, pay_to_after = devnet.balance(payer["address"]), devnet.balance(pay_to)
    print(f"   payer  {usdc(payer_before)} -> {usdc(payer_after)}")
    print(f"   payTo  {usdc(pay_to_before)} -> {usdc(pay_to_after)}")

    header = paid.request.headers.get("PAYMENT-SIGNATURE")
    replay = requests.get(url, headers={"PAYMENT-SIGNATURE": header})
    print(f"\n== the same PAYMENT-SIGNATURE again: HTTP {replay.status_code}, "
          f"reason {replay.headers.get('X-X402-Reason')}")

    ok = (unpaid.status_code == 402 and paid.status_code == 200 and replay.status_code == 402
          and payer_before - payer_after == int(option["amount"]) and pay_to_after - pay_to_before == int(option["amount"]))
    hints = [(f"curl -i {nginx.url}/weather", "a 402 challenge"),
             (f"tail -f {RUN}/x402.log | jq .", "nginx's JSON log (x402_json): every 200, 402, 429, 503"),
             (f"tail -f {sidecar.log_path} | jq .", "the sidecar's decisions and settlements"),
             (f"curl -s {sidecar.url}/metrics", "Prometheus metrics"),
             ("make demo-stop", "stop it all")]
    width = max(len(command) for command, _ in hints) + 2
    print(f"\n{'demo OK' if ok else 'demo FAILED'}. Everything is still running:")
    for command, what in hints:
        print(f"  {command.ljust(width)}# {what}")
    return 0 if ok else 1


def stop():
    conf = os.path.join(RUN, "nginx.conf")
    if os.path.exists(os.path.join(RUN, "nginx.pid")):
        subprocess.run(["nginx", "-c", conf, "-p", RUN, "-s", "quit"], check=False)
        print("nginx stopped")
    for name in ("sidecar", "backend"):
        pid_file = os.path.join(RUN, f"{name}.pid")
        if os.path.exists(pid_file):
            try:
                os.kill(int(open(pid_file).read()), 15)
                print(f"{name} stopped")
            except ProcessLookupError:
                pass
            os.unlink(pid_file)
    subprocess.run([os.path.join(ROOT, "deploy", "devnet", "devnet.sh"), "stop", os.path.join(RUN, "devnet")],
                   check=False)
    print("devnet stopped")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "stop":
        stop()
    else:
        sys.exit(main())
