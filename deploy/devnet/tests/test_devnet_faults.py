"""The devnet's test-only faults: a transaction pool while automine is off (replacement at a nonce
only with 10 % higher fees, as geth), and a facilitator that loses its /settle answer."""
import pytest
import requests
from eth_account import Account

from test_devnet import sign_authorization, token, w3  # noqa: F401 (fixtures)


def rpc(info, method, params):
    return requests.post(info["rpcUrl"], json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                         timeout=10).json()


def raw_transfer(info, who, nonce, fee, tip):
    tx = {"chainId": 84532, "nonce": nonce, "gas": 21000, "to": info["payTo"]["address"], "value": 1,
          "data": "0x", "type": 2, "maxFeePerGas": fee, "maxPriorityFeePerGas": tip}
    return "0x" + Account.sign_transaction(tx, who["privateKey"]).raw_transaction.hex()


def test_a_waiting_transaction_is_replaced_only_with_higher_fees(info):
    who = info["deployer"]
    nonce = int(rpc(info, "eth_getTransactionCount", [who["address"], "pending"])["result"], 16)
    fee = int(rpc(info, "eth_gasPrice", [])["result"], 16) * 2
    rpc(info, "evm_setAutomine", [False])
    try:
        first = rpc(info, "eth_sendRawTransaction", [raw_transfer(info, who, nonce, fee, 1_000_000)])["result"]
        cheap = rpc(info, "eth_sendRawTransaction", [raw_transfer(info, who, nonce, fee + fee // 20, 1_050_000)])
        assert cheap["error"]["message"] == "replacement transaction underpriced"
        waiting = rpc(info, "eth_getTransactionByHash", [first])["result"]
        assert waiting["blockNumber"] is None and int(waiting["maxFeePerGas"], 16) == fee
        second = rpc(info, "eth_sendRawTransaction", [raw_transfer(info, who, nonce, fee * 11 // 10 + 1, 1_100_000)])
        second = second["result"]
        assert rpc(info, "eth_getTransactionByHash", [first])["result"] is None  # dropped from the pool
        assert rpc(info, "eth_getTransactionReceipt", [second])["result"] is None
    finally:
        rpc(info, "evm_setAutomine", [True])
    assert int(rpc(info, "eth_getTransactionReceipt", [second])["result"]["status"], 16) == 1
    assert rpc(info, "eth_getTransactionReceipt", [first])["result"] is None


def test_cut_settle_takes_a_payer_and_a_known_answer(info):
    url = info["facilitatorUrl"] + "/_devnet/cut-settle"
    assert requests.post(url, json={"payer": info["poorPayer"]["address"], "answer": "shrug"}, timeout=10).status_code == 400
    assert requests.post(url, json={"answer": "drop"}, timeout=10).status_code == 400


def test_a_cut_settle_transfers_and_closes_without_an_answer(info, token):  # noqa: F811
    """What the sidecar's unanswered-/settle tests rely on: the transfer is on chain, the caller
    gets no HTTP answer at all."""
    payer = info["payers"][-2]
    before = token.functions.balanceOf(payer["address"]).call()
    args = sign_authorization(info, payer, info["payTo"]["address"], 10000)
    nonce = "0x" + args[5].hex()
    auth = {"from": payer["address"], "to": info["payTo"]["address"], "value": "10000", "validAfter": "0",
            "validBefore": str(args[4]), "nonce": nonce}
    signature = "0x" + args[7].hex() + args[8].hex() + format(args[6], "02x")
    requirements = {"scheme": "exact", "network": "eip155:84532", "amount": "10000", "asset": info["token"],
                    "payTo": info["payTo"]["address"], "maxTimeoutSeconds": 300,
                    "extra": {"name": "USDC", "version": "2"}}
    body = {"x402Version": 2, "paymentPayload": {"x402Version": 2, "accepted": requirements,
                                                 "payload": {"signature": signature, "authorization": auth}},
            "paymentRequirements": requirements}
    cut = {"payer": payer["address"], "settle": True, "answer": "drop"}
    assert requests.post(info["facilitatorUrl"] + "/_devnet/cut-settle", json=cut, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(info["facilitatorUrl"] + "/settle", json=body, timeout=30)
    assert token.functions.balanceOf(payer["address"]).call() == before - 10000
