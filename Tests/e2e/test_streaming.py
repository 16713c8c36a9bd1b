"""The streaming snippets (nginx/x402/sse.conf, websocket.conf) with a real nginx: accepted by
nginx -t in Debian's layout next to protect.conf, and, in front of the e2e backend, an SSE stream
whose first event reaches the client before the backend writes the second, and a WebSocket echo.
(The locations here are not protected: the payment and lease checks are the same auth_request as
any location's, tested elsewhere; this tests what the snippets change.)"""
import os
import shutil
import socket
import subprocess
import time

import pytest
from stack import NGINX_BIN, Backend, free_port, nginx_temp_paths, render_includes, wait_for
from streaming import CLOSE, TEXT, accept_key, encode_frame, read_frame


def test_streaming_snippets_pass_nginx_t_in_debian_layout(tmp_path):
    if not os.path.exists("/etc/nginx/nginx.conf"):
        pytest.skip("no /etc/nginx")
    prefix = str(tmp_path / "etc-nginx")
    shutil.copytree("/etc/nginx", prefix, symlinks=False)
    render_includes(prefix)
    locations = "".join(
        f"\tlocation /api/{name} {{\n\t\tset $x402_route {name};\n\t\tinclude {prefix}/x402/protect.conf;\n"
        f"\t\tinclude {prefix}/x402/{snippet};\n\t\tproxy_pass http://127.0.0.1:9;\n\t}}\n"
        for name, snippet in (("stream", "sse.conf"), ("socket", "websocket.conf")))
    for name in ("nginx.conf", "sites-enabled/default"):
        path = os.path.join(prefix, name)
        with open(path) as f:
            text = f.read().replace("/etc/nginx/", prefix + "/")
        if name == "sites-enabled/default":
            text = text.replace("server_name _;", f"server_name _;\n\tinclude {prefix}/x402/server.conf;\n{locations}", 1)
        with open(path, "w") as f:
            f.write(text)
    with open(os.path.join(prefix, "conf.d", "x402.conf"), "w") as f:
        f.write(f"include {prefix}/x402/http.conf;\n")
    result = subprocess.run([NGINX_BIN, "-t", "-c", os.path.join(prefix, "nginx.conf"), "-p", prefix],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


CONF = """\
worker_processes 1;
user root;
error_log {run}/error.log info;
pid {run}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp_paths}    include {run}/x402/http.conf;
    upstream backend {{ server 127.0.0.1:{backend_port}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        # Unused here, but http.conf's log formats name the variables they define.
        include {run}/x402/server.conf;
        location /protected {{ set $x402_route protected; include {run}/x402/protect.conf; proxy_pass http://backend; }}
        gzip on;
        gzip_types text/event-stream;
        location /stream {{ include {run}/x402/sse.conf; proxy_pass http://backend; }}
        location /socket {{ include {run}/x402/websocket.conf; proxy_pass http://backend; }}
        location /buffered {{ proxy_pass http://backend/stream; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    run = str(tmp_path_factory.mktemp("streaming"))
    render_includes(run)
    backend, port = Backend(), free_port()
    conf = os.path.join(run, "nginx.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(run=run, port=port, backend_port=backend.port, temp_paths=nginx_temp_paths(run)))
    subprocess.run([NGINX_BIN, "-c", conf, "-p", run], check=True)
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, what="nginx")
    yield backend, port
    pid = int(open(os.path.join(run, "nginx.pid")).read())
    os.kill(pid, 15)
    backend.stop()


def read_until(sock, marker, deadline):
    data = b""
    while marker not in data:
        sock.settimeout(max(0.01, deadline - time.time()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def first_event_time(port, path, marker=b"event: tick"):
    """When the first body bytes holding `marker` arrived (any body bytes when `marker` is empty)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: api.example.com\r\nAccept-Encoding: gzip\r\n\r\n".encode())
        data = read_until(sock, b"\r\n\r\n", time.time() + 10)
        head, _, body = data.partition(b"\r\n\r\n")
        while not body or marker not in body:
            body += read_until(sock, marker or b"", time.time() + 10) if marker else sock.recv(65536)
        return time.time(), head, body


def test_sse_first_event_arrives_before_the_backend_writes_the_second(proxied):
    backend, port = proxied
    received, head, body = first_event_time(port, "/stream?events=2&gap=1.5&sse")
    assert b"200 OK" in head and b"text/event-stream" in head and b"data: {\"n\": 0" in body
    assert b"Content-Encoding: gzip" not in head, "sse.conf turns gzip off"
    wait_for(lambda: len(backend.requests_to("sse")[-1].get("events", [])) == 2, timeout=10, what="second event")
    first, second = backend.requests_to("sse")[-1]["events"]
    # The backend notes the time just after its write returns, so the client may see it a hair earlier.
    assert first - 0.25 <= received < second, (first, received, second)


def test_without_the_snippet_nginx_buffers_the_stream(proxied):
    """The control: the same stream through a plain location (gzip on, as many servers have it)
    reaches the client only once the backend has written its last event."""
    backend, port = proxied
    received, head, _ = first_event_time(port, "/buffered?events=2&gap=1.5&plain", marker=b"")
    assert b"Content-Encoding: gzip" in head
    wait_for(lambda: len(backend.requests_to("plain")[-1].get("events", [])) == 2, timeout=10, what="events")
    _, second = backend.requests_to("plain")[-1]["events"]
    assert received >= second


def test_websocket_upgrades_and_echoes_through_nginx(proxied):
    backend, port = proxied
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((f"GET /socket?ws HTTP/1.1\r\nHost: api.example.com\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        stream = sock.makefile("rb")
        status = stream.readline()
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        assert b"101" in status, status
        assert headers["sec-websocket-accept"] == accept_key(key) and headers["upgrade"].lower() == "websocket"
        for message in (b"hello", b"x" * 70000, "ünïcode".encode()):
            sock.sendall(encode_frame(TEXT, message, mask=os.urandom(4)))
            assert read_frame(stream) == (TEXT, message)
        sock.sendall(encode_frame(CLOSE, b"\x03\xe8", mask=os.urandom(4)))
        assert read_frame(stream)[0] == CLOSE
    assert backend.requests_to("ws")[-1]["messages"][0] == b"hello"
    assert "upgrade" in backend.requests_to("ws")[-1]["headers"]["connection"].lower()


def test_plain_request_through_the_websocket_location_keeps_connection_empty(proxied):
    backend, port = proxied
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /socket?plainws HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n")
        answer = read_until(sock, b"}", time.time() + 10)
    assert b"426" in answer.split(b"\r\n")[0]
    assert "connection" not in backend.requests_to("plainws")[-1]["headers"]
