#!/usr/bin/env python3
"""`make bench`: one command, every scenario, ratios to an anchor measured in the same run.

Starts (all on 127.0.0.1): Redis, the devnet, the release sidecar, nginx with 1 and 2 workers,
and the peer (the official x402 FastAPI middleware under uvicorn). Runs wrk against nginx:

  anchor    auth_request to another nginx server block answering 204, over a keepalive unix
            socket upstream exactly like the sidecar's (what the auth subrequest itself costs)
  unpaid    a protected location without payment → 402 challenge
  paid      every request a fresh valid payment (settlement deferred into the queue), embedded
            journal and Redis ledgers
  replay    the same payment again and again → 402
  ratelimit a rate-limited request → 429 (in-process limiter, and Redis)
  module    the same through ngx_http_x402_module (`x402 ROUTE;`, its own nginx with load_module):
            unpaid → 402, a lease checked inside nginx (no subrequest), fresh payments, and a
            plain location without auth (the ceiling)

and the peer's 402 and paid paths. Every scenario runs between two anchor runs and its ratio is to
their mean, so the drift of a shared machine's speed cancels out. Prints a Markdown table (req/s,
p50, p99, ratio) and writes it with the raw figures as JSON to .run/bench/.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "Tests", "e2e"))
from stack import Devnet, free_port, nginx_temp_paths, render_includes, wait_for  # noqa: E402

import bench_leases  # noqa: E402

RUN = os.path.join(ROOT, ".run", "bench")
RELEASE = os.path.join(ROOT, ".build", "release")
# Release binaries built elsewhere (another worktree) may be named here.
SIDECAR = os.environ.get("X402_BENCH_SIDECAR", os.path.join(RELEASE, "x402-sidecar"))
MICRO = os.environ.get("X402_BENCH_MICRO", os.path.join(RELEASE, "x402-micro"))
WRK_SCRIPT = os.path.join(ROOT, "Benchmarks", "wrk", "bench.lua")


def sh(*args, **kwargs):
    return subprocess.run(list(args), check=True, **kwargs)


SIDECAR_CONFIG = """\
server:
  listen: ["unix:{run}/x402.sock", "127.0.0.1:{port}"]
  unix_socket_mode: "0666"
  event_loops: {loops}
  decision_cache_seconds: 1
log: {{level: warning, decisions: false}}
defaults: {{pay_to: "{pay_to}", network: devnet, max_timeout_seconds: 3000}}
networks:
  devnet:
    chain_id: 84532
    v1_name: base-sepolia
    asset: {{address: "{token}", name: "USDC", version: "2", decimals: 6}}
rpc_urls: {{devnet: "{rpc}"}}
relayer: {{private_key: "{relayer_key}"}}
settlement:
  mode: deferred
  via: relayer
  worker: false        # queue only: the benchmark measures the decision path, not the devnet
{lease_top}
routes:
  bench: {{description: "bench", price: "0.01"}}
  # The same route without exposure control: the paid rows' cost of holding each payment against
  # the payer's balance, measured in the same run.
  unchecked: {{description: "bench, exposure unchecked", price: "0.01", exposure: unchecked}}
{lease_routes}
  limited:
    description: "one call an hour per address: everything after the first is a 429"
    price: "0.01"
    rate_limits: [{{limit: "1/h", key: ip}}]
{stores}
"""

NGINX_CONF = """\
worker_processes {workers};
user root;
error_log {run}/nginx-error.log warn;
pid {run}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
    access_log off;
{temp_paths}    include {run}/x402/http.conf;
    # The anchor's auth endpoint: another server block answering 204, reached the way nginx
    # reaches the sidecar (unix socket, keepalive upstream).
    upstream anchor_auth {{ server unix:{run}/anchor.sock; keepalive 64; }}
    server {{
        listen unix:{run}/anchor.sock;
        location / {{ return 204; }}
    }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {run}/www;
        default_type application/json;
        include {run}/x402/server.conf;
        location = /_anchor_auth {{
            internal;
            proxy_pass http://anchor_auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location /anchor {{ auth_request /_anchor_auth; try_files /ok.json =404; }}
        location /paid {{ set $x402_route bench; include {run}/x402/protect.conf; access_log off; try_files /ok.json =404; }}
        location /unchecked {{ set $x402_route unchecked; include {run}/x402/protect.conf; access_log off; try_files /ok.json =404; }}
        location /limited {{ set $x402_route limited; include {run}/x402/protect.conf; access_log off; try_files /ok.json =404; }}
{lease_locations}
    }}
}}
"""


# ngx_http_x402_module's nginx for the module rows (see run_module): the anchor exactly as above,
# the ceiling (the same file, no auth), and `x402 ROUTE;` locations.
MODULE_NGINX_CONF = """\
load_module {so};
worker_processes {workers};
user root;
error_log {run}/nginx-error.log warn;
pid {run}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
    access_log off;
{temp_paths}    include {run}/x402-module/http.conf;
    upstream anchor_auth {{ server unix:{run}/anchor.sock; keepalive 64; }}
    server {{
        listen unix:{run}/anchor.sock;
        location / {{ return 204; }}
    }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {www};
        default_type application/json;
        include {run}/x402-module/server.conf;
        location = /_anchor_auth {{
            internal;
            proxy_pass http://anchor_auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location /anchor {{ auth_request /_anchor_auth; try_files /ok.json =404; }}
        location /plain {{ try_files /ok.json =404; }}
        location /paid {{ x402 bench; try_files /ok.json =404; }}
        location /leased {{ x402 bench; x402_lease_keys {keys}; try_files /ok.json =404; }}
    }}
}}
"""


class Bench:
    def __init__(self, args):
        self.args = args
        self.results = []
        self.anchors = {}
        self.last_anchor = None
        self.processes = []
        os.makedirs(RUN, exist_ok=True)
        os.makedirs(os.path.join(RUN, "www"), exist_ok=True)
        with open(os.path.join(RUN, "www", "ok.json"), "w") as f:
            f.write('{"ok":true}\n')
        render_includes(RUN)
        # Benchmarks run without the JSON access log and reports (they are measured by the e2e tests).
        protect = os.path.join(RUN, "x402", "protect.conf")
        with open(protect) as f:
            text = f.read()
        with open(protect, "w") as f:
            f.write("\n".join(l for l in text.splitlines() if not l.startswith("access_log")) + "\n")

    # -- processes ------------------------------------------------------------------------------
    def start_redis(self):
        self.redis_port = free_port()
        sh(os.path.join(ROOT, "deploy", "dev", "redis.sh"), "start", os.path.join(RUN, "redis"), str(self.redis_port),
           stdout=subprocess.DEVNULL)

    def start_sidecar(self, store, workers):
        info = self.devnet.info
        # As deployed: the sidecar gets as many event loops as nginx has workers (unless told).
        self.loops = self.args.sidecar_loops or workers
        stores = ('stores: {ledger: embedded, embedded: {journal: "%s/nonces.journal"}}\nsettlement_journal: x\n'
                  % RUN if store == "embedded" else
                  'stores: {ledger: redis, redis: {url: "redis://127.0.0.1:%d", key_prefix: "bench%d"}}\n'
                  % (self.redis_port, time.time_ns()))
        stores = stores.replace("settlement_journal: x\n", "")
        for name in ("nonces.journal", "settlements.journal"):
            for suffix in ("", ".lock"):
                path = os.path.join(RUN, name + suffix)
                if os.path.exists(path):
                    os.unlink(path)
        self.sidecar_port = free_port()
        config = os.path.join(RUN, "x402.yaml")
        with open(config, "w") as f:
            f.write(SIDECAR_CONFIG.format(run=RUN, port=self.sidecar_port, loops=self.loops,
                                          pay_to=info["payTo"]["address"], token=info["token"], rpc=info["rpcUrl"],
                                          relayer_key=info["sidecarRelayer"]["privateKey"], stores=stores,
                                          lease_top=bench_leases.TOP, lease_routes=bench_leases.ROUTES))
        log = open(os.path.join(RUN, "sidecar.log"), "a")
        self.sidecar = subprocess.Popen([SIDECAR, "serve", "--config", config],
                                        stdout=log, stderr=log)
        url = f"http://127.0.0.1:{self.sidecar_port}/readyz"
        wait_for(lambda: requests.get(url, timeout=1).status_code == 200, what="sidecar")

    def stop_sidecar(self):
        self.sidecar.send_signal(signal.SIGTERM)
        self.sidecar.wait(15)

    def sidecar_memory(self):
        fields = {}
        with open(f"/proc/{self.sidecar.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    name, value = line.split(":")
                    fields[name] = int(value.split()[0]) // 1024
        return fields

    def start_nginx(self, workers):
        self.nginx_port = free_port()
        conf = os.path.join(RUN, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(run=RUN, port=self.nginx_port, workers=workers, temp_paths=nginx_temp_paths(RUN),
                                      lease_locations=bench_leases.LOCATIONS.format(run=RUN)))
        sh("nginx", "-t", "-q", "-c", conf, "-p", RUN)
        sh("nginx", "-c", conf, "-p", RUN)
        wait_for(lambda: requests.get(f"http://127.0.0.1:{self.nginx_port}/anchor", timeout=1).status_code == 200,
                 what="nginx")

    def stop_nginx(self):
        conf = os.path.join(RUN, "nginx.conf")
        subprocess.run(["nginx", "-c", conf, "-p", RUN, "-s", "quit"], check=False)
        wait_for(lambda: not os.path.exists(os.path.join(RUN, "nginx.pid")), timeout=15, what="nginx to stop")

    # -- wrk --------------------------------------------------------------------------------------
    def wrk(self, url, connections=None, duration=None, timeout=2, **env):
        connections = connections or self.args.connections
        environment = dict(os.environ, THREADS=str(self.args.threads), **env)
        out = subprocess.run(["wrk", f"-t{self.args.threads}", f"-c{connections}", f"-d{duration or self.args.duration}s",
                              f"--timeout={timeout}s", "--latency", "-s", WRK_SCRIPT, url], env=environment,
                             capture_output=True, text=True, check=True).stdout
        return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])

    def record(self, scenario, workers, figures, expect, note=""):
        row = dict(scenario=scenario, workers=workers, note=note, **figures)
        ok = figures["errors"] == 0 and (figures["non2xx"] == 0 if expect == 200 else figures["non2xx"] == figures["requests"])
        row["answers_as_expected"] = ok
        self.results.append(row)
        print(f"  {scenario:28s} workers={workers}  {figures['rps']:>9.0f} req/s  p50 {figures['p50_us']} µs  "
              f"p99 {figures['p99_us']} µs  {'ok' if ok else 'UNEXPECTED ANSWERS ' + json.dumps(figures)}", flush=True)

    def anchor(self, base, workers):
        figures = self.wrk(base + "/anchor", duration=self.args.anchor_duration, TARGET="/anchor")
        ok = figures["errors"] == 0 and figures["non2xx"] == 0
        self.anchors.setdefault(workers, []).append(figures["rps"])
        self.last_anchor = figures["rps"]
        print(f"  {'anchor: auth_request → 204':28s} workers={workers}  {figures['rps']:>9.0f} req/s"
              f"{'' if ok else '  UNEXPECTED ANSWERS'}", flush=True)
        return figures

    def wanted(self, name):
        """--only REGEX runs just the matching scenarios (each still between two anchor runs)."""
        return not self.args.only or re.search(self.args.only, name) is not None

    def scenario(self, name, workers, base, env, expect):
        if not self.wanted(name):
            return
        before = self.last_anchor
        self.record(name, workers, self.wrk(base + env["TARGET"], **env), expect)
        after = self.anchor(base, workers)["rps"]
        self.results[-1]["anchor_rps"] = (before + after) / 2

    def emit_payments(self, path, count, key):
        info = self.devnet.info
        env = dict(os.environ, X402_EMIT_KEY=key, X402_EMIT_ASSET=info["token"], X402_EMIT_PAY_TO=info["payTo"]["address"],
                   X402_EMIT_CHAIN_ID="84532", X402_EMIT_AMOUNT="10000", X402_EMIT_MAX_TIMEOUT="3000")
        sh(MICRO, "--emit-payments", str(count), path, env=env, stdout=subprocess.DEVNULL)

    # -- the run ----------------------------------------------------------------------------------
    def run(self):
        started = time.time()
        print("== starting Redis and the devnet", flush=True)
        self.start_redis()
        self.devnet = Devnet(os.path.join(RUN, "devnet"))
        payer = self.devnet.info["payers"][0]
        # Exposure control holds every unsettled payment against the payer's balance (the worker is
        # off here): the payer must be able to cover a whole run of them.
        self.devnet.mint(payer["address"], 10**7 * 10**6)
        payments = os.path.join(RUN, "payments.txt")
        count = self.args.payments
        print(f"== signing {count} payments (x402-micro --emit-payments)", flush=True)
        self.emit_payments(payments, count, payer["privateKey"])
        # Another payer's payments for the route without exposure control (fresh nonces of its own).
        unchecked_payments = os.path.join(RUN, "payments-unchecked.txt")
        if self.wanted("paid, fresh payments, exposure unchecked (embedded)"):
            self.emit_payments(unchecked_payments, count, self.devnet.info["payers"][2]["privateKey"])
        with open(payments) as f:
            replayed = f.readline().strip()
        memory = {}
        for workers in self.args.workers:
            print(f"== nginx with {workers} worker(s)", flush=True)
            for store in ("embedded", "redis"):
                self.start_sidecar(store, workers)
                self.start_nginx(workers)
                base = f"http://127.0.0.1:{self.nginx_port}"
                # Each scenario is bracketed by anchor runs and compared with their mean: on a
                # shared machine the speed drifts from minute to minute, and a ratio against an
                # anchor measured minutes earlier would measure the drift.
                self.anchor(base, workers)
                if store == "embedded":
                    self.scenario("unpaid → 402", workers, base, dict(TARGET="/paid"), 402)
                    self.scenario("unpaid → 402, every URL new (sidecar)", workers, base,
                                  dict(TARGET="/paid", DISTINCT="1"), 402)
                    requests.get(base + "/paid", headers={"PAYMENT-SIGNATURE": replayed})  # used once
                    self.scenario("replayed payment → 402", workers, base,
                                  dict(TARGET="/paid", HEADER_NAME="PAYMENT-SIGNATURE", HEADER_VALUE=replayed), 402)
                self.scenario(f"paid, fresh payments ({store})", workers, base, dict(TARGET="/paid", PAYMENTS=payments),
                              200)
                self.scenario(f"paid, fresh payments, exposure unchecked ({store})", workers, base,
                              dict(TARGET="/unchecked", PAYMENTS=unchecked_payments), 200)
                requests.get(base + "/limited")  # the hour's one call
                self.scenario(f"rate-limited → 429 ({store})", workers, base, dict(TARGET="/limited"), 429)
                bench_leases.scenarios(self, workers, base, store)
                memory[f"{store}, {workers} worker(s)"] = self.sidecar_memory()
                self.stop_nginx()
                self.stop_sidecar()
        if not self.args.no_module:
            self.run_module(payments)
        if not self.args.no_peer:
            self.run_peer()
        self.memory = memory
        self.micro = [] if self.args.no_micro else self.run_micro()
        self.report(time.time() - started)

    # -- ngx_http_x402_module rows (begin) ------------------------------------------------------
    # Their own nginx (load_module, nginx/module/{http,server}.conf, the same anchor location) in
    # .run/bench/module, in front of a fresh sidecar on the embedded ledger; each scenario is
    # bracketed by that nginx's anchor runs like the stock ones.
    def start_module_nginx(self, workers):
        from stack import MODULE_SO, render_module_includes
        run = os.path.join(RUN, "module")
        target = render_module_includes(run, RUN)
        # As the stock rows: no reports (the stock bench drops its access_log reports too).
        http_conf = os.path.join(target, "http.conf")
        with open(http_conf) as f:
            text = f.read()
        with open(http_conf, "w") as f:
            f.write("\n".join(l for l in text.splitlines() if not l.startswith("x402_report")) + "\n")
        sys.path.insert(0, os.path.join(ROOT, "Tests", "module"))
        from harness import write_key_file
        keys = write_key_file(os.path.join(run, "lease.keys"))
        self.module_nginx_port = free_port()
        conf = os.path.join(run, "nginx.conf")
        with open(conf, "w") as f:
            f.write(MODULE_NGINX_CONF.format(so=MODULE_SO, run=run, www=os.path.join(RUN, "www"),
                                             temp_paths=nginx_temp_paths(run),
                                             port=self.module_nginx_port, workers=workers, keys=keys))
        sh("nginx", "-t", "-q", "-c", conf, "-p", run)
        sh("nginx", "-c", conf, "-p", run)
        wait_for(lambda: requests.get(f"http://127.0.0.1:{self.module_nginx_port}/anchor", timeout=1).status_code
                 == 200, what="module nginx")
        return f"http://127.0.0.1:{self.module_nginx_port}"

    def stop_module_nginx(self):
        run = os.path.join(RUN, "module")
        subprocess.run(["nginx", "-c", os.path.join(run, "nginx.conf"), "-p", run, "-s", "quit"], check=False)
        wait_for(lambda: not os.path.exists(os.path.join(run, "nginx.pid")), timeout=15, what="module nginx to stop")

    def module_lease(self, alg="HS256"):
        """A lease for route bench, signed with the key file's HS256 or Ed25519 key, valid for the
        run: the module verifies it in process and never asks the sidecar (no counters, no recheck)."""
        from harness import claims, mint
        return mint(claims(routes=["bench"], ttl=3600, aud="bench.local"), alg=alg)

    def run_module(self, payments):
        for workers in self.args.workers:
            print(f"== ngx_http_x402_module, nginx with {workers} worker(s)", flush=True)
            self.start_sidecar("embedded", workers)
            base = self.start_module_nginx(workers)
            try:
                self.anchor(base, workers)
                self.scenario("plain location, no auth (ceiling)", workers, base, dict(TARGET="/plain"), 200)
                self.scenario("module: unpaid → 402", workers, base, dict(TARGET="/paid"), 402)
                self.scenario("module: unpaid → 402, every URL new (sidecar)", workers, base,
                              dict(TARGET="/paid", DISTINCT="1"), 402)
                self.scenario("module: lease-valid (HS256), checked in nginx", workers, base,
                              dict(TARGET="/leased", HEADER_NAME="X-X402-Lease", HEADER_VALUE=self.module_lease()), 200)
                self.scenario("module: lease-valid (EdDSA), checked in nginx", workers, base,
                              dict(TARGET="/leased", HEADER_NAME="X-X402-Lease",
                                   HEADER_VALUE=self.module_lease("EdDSA")), 200)
                self.scenario("module: paid, fresh payments (embedded)", workers, base,
                              dict(TARGET="/paid", PAYMENTS=payments), 200)
            finally:
                self.stop_module_nginx()
                self.stop_sidecar()

    def cleanup_module(self):
        run = os.path.join(RUN, "module")
        subprocess.run(["nginx", "-c", os.path.join(run, "nginx.conf"), "-p", run, "-s", "quit"],
                       capture_output=True, check=False)
    # -- ngx_http_x402_module rows (end) --------------------------------------------------------

    def run_peer(self):
        print("== peer: the official x402 FastAPI middleware (uvicorn, 1 worker), same devnet facilitator", flush=True)
        port = free_port()
        env = dict(os.environ, DEVNET_INFO=os.path.join(RUN, "devnet", "devnet.json"))
        log = open(os.path.join(RUN, "peer.log"), "w")
        peer = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "uvicorn"), "app:app", "--port", str(port),
                                 "--log-level", "warning", "--no-access-log"], cwd=os.path.join(ROOT, "Benchmarks", "peer"),
                                env=env, stdout=log, stderr=log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: requests.get(base + "/free", timeout=1).status_code == 200, what="peer")
            self.record("peer: unpaid → 402", 1, self.wrk(base + "/paid", TARGET="/paid"), 402)
            payments = os.path.join(RUN, "peer-payments.txt")
            self.emit_payments(payments, self.args.peer_payments, self.devnet.info["payers"][1]["privateKey"])
            self.record("peer: paid, fresh payments", 1,
                        self.wrk(base + "/paid", connections=self.args.peer_connections, duration=self.args.duration * 2,
                                 timeout=60, TARGET="/paid", PAYMENTS=payments),
                        200, note="verifies and settles through the facilitator per request")
        finally:
            peer.terminate()
            peer.wait(10)

    def run_micro(self):
        path = os.path.join(RUN, "micro.json")
        sh(MICRO, "--json", path, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)

    def report(self, seconds):
        from statistics import median
        ours_paid = max((r["rps"] for r in self.results if r.get("scenario", "").startswith("paid")), default=0)
        peer_paid = next((r["rps"] for r in self.results if r.get("scenario") == "peer: paid, fresh payments"), None)
        peer_unpaid = next((r["rps"] for r in self.results if r.get("scenario") == "peer: unpaid → 402"), None)
        lines = [f"wrk -t{self.args.threads} -c{self.args.connections} -d{self.args.duration}s against nginx on "
                 f"127.0.0.1; sidecar event loops = {self.args.sidecar_loops or 'nginx workers'}; {os.cpu_count()} cores; "
                 f"{seconds:.0f} s in all. "
                 f"Each ratio is to the mean of the anchor runs ({self.args.anchor_duration} s) just before and just after "
                 "that scenario.", "",
                 "| scenario | nginx workers | req/s | p50 | p99 | × anchor | answers |", "|---|---:|---:|---:|---:|---:|---|"]
        for workers, values in self.anchors.items():
            lines.append(f"| anchor: auth_request → 204 (median of {len(values)}; range {min(values):,.0f}–{max(values):,.0f}) "
                         f"| {workers} | {median(values):,.0f} | – | – | 1.00 | as expected |")
        for r in self.results:
            if "skipped" in r:
                lines.append(f"| {r['scenario']} | – | – | – | – | – | skipped: {r['skipped']} |")
                continue
            anchor = r.get("anchor_rps")
            ratio = f"{r['rps'] / anchor:.2f}" if anchor else "–"
            lines.append(f"| {r['scenario']} | {r['workers']} | {r['rps']:,.0f} | {r['p50_us'] / 1000:.2f} ms | "
                         f"{r['p99_us'] / 1000:.2f} ms | {ratio} | {'as expected' if r['answers_as_expected'] else 'UNEXPECTED'} |")
        lines.append("")
        if peer_paid:
            lines.append(f"Against the peer (official FastAPI middleware, same machine and devnet): paid "
                         f"{ours_paid / peer_paid:.0f}× its paid rate ({peer_paid:,.0f} req/s); "
                         f"unpaid 402 {max(r['rps'] for r in self.results if r.get('scenario') == 'unpaid → 402') / peer_unpaid:.0f}× "
                         f"its 402 rate ({peer_unpaid:,.0f} req/s).")
        lines.append("Sidecar memory after each paid run (VmRSS / peak VmHWM, MB): " + "; ".join(
            f"{k}: {v.get('VmRSS')} / {v.get('VmHWM')}" for k, v in self.memory.items()) + ".")
        lines.append("")
        lines.append("| micro-benchmark (release, 1 core) | µs/op |")
        lines.append("|---|---:|")
        for row in self.micro:
            lines.append(f"| {row['name']} | {row['ns_per_op'] / 1000:.2f} |")
        table = "\n".join(lines)
        print("\n" + table)
        with open(os.path.join(RUN, "bench.md"), "w") as f:
            f.write(table + "\n")
        with open(os.path.join(RUN, "bench.json"), "w") as f:
            json.dump({"results": self.results, "anchors": self.anchors, "memory": self.memory, "micro": self.micro,
                       "args": vars(self.args), "seconds": seconds}, f, indent=1)
        print(f"\nwritten: {RUN}/bench.md and bench.json")

    def cleanup(self):
        subprocess.run(["nginx", "-c", os.path.join(RUN, "nginx.conf"), "-p", RUN, "-s", "quit"],
                       capture_output=True, check=False)
        self.cleanup_module()
        if getattr(self, "sidecar", None) and self.sidecar.poll() is None:
            self.sidecar.kill()
        if getattr(self, "devnet", None):
            self.devnet.stop()
        if getattr(self, "redis_port", None):
            subprocess.run([os.path.join(ROOT, "deploy", "dev", "redis.sh"), "stop", os.path.join(RUN, "redis"),
                            str(self.redis_port)], capture_output=True, check=False)


def main():
    parser = argparse.ArgumentParser(description="x402-nginx benchmarks")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--anchor-duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sidecar-loops", type=int, default=0, help="0: as many as nginx workers")
    parser.add_argument("--payments", type=int, default=200_000)
    parser.add_argument("--peer-payments", type=int, default=3000)
    parser.add_argument("--siwx-proofs", type=int, default=12000, help="sign-in proofs per SIWX run (2 s)")
    parser.add_argument("--peer-connections", type=int, default=4)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--only", metavar="REGEX", help="run only the scenarios whose name matches")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmarks")
    parser.add_argument("--no-module", action="store_true", help="skip the ngx_http_x402_module rows")
    args = parser.parse_args()
    os.environ.pop("X402_TEST_DEVNET_INFO", None)
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
