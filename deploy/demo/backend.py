#!/usr/bin/env python3
"""The demo's protected API: a tiny weather service that trusts only what the sidecar signed, with
a Server-Sent Events stream (/stream, /free/stream) and a WebSocket echo (/socket, /free/socket).
Usage: backend.py PORT SECRET"""
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from streaming import serve_sse, serve_websocket_echo  # noqa: E402

PORT, SECRET = int(sys.argv[1]), sys.argv[2].encode()
FIELDS = ("X-X402-Payer", "X-X402-Amount", "X-X402-Network", "X-X402-Payment-Id", "X-X402-Transaction",
          "X-X402-Timestamp")


def verified(headers):
    """Checks X-X402-Signature: HMAC-SHA256 over the six context headers, joined by newlines."""
    signature = headers.get("X-X402-Signature", "")
    message = "\n".join(headers.get(name, "") for name in FIELDS).encode()
    expected = hmac.new(SECRET, message, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(headers.get("X-X402-Timestamp") or 0)) < 300
    return bool(signature) and hmac.compare_digest(signature, expected) and fresh


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("backend: " + fmt % args + "\n")

    def do_GET(self):
        paid = verified(self.headers)
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
