import os
import socket
import sys
import tempfile

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
from harness import MODULE_SO, Authorizer, ModuleNginx, StreamBackend, write_key_file  # noqa: E402
from stack import ROOT, Backend, Devnet, Sidecar, free_port  # noqa: E402

EXTRA_ROUTES = """\
  stream:
    description: "Streams sold by lease (the sidecar does not issue leases yet)"
    price: "0.05"
  slow:
    description: "2 challenges a minute per address"
    price: "0.01"
    rate_limits:
      - {limit: "2/min", key: ip, applies_to: unpaid}
"""

LOCATIONS = """\
        location /weather {{
            x402 weather;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The backend checks the signed context against the client's host.
            proxy_set_header Host $host;
        }}
        location /before {{ x402 before; proxy_pass http://backend; }}
        location /after {{ x402 after; proxy_pass http://backend; }}
        location /slow {{ x402 slow; proxy_pass http://backend; }}
        # One location, many routes: the route is a variable.
        location ~ ^/r/(?<x402_name>[a-z]+) {{ x402 $x402_name; proxy_pass http://backend; }}
        location /after-down {{
            x402 after;
            proxy_pass http://127.0.0.1:{dead_port};
            proxy_connect_timeout 1s;
        }}
        location /off {{ x402 off; proxy_pass http://backend; }}
        # Leases, checked in nginx. These locations take no clock skew (x402_lease_clock_skew 0s):
        # a lease ends at exp exactly, and the tests time the cut against exp.
        location /leased {{
            x402 stream;
            x402_lease_keys {keys};
            x402_lease_clock_skew 0s;
            x402_report unix:{report} extended;
            proxy_pass http://backend;
        }}
        location /rechecked {{
            x402 weather;
            x402_lease_keys {keys};
            x402_lease_clock_skew 0s;
            x402_lease_recheck 1s;
            proxy_pass http://backend;
        }}
        location /sse {{
            x402 stream;
            x402_lease_keys {keys};
            x402_lease_clock_skew 0s;
            x402_report unix:{report} extended;
            proxy_pass http://streams;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
        # Streams rechecked every second while open: the decision and the rechecks go to a
        # stand-in /authorize (allow, then revoke), or the rechecks to the real sidecar.
        location = /_x402/fake-authorize {{
            internal;
            proxy_pass http://127.0.0.1:{authorizer}/authorize;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location /revocable-sse {{
            x402 stream;
            x402_sidecar /_x402/fake-authorize;
            x402_lease_keys {keys};
            x402_lease_clock_skew 0s;
            x402_lease_recheck 1s;
            x402_recheck_sidecar 127.0.0.1:{authorizer};
            proxy_pass http://streams;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
        location /revocable-ws {{
            x402 stream;
            x402_sidecar /_x402/fake-authorize;
            x402_lease_keys {keys};
            x402_lease_clock_skew 0s;
            x402_lease_recheck 1s;
            x402_recheck_sidecar 127.0.0.1:{authorizer};
            proxy_pass http://streams;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }}
        location /recheck-real-sse {{
            x402 stream;
            x402_sidecar /_x402/fake-authorize;
            x402_lease_keys {keys};
            x402_lease_clock_skew 0s;
            x402_lease_recheck 1s;
            proxy_pass http://streams;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
        # The clock skew: the default (30 s, the sidecar's leases.clock_skew_seconds default), 5 s,
        # and 2 s on a stream, which then ends 2 s after exp.
        location /skew-default {{
            x402 stream;
            x402_lease_keys {keys};
            proxy_pass http://backend;
        }}
        location /skew-5 {{
            x402 stream;
            x402_lease_keys {keys};
            x402_lease_clock_skew 5s;
            proxy_pass http://backend;
        }}
        location /sse-skew {{
            x402 stream;
            x402_lease_keys {keys};
            x402_lease_clock_skew 2s;
            proxy_pass http://streams;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
        location /ws {{
            x402 stream;
            x402_lease_keys {keys};
            x402_lease_clock_skew 0s;
            x402_report unix:{report} extended;
            proxy_pass http://streams;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }}
"""


@pytest.fixture(scope="session")
def run_root():
    if not os.path.exists(MODULE_SO):
        pytest.fail(f"{MODULE_SO} is not built: run `make module`")
    base = os.path.join(ROOT, ".run")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix="module-", dir=base)


@pytest.fixture(scope="session")
def devnet(run_root):
    chain = Devnet(os.path.join(run_root, "devnet"))
    yield chain
    chain.stop()


class Reports:
    """A unix datagram socket standing in for the sidecar's report socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(5)

    def next(self):
        return self.sock.recv(4096).decode()

    def drain(self):
        self.sock.settimeout(0.05)
        try:
            while True:
                self.sock.recv(4096)
        except OSError:
            pass
        self.sock.settimeout(5)


@pytest.fixture(scope="session")
def stack(devnet, run_root):
    run = os.path.join(run_root, "stack")
    backend = Backend()
    streams = StreamBackend()
    sidecar = Sidecar(os.path.join(run, "sidecar"), devnet, extra_routes=EXTRA_ROUTES).start()
    keys = write_key_file(os.path.join(run, "lease.keys"))
    reports = Reports(os.path.join(run, "lease-report.sock"))
    authorizer = Authorizer()
    locations = LOCATIONS.format(dead_port=free_port(), keys=keys, report=reports.path, authorizer=authorizer.port)
    http_extra = "    upstream streams { server 127.0.0.1:%d; }\n" % streams.port
    nginx = ModuleNginx(os.path.join(run, "nginx"), sidecar.run_dir, backend.port, locations, http_extra).start()

    class Stack:
        pass

    s = Stack()
    s.devnet, s.backend, s.streams, s.sidecar, s.nginx, s.reports, s.run, s.authorizer = (
        devnet, backend, streams, sidecar, nginx, reports, run, authorizer)
    yield s
    authorizer.stop()
    nginx.stop()
    sidecar.stop()
    backend.stop()
    streams.stop()
