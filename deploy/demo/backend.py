#!/usr/bin/env python3
"""The demo's protected API: a tiny weather service that trusts only what the sidecar signed, with
a Server-Sent Events stream (/stream, /free/stream) and a WebSocket echo (/socket, /free/socket).
Usage: backend.py PORT SECRET"""
import hashlib
import hmac
import json
import os
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from streaming import serve_sse, serve_websocket_echo  # noqa: E402

PORT, SECRET = int(sys.argv[1]), sys.argv[2].encode()
FIELDS = ("X-X402-Payer", "X-X402-Amount", "X-X402-Network", "X-X402-Payment-Id", "X-X402-Transaction")


def verified(method, uri, headers, accept=("2",)):
    """README's check: X-X402-Signature over the context bound to this request (its method, the
    Host nginx passes and the URI as the client sent it), fresh, of a version this backend takes."""
    version = headers.get("X-X402-Context-Version", "1")
    if version not in accept:
        return False
    fields = [headers.get(f, "") for f in FIELDS]
    if version == "2":
        host = re.sub(r":\d+$", "", headers.get("Host", "").lower()).rstrip(".")
        fields = ["x402-context-v2", method, host, uri, *fields, headers.get("X-X402-Lease-Id", "")]
    message = "\n".join([*fields, headers.get("X-X402-Timestamp", "")]).encode()
    expected = hmac.new(SECRET, message, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(headers.get("X-X402-Timestamp") or 0)) < 300
    return fresh and hmac.compare_digest(expected, headers.get("X-X402-Signature", ""))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("backend: " + fmt % args + "\n")

    def do_GET(self):
        paid = verified(self.command, self.path, self.headers)
        path = self.path.removeprefix("/free")
        if path.startswith(("/stream", "/socket")) and (paid or self.path.startswith("/free")):
            if path.startswith("/stream"):
                serve_sse(self, events=5, gap=1.0, extra={"paid_by": self.headers.get("X-X402-Payer")})
            else:
                serve_websocket_echo(self)
            return
        body = json.dumps({"city": "Paris", "temperature_c": 14, "paid_by": self.headers.get("X-X402-Payer"),
                           "payment_id": self.headers.get("X-X402-Payment-Id"), "context_verified": paid}).encode()
        self.send_response(200 if paid or self.path.startswith("/free") else 403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
