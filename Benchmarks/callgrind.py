#!/usr/bin/env python3
"""Instructions per decision, counted by valgrind's callgrind (they do not drift with the machine's
load, unlike req/s): `make callgrind`, or
    Benchmarks/callgrind.py --sidecar .build/release/x402-sidecar [--micro .build/release/x402-micro]

Runs the release sidecar under `valgrind --tool=callgrind` on loopback TCP with the embedded store
and `deferred` settlement queued without a worker (the benchmark's configuration), sends WARMUP
requests, zeroes the counters (`callgrind_control -z`), sends N requests of one kind over one
keep-alive connection exactly as nginx's auth subrequest sends them, dumps (`callgrind_control
-d`), and divides the instructions of the whole process by N:

  unpaid   no payment: the 402 challenge
  replay   one payment presented again and again: refused as already used
  paid     a fresh valid payment per request: verified, reserved, queued
  lease    one valid lease token on every request: checked in process, admitted by the store

The figure includes everything the process does per request (NIO's HTTP parsing, the decision,
the answer). Compare two builds with --sidecar; `--top K` prints the K costliest functions
(self cost, demangled by `swift demangle`).

Two things keep Debian's valgrind (3.19) from running a Swift 6 binary as built, so the sidecar
runs as it is but through these:
- it cannot read the DWARF 5 debug information swiftc writes ("unhandled dwarf2 abbrev form",
  then it gives up): the sidecar is run from a copy without debug sections (`objcopy
  --strip-debug`; the symbol table stays, so functions keep their names);
- it crashes (an internal SIGSEGV) when libdispatch drains the main queue on a worker thread after
  `dispatch_main()` parks the main thread, which is what an `async` main does at its first
  suspension: a preloaded `dispatch_main` (DISPATCH_MAIN_SHIM) drains the main queue on the main
  thread instead, as Foundation's run loop does. Only start-up code runs on the main queue; the
  event loops and the decision path are NIO's threads and are unchanged.
"""
import argparse
import base64
import glob
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
# A devnet key of the benchmark (never a key with value): the payer of the signed payments.
PAYER_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"

CONFIG = """\
server:
  listen: ["127.0.0.1:{port}"]
  event_loops: 1
log: {{level: warning, decisions: false}}
defaults: {{pay_to: "{pay_to}", network: devnet, max_timeout_seconds: 3000}}
networks:
  devnet:
    chain_id: 84532
    v1_name: base-sepolia
    asset: {{address: "{token}", name: "USDC", version: "2", decimals: 6}}
rpc_urls: {{devnet: "http://127.0.0.1:9"}}
relayer: {{private_key: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"}}
settlement:
  mode: deferred
  via: relayer
  worker: false
routes:
  bench: {{description: "bench", price: "0.01"}}
{lease_routes}stores:
  ledger: embedded
  embedded:
    journal: "{run}/nonces.journal"
"""

LEASE_SECRET = b"callgrind lease key, 32 bytes long"
LEASE_ROUTES = """  benchpass: {description: "lease", price: "0.05", lease: {opens: [bench], seconds: 3600}}
"""
LEASE_TOP = 'leases: {keys: ["cg HS256 %s"]}\n' % base64.urlsafe_b64encode(LEASE_SECRET).rstrip(b"=").decode()


def lease_token():
    import jwt
    now = int(time.time())
    return jwt.encode({"iss": "x402-nginx", "sub": "0x" + "ab" * 20, "aud": "bench.local", "jti": "cd" * 16,
                       "iat": now, "nbf": now, "exp": now + 3600, "x402_routes": ["bench"], "x402_lease": "benchpass",
                       "x402_amount": "50000", "x402_asset": TOKEN.lower(), "x402_network": "eip155:84532",
                       "x402_payment_id": "ef" * 16}, LEASE_SECRET, algorithm="HS256", headers={"kid": "cg"})


HEAD = ("GET /authorize HTTP/1.1\r\nHost: bench.local\r\nX-X402-Route: bench\r\nX-X402-Via: nginx\r\n"
        "X-Original-URI: /paid\r\nX-Original-Method: GET\r\nX-Forwarded-Proto: http\r\n"
        "X-Forwarded-Host: bench.local\r\nX-Real-IP: 127.0.0.1\r\nX-Request-ID: 0123456789abcdef\r\n")


DISPATCH_MAIN_SHIM = r"""
#include <poll.h>
#include <stdint.h>
#include <unistd.h>
extern void *_dispatch_get_main_queue_handle_4CF(void);
extern void _dispatch_main_queue_callback_4CF(void *);
/* The main queue drained on the main thread (see callgrind.py's docstring). */
void dispatch_main(void) {
    int fd = (int)(intptr_t)_dispatch_get_main_queue_handle_4CF();
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, -1) > 0) {
            uint64_t value;
            (void)read(fd, &value, sizeof value);
        }
        _dispatch_main_queue_callback_4CF(0);
    }
}
"""
SWIFT_LIBRARIES = "/opt/swift/usr/lib/swift/linux"


def swift_library_dir():
    """Where libdispatch.so is: next to the toolchain's `swift` (…/usr/bin → …/usr/lib/swift/linux)."""
    swift = subprocess.run(["which", "swift"], capture_output=True, text=True).stdout.strip()
    if swift:
        candidate = os.path.join(os.path.dirname(os.path.realpath(swift)), "..", "lib", "swift", "linux")
        if os.path.exists(os.path.join(candidate, "libdispatch.so")):
            return os.path.abspath(candidate)
    return SWIFT_LIBRARIES


def prepared(sidecar, directory):
    """The sidecar without debug sections, and the dispatch_main shim, built once per binary."""
    os.makedirs(directory, exist_ok=True)
    with open(sidecar, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    stripped = os.path.join(directory, f"x402-sidecar-{digest}")
    if not os.path.exists(stripped):
        subprocess.run(["objcopy", "--strip-debug", sidecar, stripped + ".tmp"], check=True)
        os.replace(stripped + ".tmp", stripped)
    shim = os.path.join(directory, "dispatch_main_shim.so")
    if not os.path.exists(shim):
        source = os.path.join(directory, "dispatch_main_shim.c")
        with open(source, "w") as f:
            f.write(DISPATCH_MAIN_SHIM)
        libraries = swift_library_dir()
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", source, "-o", shim, f"-L{libraries}", "-ldispatch",
                        f"-Wl,-rpath,{libraries}"], check=True)
    return stripped, shim


def self_costs(dump):
    """Instructions per function, its own code only, from a callgrind dump (`callgrind_annotate` of
    valgrind 3.19 reports inclusive costs for these files whatever it is told)."""
    names = {"fn": {}, "ob": {}}
    costs = {}
    function = object_file = None
    after_call = False

    def name(kind, value):
        match = re.match(r"\((\d+)\)(?: (.*))?", value)
        if not match:
            return value
        if match.group(2) is not None:
            names[kind][match.group(1)] = match.group(2)
        return names[kind].get(match.group(1), value)

    with open(dump) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                function, after_call = name("fn", line[3:]), False
            elif line.startswith("ob="):
                object_file = name("ob", line[3:])
            elif line.startswith("cfn="):
                name("fn", line[4:])
            elif line.startswith("cob="):
                name("ob", line[4:])
            elif line.startswith("calls="):
                after_call = True
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                parts = line.split()
                if after_call:
                    after_call = False  # the callee's inclusive cost, not this function's own
                elif function is not None and len(parts) > 1:
                    key = (function, object_file or "?")
                    costs[key] = costs.get(key, 0) + int(parts[1])
    return costs


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Connection:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buffer = b""

    def ask(self, payment=None):
        """`payment`: a PAYMENT-SIGNATURE value, or a (name, value) header."""
        name, value = payment if isinstance(payment, tuple) else ("PAYMENT-SIGNATURE", payment)
        request = HEAD + (f"{name}: {value}\r\n" if value else "") + "\r\n"
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(self.buffer) < length:
            self.buffer += self.sock.recv(65536)
        self.buffer = self.buffer[length:]
        status = re.search(rb"(?i)x-x402-status: *(\d+)", head)
        return int(status.group(1)) if status else int(head.split(b" ")[1])


def payments(micro, count, run):
    path = os.path.join(run, "payments.txt")
    env = dict(os.environ, X402_EMIT_KEY=PAYER_KEY, X402_EMIT_ASSET=TOKEN, X402_EMIT_PAY_TO=PAY_TO,
               X402_EMIT_CHAIN_ID="84532", X402_EMIT_AMOUNT="10000", X402_EMIT_MAX_TIMEOUT="3000")
    subprocess.run([micro, "--emit-payments", str(count), path], check=True, env=env, stdout=subprocess.DEVNULL)
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def measure(sidecar, kind, count, warmup, signed, top):
    run = tempfile.mkdtemp(prefix="callgrind-", dir=os.path.join(ROOT, ".run"))
    port = free_port()
    config = os.path.join(run, "x402.yaml")
    with open(config, "w") as f:
        # The lease row needs a lease route (and keys), which builds before leases do not parse.
        f.write(CONFIG.format(port=port, pay_to=PAY_TO, token=TOKEN, run=run,
                              lease_routes=LEASE_ROUTES if kind == "lease" else "")
                + (LEASE_TOP if kind == "lease" else ""))
    out = os.path.join(run, "callgrind.out")
    binary, shim = prepared(sidecar, os.path.join(ROOT, ".run", "callgrind-bin"))
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", "--dump-instr=no", binary, "serve",
         "--config", config], stdout=subprocess.DEVNULL, stderr=open(os.path.join(run, "valgrind.log"), "w"),
        env=dict(os.environ, LD_PRELOAD=shim))
    try:
        deadline = time.time() + 120
        while True:
            try:
                connection = Connection(port)
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the sidecar did not start; see {run}/valgrind.log")
                time.sleep(0.2)
        expected = {"unpaid": 402, "replay": 402, "paid": 200, "lease": 200}[kind]
        token = lease_token() if kind == "lease" else None
        headers = {"unpaid": lambda i: None, "replay": lambda i: signed[0], "paid": lambda i: signed[1 + i],
                   "lease": lambda i: ("X-X402-Lease", token)}[kind]
        if kind == "replay":
            connection.ask(signed[0])  # used once
        for i in range(warmup):
            connection.ask(headers(i) if kind != "paid" else signed[1 + count + i])
        subprocess.run(["callgrind_control", "-z", str(process.pid)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        answers = {}
        for i in range(count):
            status = connection.ask(headers(i))
            answers[status] = answers.get(status, 0) + 1
        subprocess.run(["callgrind_control", "-d", str(process.pid)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    finally:
        process.terminate()
        process.wait(timeout=120)
    dumps = sorted(glob.glob(out + ".*"), key=os.path.getmtime)
    dump = next(d for d in dumps if re.search(r"\.\d+\.1$", d) or d.endswith(".1"))
    total = 0
    with open(dump) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
                break
    result = {"kind": kind, "requests": count, "instructions_per_request": round(total / count),
              "answers": answers, "expected_status": expected, "dump": dump}
    if top:
        rows = sorted(self_costs(dump).items(), key=lambda item: -item[1])[:top]
        demangled = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(name for (name, _), _ in rows),
                                   capture_output=True, text=True)
        names = demangled.stdout.splitlines() if demangled.returncode == 0 else [name for (name, _), _ in rows]
        result["top"] = [f"{cost / count:>9,.0f}/request {100 * cost / total:5.1f}%  {name}  [{os.path.basename(ob)}]"
                         for ((_, ob), cost), name in zip(rows, names)]
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sidecar", default=os.path.join(ROOT, ".build", "release", "x402-sidecar"))
    parser.add_argument("--micro", default=os.path.join(ROOT, ".build", "release", "x402-micro"))
    parser.add_argument("--kinds", default="unpaid,replay,paid")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--top", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(os.path.join(ROOT, ".run"), exist_ok=True)
    run = tempfile.mkdtemp(prefix="callgrind-payments-", dir=os.path.join(ROOT, ".run"))
    signed = payments(args.micro, 1 + args.requests + args.warmup, run)
    results = []
    for kind in args.kinds.split(","):
        result = measure(args.sidecar, kind, args.requests, args.warmup, signed, args.top)
        ok = result["answers"] == {result["expected_status"]: args.requests}
        print(f"{kind:7s} {result['instructions_per_request']:>10,} instructions/request"
              f"  ({args.requests} requests{'' if ok else ', UNEXPECTED ANSWERS ' + json.dumps(result['answers'])})",
              flush=True)
        for row in result.get("top", []):
            print("   ", row)
        results.append(result)
    print(json.dumps({"sidecar": args.sidecar, "results": results}))
    sys.exit(0 if all(r["answers"] == {r["expected_status"]: args.requests} for r in results) else 1)


if __name__ == "__main__":
    main()
