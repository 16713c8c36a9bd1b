"""The nginx-tests way for ngx_http_x402_module: a whole nginx.conf per case, the real Debian
nginx with `load_module` of the built .so, raw HTTP on a socket where the answer's bytes matter.
The devnet, the sidecar and the recording backend come from Tests/e2e/stack.py."""
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from stack import (MODULE_DIR, MODULE_SO, NGINX_BIN, free_port, nginx_temp_paths,  # noqa: F401
                   render_module_includes, wait_for)
# X402_MODULE_VALGRIND=DIR runs nginx as one process under memcheck, logs in DIR.
VALGRIND = os.environ.get("X402_MODULE_VALGRIND")

NGINX_CONF = """\
load_module {so};
worker_processes 1;
user root;
error_log {run}/error.log {level};
pid {run}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp_paths}    include {run}/x402-module/http.conf;
    upstream backend {{ server 127.0.0.1:{backend_port}; keepalive 8; }}
{http_extra}
    server {{
        listen 127.0.0.1:{port};
        include {run}/x402-module/server.conf;
        access_log {run}/x402.log x402_json;
        location /free {{ proxy_pass http://backend; }}
{locations}
    }}
}}
"""


class ModuleNginx:
    def __init__(self, run_dir, sidecar_dir, backend_port, locations="", http_extra=""):
        self.run_dir = run_dir
        self.port = free_port()
        self.process = None
        render_module_includes(run_dir, sidecar_dir)
        self.conf = os.path.join(run_dir, "nginx.conf")
        self.write(locations, http_extra, backend_port)

    def write(self, locations, http_extra, backend_port):
        self.backend_port = backend_port
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(so=MODULE_SO, run=self.run_dir, level=os.environ.get("X402_MODULE_LOG", "info"), port=self.port, backend_port=backend_port,
                                      locations=locations, http_extra=http_extra,
                                      temp_paths=nginx_temp_paths(self.run_dir)))

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def command(self, *args):
        return [NGINX_BIN, "-c", self.conf, "-p", self.run_dir, *args]

    def test_config(self):
        return subprocess.run(self.command("-t"), capture_output=True, text=True)

    def start(self):
        result = self.test_config()
        if result.returncode != 0:
            raise RuntimeError("nginx -t failed:\n" + result.stderr)
        if VALGRIND:
            os.makedirs(VALGRIND, exist_ok=True)
            log = os.path.join(VALGRIND, "memcheck-%s-%%p.log" % os.path.basename(self.run_dir))
            self.process = subprocess.Popen(
                ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite,possible",
                 "--track-origins=yes", "--error-exitcode=99", "--log-file=" + log]
                + self.command("-g", "daemon off; master_process off;"),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            timeout = 120
        else:
            subprocess.run(self.command(), check=True)
            timeout = 10
        wait_for(lambda: raw_get(self, "/free").status is not None, timeout=timeout, what="nginx")
        return self

    def reload(self):
        subprocess.run(self.command("-s", "reload"), check=True, capture_output=True)

    def stop(self):
        pid_file = os.path.join(self.run_dir, "nginx.pid")
        if self.process:
            # One process under valgrind: a SIGQUIT that lands just before epoll_wait with no
            # timer pending is only seen at the next event, so it is repeated until nginx exits
            # (a SIGKILLed memcheck writes no summary).
            for _ in range(30):
                self.process.send_signal(signal.SIGQUIT)
                try:
                    self.process.wait(2)
                    break
                except subprocess.TimeoutExpired:
                    continue
            else:
                self.process.kill()
                self.process.wait()
            self.process = None
        elif os.path.exists(pid_file):
            subprocess.run(self.command("-s", "quit"), check=False, capture_output=True)
            wait_for(lambda: not os.path.exists(pid_file), timeout=10, what="nginx to stop")

    def error_log(self):
        path = os.path.join(self.run_dir, "error.log")
        if not os.path.exists(path):
            return ""
        with open(path) as f:
            return f.read()


# ---------------------------------------------------------------------------------------------
# Raw HTTP: the status line and headers exactly as nginx sent them.

class RawResponse:
    def __init__(self, status, headers, body, raw):
        self.status, self.headers, self.body, self.raw = status, headers, body, raw

    def header(self, name):
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def raw_request(nginx, method, path, headers=(), timeout=30):
    lines = [f"{method} {path} HTTP/1.1"]
    if not any(k.lower() == "host" for k, _ in headers):
        lines.append(f"Host: 127.0.0.1:{nginx.port}")
    lines += [f"{k}: {v}" for k, v in headers] + ["Connection: close", "", ""]
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=timeout) as s:
        s.sendall("\r\n".join(lines).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return RawResponse(None, [], b"", data)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    parsed = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
    if any(k.lower() == "transfer-encoding" and "chunked" in v for k, v in parsed):
        body = dechunk(body)
    return RawResponse(status, parsed, body, data)


def raw_get(nginx, path, headers=(), timeout=30):
    try:
        return raw_request(nginx, "GET", path, headers, timeout)
    except OSError:
        return RawResponse(None, [], b"", b"")


def dechunk(body):
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out


# ---------------------------------------------------------------------------------------------
# Lease tokens, minted exactly as the sidecar will issue them (the format is fixed in issue 13).

HS_SECRET = hashlib.sha256(b"x402-module-test-lease-secret").digest()
ED_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"x402-module-test-ed25519").digest())
ED_PUBLIC = ED_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
PAYER = "0x" + "ab" * 20


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write_key_file(path):
    with open(path, "w") as f:
        f.write("# test lease keys\n\n")
        f.write(f"hs1 HS256 {b64u(HS_SECRET)}\n")
        f.write(f"ed1\tEdDSA\t{b64u(ED_PUBLIC)}   # Ed25519 public key\n")
    return path


def claims(routes=("stream",), ttl=60, **extra):
    now = int(time.time())
    document = {"iss": "x402-nginx", "sub": PAYER, "aud": "127.0.0.1", "x402_routes": list(routes),
                "jti": os.urandom(16).hex(), "iat": now, "nbf": now, "exp": now + ttl, "x402_lease": "day-pass",
                "x402_amount": "50000", "x402_asset": "0x036cbd53842c5426634e7929541ec2318f3dcf7e",
                "x402_network": "eip155:84532", "x402_payment_id": "leasepayment0001"}
    document.update(extra)
    return {k: v for k, v in document.items() if v is not None}


def mint(document, alg="HS256", kid=None, header=None, secret=HS_SECRET, key=ED_KEY):
    kid = kid or ("hs1" if alg == "HS256" else "ed1")
    header = header or {"alg": alg, "typ": "JWT", "kid": kid}
    signing = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + b64u(
        json.dumps(document, separators=(",", ":")).encode())
    if alg == "HS256":
        signature = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    elif alg == "EdDSA":
        signature = key.sign(signing.encode())
    else:
        signature = b""
    return signing + "." + b64u(signature)


# ---------------------------------------------------------------------------------------------

class StreamBackend:
    """An SSE endpoint and a WebSocket endpoint that stream a tick every 0.2 s until the peer goes
    away, recording when each stream started and ended (so a test sees the backend side close too)."""

    def __init__(self):
        self.streams = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return
            data += chunk
        head = data.split(b"\r\n\r\n")[0].decode("latin-1")
        path = head.split(" ")[1]
        headers = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
                   for line in head.split("\r\n")[1:] if ":" in line}
        record = {"path": path, "headers": headers, "start": time.time(), "end": None}
        with self.lock:
            self.streams.append(record)
        try:
            if "websocket" in headers.get("upgrade", "").lower():
                accept = base64.b64encode(hashlib.sha1(
                    (headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                tick = 0
                while True:
                    payload = b"tick %d" % tick
                    conn.sendall(bytes([0x81, len(payload)]) + payload)
                    tick += 1
                    time.sleep(0.2)
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                             b"Connection: close\r\n\r\n")
                tick = 0
                while True:
                    conn.sendall(b"data: tick %d\n\n" % tick)
                    tick += 1
                    time.sleep(0.2)
        except OSError:
            pass
        finally:
            record["end"] = time.time()
            conn.close()

    def stop(self):
        self.listener.close()


def stream_until_closed(nginx, path, headers, websocket=False, limit=30):
    """Opens a stream through nginx and reads until nginx closes it; returns (status, seconds, bytes)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{nginx.port}"] + [f"{k}: {v}" for k, v in headers]
    if websocket:
        lines += ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                  "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode()]
    start = time.time()
    data = b""
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=limit) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while time.time() - start < limit:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/") else None
    return status, time.time() - start, data


class FakeSidecar:
    """A socket that answers like a broken sidecar: `reply` bytes, then close (or hang)."""

    def __init__(self, reply, hang=False):
        self.reply, self.hang = reply, hang
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            try:
                conn.recv(65536)
                conn.sendall(self.reply)
                if self.hang:
                    time.sleep(5)
            except OSError:
                pass
            conn.close()

    def stop(self):
        self.listener.close()


class Authorizer:
    """A stand-in sidecar /authorize for lease rechecks: `allow` answers 200 (X-X402-Status: 200),
    else 403 lease_revoked; records the headers of every request it gets."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.allow = True
        self.seen = []
        authorizer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):
                authorizer.seen.append({k.lower(): v for k, v in self.headers.items()})
                if authorizer.allow:
                    self.send_response(200)
                    self.send_header("X-X402-Status", "200")
                else:
                    self.send_response(403)
                    self.send_header("X-X402-Status", "403")
                    self.send_header("X-X402-Reason", "lease_revoked")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def rechecks(self, jti):
        return [h for h in self.seen if h.get("x-x402-recheck") == "stream" and h.get("x-x402-lease-id") == jti]

    def stop(self):
        self.server.shutdown()
