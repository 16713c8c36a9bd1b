#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/Corpus/<target>/ from the test fixtures (run from anywhere).

Seeds are the inputs the unit tests already use: the official SDK's payment headers
(Tests/X402Tests/Fixtures/vectors.json), SIWX proofs (siwx.json), lease tokens
(Tests/X402SidecarTests/Fixtures/leases.json), the YAML in the configuration tests and the
shipped examples, the report lines of UndecodableJobTests, the Redis replies our store
scripts read, and the crash inputs the regression tests keep (Tests/*/Fixtures/fuzz/).
Each file is named after what it came from; rerunning rewrites the same files.

Structure-aware targets take a leading mode byte (see each target's doc comment): seeds are
written decoded (JSON), with the mode that re-encodes them, so mutations land in the JSON.
"""
import base64
import binascii
import json
import pathlib
import re
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Fuzz" / "Corpus"


def strict_b64(text, urlsafe=False):
    """The decoded bytes when `text` is the one strict spelling of them, else None."""
    try:
        if urlsafe:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text else None
        raw = base64.b64decode(text, validate=True)
        return raw if base64.b64encode(raw).decode() == text else None
    except (binascii.Error, ValueError):
        return None


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:80]
    (directory / safe).write_bytes(data if isinstance(data, bytes) else data.encode())


def payment_headers(documents):
    vectors = json.loads((ROOT / "Tests/X402Tests/Fixtures/vectors.json").read_text())
    for case in vectors["cases"]:
        for header, value in case["headers"].items():
            version = 2 if header.upper() == "PAYMENT-SIGNATURE" else 1
            decoded = strict_b64(value)
            if decoded is None:  # a strictness case: keep its spelling (mode bit 1: raw header text)
                write("payment-header", case["name"], bytes([2 | (version - 1)]) + value.encode())
            else:
                write("payment-header", case["name"], bytes([version - 1]) + decoded)
                documents.append((case["name"], decoded))


def siwx_proofs(documents):
    fixture = json.loads((ROOT / "Tests/X402Tests/Fixtures/siwx.json").read_text())
    for case in fixture["cases"]:
        decoded = strict_b64(case["header"])
        if decoded is None:
            write("siwx", case["name"], b"\x01" + case["header"].encode())
        else:
            write("siwx", case["name"], b"\x00" + decoded)
            documents.append(("siwx " + case["name"], decoded))


def lease_tokens(documents):
    fixture = json.loads((ROOT / "Tests/X402SidecarTests/Fixtures/leases.json").read_text())
    for case in fixture["cases"]:
        token = case["token"]
        parts = token.split(".")
        decoded = [strict_b64(part, urlsafe=True) for part in parts]
        if len(parts) == 3 and all(p is not None for p in decoded) and b"\n" not in decoded[0] + decoded[1]:
            write("lease", case["name"], b"\x00" + b"\n".join(decoded))
            documents.append(("lease header " + case["name"], decoded[0]))
            documents.append(("lease claims " + case["name"], decoded[1]))
        else:
            write("lease", case["name"], b"\x01" + token.encode())


def configs():
    for path in sorted((ROOT / "config").glob("*.yaml")):
        write("config", path.name, path.read_bytes())
    for path in sorted((ROOT / "Tests/X402SidecarTests").glob("Configuration*.swift")):
        blocks = re.findall(r'"""\n(.*?)\n\s*"""', path.read_text(), re.S)
        for index, block in enumerate(blocks):
            if "\\(" in block:  # Swift interpolation: not the YAML a user writes
                continue
            indent = min(len(line) - len(line.lstrip()) for line in block.splitlines() if line.strip())
            yaml = "\n".join(line[indent:] for line in block.splitlines()) + "\n"
            write("config", f"{path.stem}-{index}.yaml", yaml)
    for name, (route, extra) in RULE_SEEDS.items():
        write("config", name + ".yaml", RULE_BASE % (route, extra))
    embedded = 'ledger: embedded, embedded: {journal: "/tmp/x402-fuzz/nonces.journal"}'
    redis = (RULE_BASE % (ROUTE, "")).replace(embedded, 'ledger: redis, redis: {url: "redis://127.0.0.1:6379/0"}')
    write("config", "rule-redis-store.yaml", redis)


# ConfigurationRuleTests' `yaml(...)` base file with one section each, as its rules write them.
RULE_BASE = """server: {listen: ["127.0.0.1:0"]}
defaults: {pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", network: base-sepolia}
routes:
  weather: %s
stores: {ledger: embedded, embedded: {journal: "/tmp/x402-fuzz/nonces.journal"}}
%s
"""
ROUTE = '{description: "Weather", price: "0.01"}'
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
SECRET = "9f2c4e1a7b3d5f8e0a6c2b4d8f1e3a5c7b9d0f2e4a6c8b1d3f5e7a9c0b2d4f6e"
RULE_SEEDS = {
    "rule-relayer": (ROUTE, "settlement: {mode: before, via: relayer}\nrelayer: {private_key: \"%s\"}\n"
                     "rpc_urls: {base-sepolia: \"http://127.0.0.1:8545\"}" % KEY),
    "rule-deferred-facilitator": ('{description: W, price: "0.01", max_pending_per_payer: "1", exposure: unchecked}',
                                  "settlement: {mode: deferred, via: facilitator}\n"
                                  "facilitator: {url: \"http://127.0.0.1:9/\"}"),
    "rule-lease": ('{description: W, price: "0.01", lease: {opens: [weather], seconds: 60}}',
                   'leases: {keys: ["k1 HS256 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}'),
    "rule-sign-in": ('{description: W, price: "0.01", sign_in_with_x: {access_seconds: 60}}',
                     "sign_in_with_x: {nonce_secret: %s}" % SECRET),
    "rule-admin-limits": ('{description: W, price: "0.01", rate_limits: [{limit: "10/s burst 20", key: ip}], '
                          'free: {calls: 3, per: 1h, key: ip}}',
                          ('admin: {listen: "127.0.0.1:0", token: "%s"}\n' % SECRET) +
                          'rate_limiting: {trusted_proxies: ["10.0.0.0/8"]}'),
}


def reports():
    lines = {
        "syslog-retried": "<190>Dec  2 15:00:00 x402: 0123abcd 502, 200",
        "module-extended": "<14>x402: 0123abcd 204 bytes=1234 duration_ms=17 lease=" + "a" * 32,
        "module-lease-slot": "<14>x402: - 200 bytes=10 duration_ms=3 lease=" + "b" * 32 + " slot=5f1d2c3b4a596877",
        "lease-dash": "<14>x402: 0123abcd 200 lease=-",
        "upstream-colon": "<14>x402: 0123abcd 502 : 504",
        "no-status": "x402: id",
    }
    for name, line in lines.items():
        write("report", name, line)


def redis_replies():
    # What our store scripts and commands read back (RedisNonceLedger, RateLimiter, RedisLeaseStore,
    # RevocationMirror, RedisSettlementQueue), pipelined as they arrive on one connection.
    replies = {
        "pong": b"+PONG\r\n",
        "reserve": b":1\r\n",
        "noscript": b"-NOSCRIPT No matching script. Please use EVAL.\r\n",
        "null-bulk": b"$-1\r\n",
        "null-array": b"*-1\r\n",
        "empty-array": b"*0\r\n",
        "rate-limit": b"*4\r\n:1\r\n:0\r\n:250\r\n:19\r\n",
        "exposure": b"*2\r\n:0\r\n$5\r\n10000\r\n",
        "zrange-withscores": b"*4\r\n$32\r\n" + b"a" * 32 + b"\r\n$10\r\n1767229200\r\n$32\r\n" + b"b" * 32
        + b"\r\n$10\r\n1767232800\r\n",
        "revocation-poll": b"*4\r\n$8\r\nepoch-01\r\n:7\r\n$43\r\n" + b"c" * 32 + b" 1767229200\r\n$1\r\n7\r\n",
        "pipelined": b"+OK\r\n:1\r\n$3\r\nabc\r\n*1\r\n*1\r\n:2\r\n",
        "binary-bulk": b"$4\r\n\x00\r\n\xff\r\n",
    }
    for name, data in replies.items():
        write("redis-reply", name, b"\x00" + data)
        write("redis-reply", name + "-bytewise", b"\x01" + data)


def json_documents(documents):
    extra = {
        "escapes": rb'{"a":"\u00e9\ud83d\ude00\n\t\"\\\/","b":[1,-0.5e+10,true,false,null],"c":{}}',
        "nested": b"[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]",
        "utf8": '{"名前":"値"}'.encode(),
        "duplicate": b'{"a":1,"a":2}',
    }
    for name, data in extra.items():
        write("json", name, data)
    seen = set()
    for name, data in documents:
        if data not in seen:
            seen.add(data)
            write("json", name, data)


def regressions():
    """Crash inputs kept for the regression tests (Tests/*/Fixtures/fuzz/TARGET-*.bin), as seeds."""
    targets = [d.name for d in CORPUS.iterdir()]
    for path in sorted(ROOT.glob("Tests/*/Fixtures/fuzz/*.bin")):
        target = max((t for t in targets if path.name.startswith(t + "-")), key=len, default=None)
        if target is None:
            raise SystemExit(f"{path}: name it after its fuzz target ({', '.join(targets)})")
        write(target, "regression-" + path.stem, path.read_bytes())


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    documents = []
    payment_headers(documents)
    siwx_proofs(documents)
    lease_tokens(documents)
    configs()
    reports()
    redis_replies()
    json_documents(documents)
    regressions()
    for directory in sorted(CORPUS.iterdir()):
        files = list(directory.iterdir())
        print(f"{directory.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
