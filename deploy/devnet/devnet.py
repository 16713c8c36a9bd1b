#!/usr/bin/env python3
"""The x402-nginx local devnet: a real EVM (py-evm through eth-tester) with chain id 84532, our
EIP-3009 token compiled from token.vy, a JSON-RPC server over HTTP, and an x402 facilitator
(/verify, /settle, /supported) built on the official `x402` package. Everything listens on
127.0.0.1. When ready it prints one line of JSON describing the chain, the token and the keys
(and writes it to --info-file), then serves until SIGTERM or SIGINT.

Keys are derived from fixed strings: this is a test chain, never use them elsewhere.
"""
import argparse
import hashlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_bloom import BloomFilter
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed, TransactionNotFound, ValidationError
from eth_utils import keccak, to_checksum_address
from pool import PoolError, TransactionPool

CHAIN_ID = 84532
HERE = os.path.dirname(os.path.abspath(__file__))
ERROR_SELECTOR = bytes.fromhex("08c379a0")
log = logging.getLogger("devnet")


def key_for(label):
    return "0x" + keccak(text=f"x402-nginx devnet / {label}").hex()


def account(label):
    key = key_for(label)
    return {"address": Account.from_key(key).address, "privateKey": key}


# ---------------------------------------------------------------------------------------------
# Token compilation (cached by source hash)

def compile_token():
    with open(os.path.join(HERE, "token.vy")) as f:
        source = f.read()
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    cache_dir = os.path.join(HERE, ".cache")
    cache = os.path.join(cache_dir, f"token-{digest}.json")
    if os.path.exists(cache):
        with open(cache) as f:
            return json.load(f)
    import vyper

    out = vyper.compile_code(source, output_formats=["abi", "bytecode"])
    compiled = {"abi": out["abi"], "bytecode": out["bytecode"]}
    os.makedirs(cache_dir, exist_ok=True)
    with open(cache + ".tmp", "w") as f:
        json.dump(compiled, f)
    os.replace(cache + ".tmp", cache)
    return compiled


# ---------------------------------------------------------------------------------------------
# The chain

class RPCError(Exception):
    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def revert_error(exc):
    """eth-tester reverts carry no data: rebuild Error(string) so clients can map the reason."""
    reason = exc.args[0] if exc.args else ""
    if isinstance(reason, (bytes, bytearray)):
        raw = bytes(reason)
        if raw[:4] == ERROR_SELECTOR:
            try:
                reason = abi_decode(["string"], raw[4:])[0]
            except Exception:
                reason = raw.hex()
        else:
            reason = raw.decode("utf-8", "replace")
    reason = str(reason)
    if reason.startswith("execution reverted: "):
        reason = reason[len("execution reverted: "):]
    if reason in ("", "b''", 'b""', "Reverted 0x"):
        # A bare `revert` / failed assert without a message: no Error(string), like geth.
        return RPCError(3, "execution reverted", "0x")
    data = "0x" + (ERROR_SELECTOR + abi_encode(["string"], [reason])).hex()
    return RPCError(3, f"execution reverted: {reason}", data)


def q(value):
    return hex(value) if isinstance(value, int) and not isinstance(value, bool) else value


CAMEL = {}


def camel(name):
    if name not in CAMEL:
        head, *rest = name.split("_")
        CAMEL[name] = head + "".join(p.title() for p in rest)
    return CAMEL[name]


def to_rpc(value):
    if isinstance(value, dict):
        out = {camel(k): to_rpc(v) for k, v in value.items()}
        if isinstance(value.get("logs_bloom"), int):  # eth-tester keeps the bloom as an int
            out["logsBloom"] = "0x" + value["logs_bloom"].to_bytes(256, "big").hex()
        if "data" in out and "input" not in out and ("nonce" in out and "hash" in out):
            out["input"] = out["data"]  # a transaction: nodes call its calldata `input`
        return out
    if isinstance(value, (list, tuple)):
        return [to_rpc(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return q(value)


def parse_int(value, default=None):
    if value is None:
        return default
    if isinstance(value, int):
        return value
    return int(value, 16) if str(value).startswith("0x") else int(value)


class Chain:
    """eth-tester with chain id 84532. Every access holds one lock: py-evm is not thread-safe and
    there is no mempool, so transactions are applied one at a time, in arrival order."""

    def __init__(self):
        backend = PyEVMBackend()
        # eth-tester hard-codes its chain id in a class it defines inside a function; patch it
        # (the VM reads it on each use, so signatures for 84532 validate).
        type(backend.chain).chain_id = CHAIN_ID
        self.tester = EthereumTester(backend=backend, auto_mine_transactions=True)
        self.automine = True  # evm_setAutomine: off, sent transactions wait in `pool`
        self.pool = TransactionPool()
        self.lock = threading.RLock()
        self.genesis = self.tester.get_accounts()
        self.offset = 0  # seconds added by evm_increaseTime

    def now(self):
        return int(time.time()) + self.offset

    def refresh(self):
        """Keep the pending block's timestamp at wall-clock time, as a live chain's next block."""
        if not self.automine:
            return  # automine off: blocks come only from evm_mine (mining would sweep the pool)
        latest = self.tester.get_block_by_number("latest")
        if latest["timestamp"] < self.now() - 1:
            self.tester.mine_blocks(1)

    def tx_params(self, call):
        tx = {
            "from": call.get("from") or self.genesis[0],
            "to": call.get("to"),
            "data": call.get("data") or call.get("input") or "0x",
            "gas": parse_int(call.get("gas"), 30_000_000),
            "value": parse_int(call.get("value"), 0),
        }
        if not tx["to"]:
            tx.pop("to")
        return tx

    def handle(self, method, params):
        t = self.tester
        with self.lock:
            if method in ("eth_call", "eth_estimateGas", "eth_sendRawTransaction", "eth_blockNumber",
                          "eth_getBlockByNumber", "eth_feeHistory"):
                # A live chain makes a block every few seconds: callers that read the latest
                # block's time (the official facilitator does) must see the present, not the
                # moment of the last transaction.
                self.refresh()
            if method == "eth_chainId":
                return hex(CHAIN_ID)
            if method == "net_version":
                return str(CHAIN_ID)
            if method == "web3_clientVersion":
                return "x402-nginx-devnet/eth-tester"
            if method == "eth_syncing":
                return False
            if method == "eth_accounts":
                return []
            if method == "eth_blockNumber":
                return hex(t.get_block_by_number("latest")["number"])
            if method == "eth_gasPrice":
                return hex(self.base_fee() + 1_000_000)
            if method == "eth_maxPriorityFeePerGas":
                return hex(1_000_000)
            if method == "eth_feeHistory":
                count = min(parse_int(params[0]), 64)
                percentiles = params[2] if len(params) > 2 else []
                latest = t.get_block_by_number("latest")["number"]
                oldest = max(0, latest - count + 1)
                blocks = latest - oldest + 1
                base = self.base_fee()
                return {
                    "oldestBlock": hex(oldest),
                    "baseFeePerGas": [hex(base)] * (blocks + 1),
                    "gasUsedRatio": [0.0] * blocks,
                    "reward": [[hex(1_000_000)] * len(percentiles) for _ in range(blocks)],
                }
            if method == "eth_getTransactionCount":
                block = params[1] if len(params) > 1 else "latest"
                nonce = t.get_nonce(to_checksum_address(params[0]), "latest")
                return hex(self.pool.next_nonce(params[0], nonce) if block == "pending" else nonce)
            if method == "eth_getBalance":
                return hex(t.get_balance(to_checksum_address(params[0])))
            if method == "eth_getCode":
                return t.get_code(to_checksum_address(params[0]))
            if method == "eth_call":
                try:
                    return t.call(self.tx_params(params[0]), self.block_id(params[1] if len(params) > 1 else None))
                except TransactionFailed as exc:
                    raise revert_error(exc)
            if method == "eth_estimateGas":
                try:
                    return hex(t.estimate_gas(self.tx_params(params[0]), self.block_id(params[1] if len(params) > 1 else None)))
                except TransactionFailed as exc:
                    raise revert_error(exc)
            if method == "eth_sendRawTransaction":
                return self.send_raw(params[0])
            if method == "eth_getTransactionReceipt":
                try:
                    receipt = t.get_transaction_receipt(params[0])
                except TransactionNotFound:
                    return None
                if receipt.get("block_number") is None:
                    return None
                return self.receipt_rpc(receipt)
            if method == "eth_getTransactionByHash":
                if self.pool.find(params[0]):
                    return self.pool.find(params[0])
                try:
                    return to_rpc(t.get_transaction_by_hash(params[0]))
                except TransactionNotFound:
                    return None
            if method in ("eth_getBlockByNumber", "eth_getBlockByHash"):
                full = bool(params[1]) if len(params) > 1 else False
                try:
                    if method == "eth_getBlockByNumber":
                        ident = params[0]
                        ident = parse_int(ident) if str(ident).startswith("0x") else ident
                        block = t.get_block_by_number(ident, full)
                    else:
                        block = t.get_block_by_hash(params[0], full)
                except Exception:
                    return None
                return to_rpc(block)
            if method == "eth_getLogs":
                return self.get_logs(params[0] if params else {})
            if method == "evm_mine":
                if not self.mine_pool():
                    t.mine_blocks(1)
                return "0x0"
            if method == "evm_setAutomine":
                # Hardhat's and Anvil's switch: off, sent transactions wait in the pool (known,
                # no receipt) until evm_mine or until it is switched on again.
                self.automine = bool(params and params[0])
                if self.automine:
                    self.mine_pool()
                return True
            if method == "evm_increaseTime":
                self.offset += parse_int(params[0])
                t.time_travel(self.now())
                return hex(self.offset)
            raise RPCError(-32601, f"the method {method} does not exist/is not available")

    def block_id(self, ident):
        """A JSON-RPC block parameter as eth-tester wants it ("pending" is the latest block here:
        every transaction is mined when it arrives)."""
        if ident is None or ident in ("latest", "pending", "safe", "finalized"):
            return "latest"
        if ident == "earliest":
            return 0
        if isinstance(ident, dict):  # EIP-1898 {"blockNumber"} / {"blockHash"}
            if "blockHash" in ident:
                return self.tester.get_block_by_hash(ident["blockHash"])["number"]
            return self.block_id(ident.get("blockNumber"))
        return parse_int(ident)

    def get_logs(self, query):
        t = self.tester
        latest = t.get_block_by_number("latest")["number"]
        if query.get("blockHash"):
            try:
                first = last = t.get_block_by_hash(query["blockHash"])["number"]
            except Exception:
                raise RPCError(-32000, "unknown block")
        else:
            first = self.block_id(query.get("fromBlock"))
            last = self.block_id(query.get("toBlock"))
            first = latest if first == "latest" else first
            last = latest if last == "latest" else min(last, latest)
        if first > last:
            return []
        if last - first > 10_000:
            raise RPCError(-32005, "query returned more than 10000 blocks")
        address = query.get("address")
        if isinstance(address, str):
            address = [address]
        wanted = {a.lower() for a in address} if address else None
        topics = query.get("topics") or []
        out = []
        for number in range(first, last + 1):
            block = t.get_block_by_number(number)
            for tx_hash in block["transactions"]:
                receipt = self.receipt_rpc(t.get_transaction_receipt(tx_hash))
                for entry in receipt["logs"]:
                    if wanted is not None and entry["address"].lower() not in wanted:
                        continue
                    if not topics_match(topics, entry["topics"]):
                        continue
                    out.append(entry)
        return out

    def base_fee(self):
        return self.tester.get_block_by_number("latest").get("base_fee_per_gas") or 1_000_000_000

    def mine_pool(self):
        """What waits in the pool goes to the chain (a block each, as eth-tester mines them)."""
        sent = self.pool.drain()
        for raw in sent:
            try:
                self.tester.send_raw_transaction(raw)
            except Exception as exc:  # a transaction that cannot be included is dropped, as a node would
                log.info("pooled transaction dropped: %s", exc)
        return len(sent)

    def send_raw(self, raw):
        from eth_account.typed_transactions import TypedTransaction  # noqa: F401 (import check)
        try:
            sender = Account.recover_transaction(raw)
        except Exception as exc:
            raise RPCError(-32000, f"invalid transaction: {exc}")
        expected = self.tester.get_nonce(sender, "pending")
        nonce = decode_nonce(raw)
        if not self.automine and nonce is not None:
            try:
                return self.pool.add(sender, nonce, raw, expected)
            except PoolError as exc:
                raise RPCError(-32000, str(exc))
        if nonce is not None and nonce < expected:
            raise RPCError(-32000, f"nonce too low: next nonce {expected}, tx nonce {nonce}")
        if nonce is not None and nonce > expected:
            raise RPCError(-32000, f"nonce too high: next nonce {expected}, tx nonce {nonce}")
        try:
            return self.tester.send_raw_transaction(raw)
        except TransactionFailed as exc:
            raise revert_error(exc)
        except ValidationError as exc:
            raise RPCError(-32000, f"invalid transaction: {exc}")

    def receipt_rpc(self, receipt):
        out = to_rpc(receipt)
        tx = self.tester.get_transaction_by_hash(receipt["transaction_hash"])
        block = self.tester.get_block_by_number(receipt["block_number"])
        out.setdefault("from", tx.get("from"))
        out.setdefault("to", tx.get("to"))
        out["blockHash"] = block["hash"]
        out.pop("stateRoot", None)  # post-Byzantium receipts have `status`, not a state root
        bloom = BloomFilter()
        for entry in receipt.get("logs", []):
            bloom.add(bytes.fromhex(entry["address"][2:]))
            for topic in entry["topics"]:
                bloom.add(bytes(topic) if isinstance(topic, (bytes, bytearray)) else bytes.fromhex(topic[2:]))
        out["logsBloom"] = "0x" + int(bloom).to_bytes(256, "big").hex()
        out.setdefault("type", hex(tx.get("type", 0)) if isinstance(tx.get("type", 0), int) else tx.get("type"))
        price = tx.get("gas_price")
        out.setdefault("effectiveGasPrice", hex(price) if isinstance(price, int) else hex(self.base_fee()))
        for index, entry in enumerate(out.get("logs", [])):
            entry.setdefault("blockHash", block["hash"])
            entry["blockNumber"] = hex(receipt["block_number"])
            entry["transactionHash"] = receipt["transaction_hash"]
            entry.setdefault("transactionIndex", out.get("transactionIndex", "0x0"))
            entry.setdefault("logIndex", hex(index))
            entry["removed"] = False
            entry.pop("type", None)  # eth-tester's "mined"/"pending" marker, not an RPC field
        return out


def topics_match(filters, topics):
    """eth_getLogs topic filters: position by position, None matches anything, a list is an OR."""
    if len(filters) > len(topics):
        return False
    for want, have in zip(filters, topics):
        if want is None:
            continue
        options = want if isinstance(want, list) else [want]
        if have.lower() not in {o.lower() for o in options}:
            return False
    return True


def decode_nonce(raw):
    """The nonce of a legacy or type-2 raw transaction (None if it does not parse)."""
    import rlp

    data = bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)
    try:
        if data[0] >= 0xC0:
            fields = rlp.decode(data)
            return int.from_bytes(fields[0], "big")
        if data[0] in (1, 2):
            fields = rlp.decode(data[1:])
            return int.from_bytes(fields[1], "big")
    except Exception:
        return None
    return None


# ---------------------------------------------------------------------------------------------
# HTTP servers

class JSONHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "x402-devnet"

    def log_message(self, fmt, *args):  # one line per call is logged by the handlers themselves
        pass

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 20:
            raise ValueError("body too large")
        return json.loads(self.rfile.read(length) or b"null")


def make_rpc_handler(chain):
    class RPCHandler(JSONHandler):
        def do_POST(self):
            try:
                body = self.read_json()
            except Exception:
                self.send_json(200, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
                return
            if isinstance(body, list):
                self.send_json(200, [self.one(item) for item in body])
            else:
                self.send_json(200, self.one(body))

        def one(self, request):
            ident = request.get("id") if isinstance(request, dict) else None
            if not isinstance(request, dict) or "method" not in request:
                return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32600, "message": "invalid request"}}
            method, params = request["method"], request.get("params") or []
            try:
                result = chain.handle(method, params)
                log.debug("rpc %s", method)
                return {"jsonrpc": "2.0", "id": ident, "result": result}
            except RPCError as exc:
                log.info("rpc %s -> error %s", method, exc.message)
                error = {"code": exc.code, "message": exc.message}
                if exc.data is not None:
                    error["data"] = exc.data
                return {"jsonrpc": "2.0", "id": ident, "error": error}
            except Exception as exc:  # a bug or an unexpected input: answer, don't die
                log.exception("rpc %s failed", method)
                return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32603, "message": f"internal error: {exc}"}}

    return RPCHandler


def make_facilitator(rpc_url, relayer_key):
    """The official x402 facilitator (v2 `exact` on eip155:84532, v1 `exact` on base-sepolia).

    `register_exact_evm_facilitator` would also register v1 on every EVM network the SDK knows
    (base, polygon, ...), which this chain is not; so the same two schemes it registers are
    registered here for our chain's names only, and /supported lists exactly what works."""
    from x402 import x402FacilitatorSync
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.exact.facilitator import ExactEvmScheme, ExactEvmSchemeConfig
    from x402.mechanisms.evm.exact.v1.facilitator import ExactEvmSchemeV1, ExactEvmSchemeV1Config

    signer = FacilitatorWeb3Signer(private_key=relayer_key, rpc_url=rpc_url)
    facilitator = x402FacilitatorSync()
    facilitator.register([f"eip155:{CHAIN_ID}"], ExactEvmScheme(signer, ExactEvmSchemeConfig()))
    facilitator.register_v1(["base-sepolia"], ExactEvmSchemeV1(signer, ExactEvmSchemeV1Config()))
    return facilitator


def make_facilitator_handler(facilitator, lock):
    from x402.schemas import PaymentPayload, PaymentRequirements
    from x402.schemas.v1 import PaymentPayloadV1, PaymentRequirementsV1

    token = os.environ.get("X402_DEVNET_FACILITATOR_TOKEN")
    # Test-only faults, one shot per payer (tests run side by side; each cuts only its own payer's
    # next /settle): see `cut_settle`.
    cuts = {}
    cuts_lock = threading.Lock()

    class FacilitatorHandler(JSONHandler):
        def authorized(self):
            if not token:
                return True
            if self.headers.get("Authorization") == f"Bearer {token}":
                return True
            self.send_json(401, {"error": "unauthorized"})
            return False

        def do_GET(self):
            if not self.authorized():
                return
            if self.path.rstrip("/") == "/supported":
                supported = facilitator.get_supported()
                self.send_json(200, supported.model_dump(by_alias=True, exclude_none=True))
            elif self.path == "/healthz":
                self.send_json(200, {"status": "ok"})
            else:
                self.send_json(404, {"error": "not found"})

        def do_POST(self):
            if not self.authorized():
                return
            path = self.path.rstrip("/")
            if path == "/_devnet/cut-settle":
                self.cut_settle()
                return
            if path not in ("/verify", "/settle"):
                self.send_json(404, {"error": "not found"})
                return
            try:
                body = self.read_json()
                version = body.get("x402Version") or body["paymentPayload"].get("x402Version")
                if version == 1:
                    payload = PaymentPayloadV1.model_validate(body["paymentPayload"])
                    requirements = PaymentRequirementsV1.model_validate(body["paymentRequirements"])
                else:
                    payload = PaymentPayload.model_validate(body["paymentPayload"])
                    requirements = PaymentRequirements.model_validate(body["paymentRequirements"])
            except Exception as exc:
                self.send_json(400, {"error": f"invalid request: {exc}"})
                return
            cut = None
            if path == "/settle":
                payer = str(((body["paymentPayload"].get("payload") or {}).get("authorization") or {}).get("from", ""))
                with cuts_lock:
                    cut = cuts.pop(payer.lower(), None)
            if cut and not cut["settle"]:
                self.lose_answer(cut, None)
                return
            if cut and cut["delay"]:
                time.sleep(cut["delay"])  # a slow facilitator: the transfer lands after the caller gave up
            try:
                with lock:  # one settlement at a time: no mempool, nonces in order
                    if path == "/verify":
                        result = facilitator.verify(payload, requirements)
                    else:
                        result = facilitator.settle(payload, requirements)
            except Exception as exc:
                log.exception("facilitator %s failed", path)
                if path == "/verify":
                    self.send_json(200, {"isValid": False, "invalidReason": "unexpected_verify_error",
                                         "invalidMessage": str(exc)})
                else:
                    self.send_json(200, {"success": False, "errorReason": "unexpected_settle_error",
                                         "errorMessage": str(exc), "transaction": "", "network": ""})
                return
            answer = result.model_dump(by_alias=True, exclude_none=True)
            log.info("facilitator %s -> %s", path, {k: v for k, v in answer.items() if k != "extensions"})
            if cut:
                self.lose_answer(cut, answer)
                return
            self.send_json(200, answer)

        def cut_settle(self):
            """POST /_devnet/cut-settle {payer, settle: bool, answer: "drop"|"hang", seconds, delay}:
            the payer's next /settle sends the transfer (settle true; `delay` seconds late) or not,
            then its answer is lost — the connection closed without a byte ("drop"), or held
            `seconds` past the caller's timeout ("hang"). What a caller sees when a facilitator or
            the network fails mid-call."""
            try:
                body = self.read_json()
                cut = {"settle": bool(body.get("settle", True)), "answer": body.get("answer", "drop"),
                       "seconds": float(body.get("seconds", 30)), "delay": float(body.get("delay", 0))}
                if cut["answer"] not in ("drop", "hang"):
                    raise ValueError("answer must be drop or hang")
                payer = str(body["payer"]).lower()
            except Exception as exc:
                self.send_json(400, {"error": f"invalid request: {exc}"})
                return
            with cuts_lock:
                cuts[payer] = cut
            self.send_json(200, {"payer": payer, **cut})

        def lose_answer(self, cut, answer):
            log.info("facilitator /settle: answer lost on purpose (%s, settled: %s)", cut["answer"], answer is not None)
            if cut["answer"] == "hang":
                time.sleep(cut["seconds"])
                if answer is not None:
                    try:
                        self.send_json(200, answer)  # long after the caller gave up
                    except OSError:
                        pass
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return FacilitatorHandler


def serve(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rpc-port", type=int, default=int(os.environ.get("X402_DEVNET_RPC_PORT", "0")))
    parser.add_argument("--facilitator-port", type=int,
                        default=int(os.environ.get("X402_DEVNET_FACILITATOR_PORT", "0")))
    parser.add_argument("--info-file")
    parser.add_argument("--payers", type=int, default=8)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s devnet %(levelname)s %(message)s")
    started = time.time()

    # SIGTERM/SIGINT: during startup exit at once (code 0); once serving, shut the servers down.
    stop = threading.Event()
    serving = threading.Event()

    def on_signal(*_):
        if not serving.is_set():
            raise SystemExit(0)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    compiled = compile_token()
    chain = Chain()
    t = chain.tester
    deployer, relayer, pay_to = account("deployer"), account("relayer"), account("payTo")
    # The facilitator signs with `relayer`; our sidecar's own relayer gets a key of its own, so
    # their transaction nonces never collide.
    sidecar_relayer = account("sidecar-relayer")
    payers = [account(f"payer-{i}") for i in range(args.payers)]
    poor = account("poor-payer")
    funder = chain.genesis[0]
    for who in [deployer, relayer, sidecar_relayer, pay_to, poor] + payers:
        t.send_transaction({"from": funder, "to": who["address"], "value": 100 * 10**18, "gas": 21000})

    from web3 import Web3

    w3 = Web3()
    contract = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    deploy_data = contract.constructor("USDC", "2").build_transaction(
        {"gas": 5_000_000, "gasPrice": 0, "chainId": CHAIN_ID, "nonce": 0, "from": deployer["address"]})["data"]

    def send_as(who, to, data, gas=500_000):
        tx = {"chainId": CHAIN_ID, "nonce": t.get_nonce(who["address"], "pending"), "gas": gas,
              "maxFeePerGas": chain.base_fee() * 2 + 1_000_000, "maxPriorityFeePerGas": 1_000_000,
              "data": data, "value": 0, "type": 2}
        if to:
            tx["to"] = to
        signed = Account.sign_transaction(tx, who["privateKey"])
        tx_hash = t.send_raw_transaction("0x" + signed.raw_transaction.hex())
        receipt = t.get_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise SystemExit(f"devnet setup transaction failed: {receipt}")
        return receipt

    receipt = send_as(deployer, None, deploy_data, gas=5_000_000)
    token = to_checksum_address(receipt["contract_address"])
    token_contract = w3.eth.contract(address=token, abi=compiled["abi"])
    for payer in payers:
        data = token_contract.encode_abi("mint", [payer["address"], 1000 * 10**6])
        send_as(deployer, token, data)

    rpc_server = ThreadingHTTPServer((args.host, args.rpc_port), make_rpc_handler(chain))
    rpc_server.daemon_threads = True
    serve(rpc_server)
    rpc_url = f"http://{args.host}:{rpc_server.server_address[1]}"

    facilitator = make_facilitator(rpc_url, relayer["privateKey"])
    fac_server = ThreadingHTTPServer((args.host, args.facilitator_port),
                                     make_facilitator_handler(facilitator, threading.Lock()))
    fac_server.daemon_threads = True
    serve(fac_server)

    info = {
        "chainId": CHAIN_ID, "network": f"eip155:{CHAIN_ID}", "v1Network": "base-sepolia",
        "rpcUrl": rpc_url, "facilitatorUrl": f"http://{args.host}:{fac_server.server_address[1]}",
        "token": token, "tokenName": "USDC", "tokenVersion": "2", "decimals": 6,
        "deployer": deployer, "relayer": relayer, "sidecarRelayer": sidecar_relayer, "payTo": pay_to, "payers": payers, "poorPayer": poor,
        "pid": os.getpid(),
    }
    line = json.dumps(info)
    if args.info_file:
        with open(args.info_file + ".tmp", "w") as f:
            f.write(line + "\n")
        os.replace(args.info_file + ".tmp", args.info_file)
    print(line, flush=True)
    log.info("ready in %.1f s: rpc %s, facilitator %s, token %s", time.time() - started, rpc_url,
             info["facilitatorUrl"], token)

    serving.set()
    while not stop.wait(0.5):
        pass
    log.info("stopping")
    rpc_server.shutdown()
    fac_server.shutdown()
    if args.info_file and os.path.exists(args.info_file):
        os.unlink(args.info_file)


if __name__ == "__main__":
    main()
