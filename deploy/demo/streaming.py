"""A Server-Sent Events stream and a WebSocket echo for `http.server` handlers: the demo backend
(deploy/demo/backend.py) and the end-to-end test backend (Tests/e2e/stack.py) both use them.
Standard library only; the WebSocket part is the RFC 6455 subset an echo needs."""
import base64
import hashlib
import json
import struct
import time

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


def serve_sse(handler, events=3, gap=0.5, on_event=None, extra=None):
    """`events` SSE events, `gap` seconds apart, each flushed as its own chunk."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for number in range(events):
        if number:
            time.sleep(gap)
        data = json.dumps({"n": number, "t": time.time(), **(extra or {})})
        chunk = f"id: {number}\nevent: tick\ndata: {data}\n\n".encode()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        handler.wfile.flush()
        if on_event:
            on_event(number, time.time())
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final frame; clients must mask (`mask` = 4 bytes), servers must not."""
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    if len(payload) < 126:
        head += bytes([bit | len(payload)])
    elif len(payload) < 1 << 16:
        head += bytes([bit | 126]) + struct.pack(">H", len(payload))
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", len(payload))
    if mask:
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def read_frame(stream):
    """(opcode, payload) of the next frame from a file-like `stream`; (None, b"") at EOF."""
    head = stream.read(2)
    if len(head) < 2:
        return None, b""
    opcode, length, masked = head[0] & 0x0F, head[1] & 0x7F, head[1] & 0x80
    if length == 126:
        length = struct.unpack(">H", stream.read(2))[0]
    elif length == 127:
        length = struct.unpack(">Q", stream.read(8))[0]
    mask = stream.read(4) if masked else b""
    payload = stream.read(length)
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload


def serve_websocket_echo(handler, on_message=None):
    """Answers the upgrade, then echoes text and binary frames until the client closes."""
    key = handler.headers.get("Sec-WebSocket-Key")
    if "websocket" not in handler.headers.get("Upgrade", "").lower() or not key:
        body = b'{"error":"a WebSocket upgrade is required"}'
        handler.send_response(426)
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return
    handler.send_response(101)
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept_key(key))
    handler.end_headers()
    handler.wfile.flush()
    handler.close_connection = True
    while True:
        opcode, payload = read_frame(handler.rfile)
        if opcode is None or opcode == CLOSE:
            if opcode == CLOSE:
                handler.wfile.write(encode_frame(CLOSE, payload[:2]))
                handler.wfile.flush()
            return
        if opcode == PING:
            handler.wfile.write(encode_frame(PONG, payload))
        elif opcode in (TEXT, BINARY):
            if on_message:
                on_message(opcode, payload)
            handler.wfile.write(encode_frame(opcode, payload))
        handler.wfile.flush()
