"""Starts the real parts on 127.0.0.1 for end-to-end tests and the demo: the devnet (or reuses
one named by X402_TEST_DEVNET_INFO), the sidecar binary, nginx with our include files (the stock
integration, nginx/x402/) or with ngx_http_x402_module (nginx/module/), and a test backend that
records what it receives and checks the sidecar's HMAC."""
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from eth_abi import encode as abi_encode
from eth_utils import keccak

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NGINX_BIN = os.environ.get("X402_NGINX", shutil.which("nginx") or "/usr/sbin/nginx")
SIDECAR_BIN = os.environ.get("X402_SIDECAR_BIN", os.path.join(ROOT, ".build", "debug", "x402-sidecar"))
BACKEND_SECRET = "e2e-backend-secret-0123456789abcdef"
MODULE_DIR = os.path.join(ROOT, "nginx", "module")
MODULE_SO = os.environ.get("X402_MODULE_SO", os.path.join(MODULE_DIR, "build", "ngx_http_x402_module.so"))
# The two ways to protect a location (README, "Protect a location").
INTEGRATIONS = ("stock", "module")

sys.path.insert(0, os.path.join(ROOT, "deploy", "demo"))
from streaming import serve_sse, serve_websocket_echo  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


# ---------------------------------------------------------------------------------------------

class Devnet:
    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.owned = False
        path = os.environ.get("X402_TEST_DEVNET_INFO")
        if not path:
            out = subprocess.run([os.path.join(ROOT, "deploy", "devnet", "devnet.sh"), "start", run_dir],
                                 check=True, capture_output=True, text=True).stdout
            self.owned = True
            path = os.path.join(run_dir, "devnet.json")
        with open(path) as f:
            self.info = json.load(f)

    def stop(self):
        if self.owned:
            subprocess.run([os.path.join(ROOT, "deploy", "devnet", "devnet.sh"), "stop", self.run_dir], check=False)

    def rpc(self, method, params):
        answer = requests.post(self.info["rpcUrl"], json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                          "params": params}, timeout=10).json()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def call(self, data):
        return self.rpc("eth_call", [{"to": self.info["token"], "data": data}, "latest"])

    def balance(self, address):
        data = "0x70a08231" + abi_encode(["address"], [address]).hex()
        return int(self.call(data), 16)

    def mint(self, address, amount):
        """The devnet token's owner mints `amount` more to `address` (one mined transaction)."""
        from eth_account import Account
        from web3 import Web3
        abi = [{"name": "mint", "type": "function", "stateMutability": "nonpayable", "outputs": [],
                "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}]}]
        deployer = self.info["deployer"]
        data = Web3().eth.contract(abi=abi).encode_abi("mint", [address, amount])
        nonce = int(self.rpc("eth_getTransactionCount", [deployer["address"], "pending"]), 16)
        fee = int(self.rpc("eth_gasPrice", []), 16) * 2 + 1_000_000
        signed = Account.sign_transaction({"chainId": self.info["chainId"], "nonce": nonce, "gas": 200_000,
                                           "maxFeePerGas": fee, "maxPriorityFeePerGas": 1_000_000,
                                           "to": self.info["token"], "data": data, "value": 0, "type": 2},
                                          deployer["privateKey"])
        tx = self.rpc("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
        wait_for(lambda: self.rpc("eth_getTransactionReceipt", [tx]) is not None, what="mint mined")

    def authorization_used(self, authorizer, nonce_hex):
        data = "0x" + keccak(text="authorizationState(address,bytes32)")[:4].hex() + abi_encode(
            ["address", "bytes32"], [authorizer, bytes.fromhex(nonce_hex[2:])]).hex()
        return int(self.call(data), 16) != 0


# ---------------------------------------------------------------------------------------------

class Backend:
    """The protected API: answers JSON, records every request's headers, checks the HMAC.
    `accept` is the context versions its verifier takes ("2" only, unless migrating)."""

    def __init__(self, accept=("2",)):
        self.seen = []
        self.lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                record = {"method": self.command, "path": self.path, "headers": headers,
                          "hmac_ok": verify_context(self.command, self.path, headers, BACKEND_SECRET, accept)}
                with backend.lock:
                    backend.seen.append(record)
                if self.path.startswith("/stream"):
                    # ?events=N&gap=S; each event's write time is recorded (streaming tests time them).
                    query = dict(p.split("=", 1) for p in self.path.partition("?")[2].split("&") if "=" in p)
                    record["events"] = []
                    serve_sse(self, events=int(query.get("events", 3)), gap=float(query.get("gap", 0.5)),
                              on_event=lambda n, at: record["events"].append(at))
                    return
                if self.path.startswith("/socket"):
                    record["messages"] = []
                    serve_websocket_echo(self, on_message=lambda op, data: record["messages"].append(data))
                    return
                status = 500 if "fail" in self.path else 200
                body = json.dumps({"path": self.path, "paid_by": headers.get("x-x402-payer"),
                                   "context_verified": record["hmac_ok"]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            # A context replayed with another method must meet the verifier too.
            do_POST = do_DELETE = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests_to(self, fragment):
        with self.lock:
            return [r for r in self.seen if fragment in r["path"]]

    def stop(self):
        self.server.shutdown()


CONTEXT_FIELDS = ("x-x402-payer", "x-x402-amount", "x-x402-network", "x-x402-payment-id", "x-x402-transaction")


def context_message(method, path, headers):
    """The signed text for the version the context says it is (README: "Verifying the context in
    the backend"): version 2 from this very request (method, the Host nginx passes, the URI) and
    the lease id; version 1, the old field list, from the headers alone."""
    fields = [headers.get(name, "") for name in CONTEXT_FIELDS]
    timestamp = headers.get("x-x402-timestamp", "")
    if headers.get("x-x402-context-version") == "2":
        host = re.sub(r":\d+$", "", headers.get("host", "").lower()).rstrip(".")
        return "\n".join(["x402-context-v2", method, host, path, *fields, headers.get("x-x402-lease-id", ""),
                          timestamp])
    return "\n".join([*fields, timestamp])


def verify_context(method, path, headers, secret, accept=("2",)):
    """What a backend does with the sidecar's context: None when there is none, else whether it
    is a fresh context, of a version in `accept`, signed for this request."""
    signature = headers.get("x-x402-signature")
    if not signature:
        return None
    if headers.get("x-x402-context-version", "1") not in accept:
        return False
    expected = hmac.new(secret.encode(), context_message(method, path, headers).encode(), hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(headers.get("x-x402-timestamp") or 0)) < 300
    return hmac.compare_digest(expected, signature) and fresh


# ---------------------------------------------------------------------------------------------

SIDECAR_CONFIG = """\
server:
  listen: ["unix:{run}/x402.sock", "127.0.0.1:{port}"]
  unix_socket_mode: "0666"
  report_socket: "unix:{run}/report.sock"
  shutdown_grace_seconds: 2
{server_extra}log:
  level: info
defaults:
  pay_to: "{pay_to}"
  network: devnet
  max_timeout_seconds: 600
networks:
  devnet:
    chain_id: 84532
    v1_name: base-sepolia
    asset: {{address: "{token}", name: "USDC", version: "2", decimals: 6}}
rpc_urls:
  devnet: "${{X402_E2E_RPC_URL:-{rpc}}}"
facilitator:
  url: "{facilitator}"
  timeout_ms: 20000
relayer:
  private_key: "{relayer_key}"
backend:
  hmac_secret: "{secret}"
{backend_extra}settlement:
  mode: deferred
  via: relayer
  retry_base_ms: 200
  retry_max_seconds: 1
  max_attempts: 1000
  report_timeout_seconds: 5
  report_timeout_policy: settle
  lease_seconds: 5
routes:
  weather:
    description: "Current weather"
    price: "0.01"
  before:
    description: "Settled before the response"
    price: "0.02"
    settlement: before
  after:
    description: "Settled after a successful response"
    price: "0.03"
    settlement: after
  facilitated:
    description: "Settled through the facilitator"
    price: "0.04"
    settlement: before
    settle_via: facilitator
  checked:
    description: "Verified by us and by the facilitator"
    price: "0.05"
    verify: both
    settle_via: facilitator
{extra_routes}
{stores}
{extra_top}
"""

EMBEDDED_STORES = """stores:
  ledger: embedded
  embedded:
    journal: "{run}/nonces.journal"
"""

REDIS_STORES = """stores:
  ledger: redis
  redis:
    url: "{redis_url}"
    key_prefix: "{prefix}"
"""


class Sidecar:
    def __init__(self, run_dir, devnet, store="embedded", redis_url=None, prefix="x402e2e", env=None, extra_routes="",
                 name="sidecar", extra_top="", backend_extra="", server_extra=""):
        self.run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        self.port = free_port()
        info = devnet.info
        stores = (EMBEDDED_STORES.format(run=run_dir) if store == "embedded"
                  else REDIS_STORES.format(redis_url=redis_url, prefix=prefix))
        self.config = os.path.join(run_dir, f"{name}.yaml")
        with open(self.config, "w") as f:
            f.write(SIDECAR_CONFIG.format(
                run=run_dir, port=self.port, pay_to=info["payTo"]["address"], token=info["token"], rpc=info["rpcUrl"],
                facilitator=info["facilitatorUrl"], relayer_key=info["sidecarRelayer"]["privateKey"],
                secret=BACKEND_SECRET, backend_extra=backend_extra, stores=stores, extra_routes=extra_routes,
                extra_top=extra_top.format(run=run_dir), server_extra=server_extra))
        self.env = dict(os.environ, **(env or {}))
        self.process = None
        self.log_path = os.path.join(run_dir, f"{name}.log")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, env=None):
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([SIDECAR_BIN, "serve", "--config", self.config], stdout=log, stderr=log,
                                        env=dict(self.env, **(env or {})), start_new_session=True)
        wait_for(lambda: requests.get(self.url + "/readyz", timeout=1).status_code == 200, timeout=30,
                 what="sidecar /readyz")
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def metrics(self):
        values = {}
        for line in requests.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def log_lines(self):
        with open(self.log_path) as f:
            return f.read().splitlines()


# ---------------------------------------------------------------------------------------------

NGINX_CONF = """\
{load_module}worker_processes {workers};
user root;
error_log {run}/error.log info;
pid {run}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
{temp_paths}    include {run}/{includes}/http.conf;
    upstream backend {{ server 127.0.0.1:{backend_port}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        include {run}/{includes}/server.conf;
{server_extra}
        location /weather {{
            {protect[weather]}
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location /before {{
            {protect[before]}
            proxy_pass http://backend;
        }}
        location /after {{
            {protect[after]}
            proxy_pass http://backend;
        }}
        location /facilitated {{
            {protect[facilitated]}
            proxy_pass http://backend;
        }}
        location /checked {{
            {protect[checked]}
            proxy_pass http://backend;
        }}
        location /free {{
            proxy_pass http://backend;
        }}
        # A backend that is down: nothing listens on this port.
        location /after-down {{
            {protect[after]}
            proxy_pass http://127.0.0.1:{dead_port};
            proxy_connect_timeout 1s;
        }}
{extra_locations}
    }}
}}
"""


class Protect(dict):
    """The lines that protect a location with route `name`, for one integration."""

    def __init__(self, integration, run_dir):
        super().__init__()
        self.integration, self.run_dir = integration, run_dir

    def __missing__(self, name):
        if self.integration == "module":
            # The module sets the context headers itself; the Host the context is bound to is ours
            # to pass (protect.conf does the same for the stock files).
            return f"x402 {name};\n            proxy_set_header Host $host;"
        return f"set $x402_route {name};\n            include {self.run_dir}/x402/protect.conf;"


def nginx_temp_paths(run_dir):
    """nginx's temp directories under `run_dir` (made here), as http-level directives."""
    lines = []
    for name, sub in (("client_body", "body"), ("proxy", "proxy"), ("fastcgi", "fastcgi"), ("uwsgi", "uwsgi"),
                      ("scgi", "scgi")):
        os.makedirs(os.path.join(run_dir, "tmp", sub), exist_ok=True)
        lines.append(f"    {name}_temp_path {run_dir}/tmp/{sub};")
    return "\n".join(lines) + "\n"


def render_includes(run_dir):
    """Our nginx/x402 files with their default paths pointed at `run_dir`."""
    target = os.path.join(run_dir, "x402")
    os.makedirs(target, exist_ok=True)
    for name in ("http.conf", "server.conf", "protect.conf", "sse.conf", "websocket.conf", "lease.conf"):
        with open(os.path.join(ROOT, "nginx", "x402", name)) as f:
            text = f.read()
        text = text.replace("/run/x402/", run_dir + "/").replace("/var/log/nginx/x402.log", run_dir + "/x402.log")
        with open(os.path.join(target, name), "w") as f:
            f.write(text)
    return target


def render_module_includes(run_dir, sidecar_dir=None):
    """nginx/module/{http,server,lease}.conf with /run/x402/ pointed at the sidecar's run
    directory, and the shared nginx/x402/{sse,websocket}.conf beside them (README: "With the
    module")."""
    target = os.path.join(run_dir, "x402-module")
    os.makedirs(target, exist_ok=True)
    sources = [os.path.join(MODULE_DIR, name) for name in ("http.conf", "server.conf", "lease.conf")]
    sources += [os.path.join(ROOT, "nginx", "x402", name) for name in ("sse.conf", "websocket.conf")]
    for source in sources:
        with open(source) as f:
            text = f.read().replace("/run/x402/", (sidecar_dir or run_dir).rstrip("/") + "/")
        with open(os.path.join(target, os.path.basename(source)), "w") as f:
            f.write(text)
    return target


class Nginx:
    """nginx in front of the sidecar in `run_dir`: integration "stock" (auth_request and our
    include files) or "module" (load_module ngx_http_x402_module, `x402 ROUTE;` locations).
    `locations` is extra nginx text ("{run}" is replaced by `run_dir`)."""

    def __init__(self, run_dir, backend_port, workers=1, port=None, routes=(), locations="", integration="stock"):
        self.run_dir = run_dir
        self.integration = integration
        self.port = port or free_port()
        protect = Protect(integration, run_dir)
        if integration == "module":
            if not os.path.exists(MODULE_SO):
                raise RuntimeError(f"{MODULE_SO} is not built: run `make module`")
            render_module_includes(run_dir)
            load_module, includes = f"load_module {MODULE_SO};\n", "x402-module"
            # The stock files log in protect.conf; with the module the server logs every request.
            server_extra = f"        access_log {run_dir}/x402.log x402_json;"
        else:
            render_includes(run_dir)
            load_module, includes, server_extra = "", "x402", ""
        self.conf = os.path.join(run_dir, "nginx.conf")
        with open(self.conf, "w") as f:
            extra = "".join(
                f"        location /{name} {{\n            {protect[name]}\n            proxy_pass http://backend;\n"
                "        }\n" for name in routes) + locations.replace("{run}", run_dir)
            f.write(NGINX_CONF.format(run=run_dir, port=self.port, backend_port=backend_port, workers=workers,
                                      extra_locations=extra, dead_port=free_port(), protect=protect,
                                      load_module=load_module, includes=includes, server_extra=server_extra,
                                      temp_paths=nginx_temp_paths(run_dir)))

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def test_config(self):
        return subprocess.run([NGINX_BIN, "-t", "-c", self.conf, "-p", self.run_dir], capture_output=True, text=True)

    def start(self):
        result = self.test_config()
        if result.returncode != 0:
            raise RuntimeError("nginx -t failed:\n" + result.stderr)
        subprocess.run([NGINX_BIN, "-c", self.conf, "-p", self.run_dir], check=True)
        wait_for(lambda: requests.get(self.url + "/free", timeout=1).status_code == 200, what="nginx")
        return self

    def stop(self):
        pid_file = os.path.join(self.run_dir, "nginx.pid")
        if os.path.exists(pid_file):
            subprocess.run([NGINX_BIN, "-c", self.conf, "-p", self.run_dir, "-s", "quit"], check=False,
                           capture_output=True)
            wait_for(lambda: not os.path.exists(pid_file), timeout=10, what="nginx to stop")

    def error_log(self):
        path = os.path.join(self.run_dir, "error.log")
        if not os.path.exists(path):
            return ""
        with open(path) as f:
            return f.read()

    def json_log(self):
        path = os.path.join(self.run_dir, "x402.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
