"""The devnet's transaction pool while automine is off (Hardhat's and Anvil's `evm_setAutomine`):
sent transactions wait here — known to eth_getTransactionByHash, without a receipt — until
`evm_mine` or until automine is switched on again, then go to the chain in nonce order.

eth-tester has a pending list of its own, but it cannot mine a legacy EIP-155 transaction from
it (it validates `v` as one byte), and the relayer's tests need both kinds. Like geth, a
transaction at a nonce that is waiting replaces it only when both fees rise by 10 %."""
import rlp
from eth_utils import keccak, to_checksum_address


class PoolError(Exception):
    pass


def decode(raw_hex):
    """The fields a node reports for a waiting transaction, from its raw bytes (legacy or type 2)."""
    data = bytes.fromhex(raw_hex[2:] if raw_hex.startswith("0x") else raw_hex)
    as_int = lambda b: int.from_bytes(b, "big")  # noqa: E731
    if data[0] >= 0xC0:
        nonce, price, gas, to, value, payload = rlp.decode(data)[:6]
        fields = {"type": "0x0", "gasPrice": hex(as_int(price))}
        fee, tip = as_int(price), as_int(price)
    elif data[0] == 2:
        chain, nonce, tip_b, fee_b, gas, to, value, payload = rlp.decode(data[1:])[:8]
        fee, tip = as_int(fee_b), as_int(tip_b)
        fields = {"type": "0x2", "chainId": hex(as_int(chain)), "maxFeePerGas": hex(fee), "maxPriorityFeePerGas": hex(tip)}
    else:
        raise PoolError("unsupported transaction type")
    fields.update({
        "hash": "0x" + keccak(data).hex(), "nonce": hex(as_int(nonce)), "gas": hex(as_int(gas)),
        "to": to_checksum_address(to) if to else None, "value": hex(as_int(value)), "input": "0x" + payload.hex(),
        "blockHash": None, "blockNumber": None, "transactionIndex": None,
    })
    return fields, fee, tip


class TransactionPool:
    def __init__(self):
        self.waiting = {}  # (sender, nonce) -> (raw, fields, fee, tip)

    def add(self, sender, nonce, raw, next_nonce):
        """Holds `raw`; `next_nonce` is the sender's next nonce on chain. Returns its hash."""
        sender = sender.lower()
        fields, fee, tip = decode(raw)
        fields["from"] = to_checksum_address(sender)
        if nonce < next_nonce:
            raise PoolError(f"nonce too low: next nonce {next_nonce}, tx nonce {nonce}")
        if nonce > self.next_nonce(sender, next_nonce):
            raise PoolError(f"nonce too high: next nonce {self.next_nonce(sender, next_nonce)}, tx nonce {nonce}")
        old = self.waiting.get((sender, nonce))
        if old and (fee * 10 < old[2] * 11 or tip * 10 < old[3] * 11):
            raise PoolError("replacement transaction underpriced")
        self.waiting[(sender, nonce)] = (raw, fields, fee, tip)
        return fields["hash"]

    def next_nonce(self, sender, next_nonce):
        """The sender's next nonce counting what waits here (eth_getTransactionCount "pending")."""
        while (sender.lower(), next_nonce) in self.waiting:
            next_nonce += 1
        return next_nonce

    def find(self, tx_hash):
        for _, fields, _, _ in self.waiting.values():
            if fields["hash"] == tx_hash.lower():
                return fields
        return None

    def drain(self):
        """Everything waiting, in nonce order per sender; the pool is empty afterwards."""
        ordered = [self.waiting[key][0] for key in sorted(self.waiting)]
        self.waiting.clear()
        return ordered
