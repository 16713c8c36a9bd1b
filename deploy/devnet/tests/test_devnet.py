"""The devnet as web3.py and eth_account see it: chain id, the token's EIP-712 domain, raw
transactions of both types, USDC's revert strings with their data, nonce checks."""
import os
import secrets
import time

import pytest
import requests
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from web3 import Web3

TRANSFER_WITH_AUTHORIZATION = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
ABI = [
    {"name": "transferWithAuthorization", "type": "function", "stateMutability": "nonpayable", "outputs": [],
     "inputs": [{"name": n, "type": t} for n, t in [("from", "address"), ("to", "address"), ("value", "uint256"),
                                                     ("validAfter", "uint256"), ("validBefore", "uint256"),
                                                     ("nonce", "bytes32"), ("v", "uint8"), ("r", "bytes32"),
                                                     ("s", "bytes32")]]},
    {"name": "balanceOf", "type": "function", "stateMutability": "view", "inputs": [{"name": "a", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "DOMAIN_SEPARATOR", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "bytes32"}]},
    {"name": "name", "type": "function", "stateMutability": "view", "inputs": [], "outputs": [{"name": "", "type": "string"}]},
    {"name": "decimals", "type": "function", "stateMutability": "view", "inputs": [], "outputs": [{"name": "", "type": "uint8"}]},
    {"name": "Transfer", "type": "event", "anonymous": False,
     "inputs": [{"name": "sender", "type": "address", "indexed": True},
                {"name": "receiver", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
]


@pytest.fixture(scope="module")
def w3(info):
    return Web3(Web3.HTTPProvider(info["rpcUrl"]))


@pytest.fixture(scope="module")
def token(w3, info):
    return w3.eth.contract(address=info["token"], abi=ABI)


def sign_authorization(info, payer, to, value, valid_after=0, valid_before=None, nonce=None):
    valid_before = valid_before or int(time.time()) + 300
    nonce = nonce or "0x" + secrets.token_hex(32)
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "TransferWithAuthorization": [{"name": n, "type": t} for n, t in [
                ("from", "address"), ("to", "address"), ("value", "uint256"), ("validAfter", "uint256"),
                ("validBefore", "uint256"), ("nonce", "bytes32")]],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": "USDC", "version": "2", "chainId": 84532, "verifyingContract": info["token"]},
        "message": {"from": payer["address"], "to": to, "value": value, "validAfter": valid_after,
                    "validBefore": valid_before, "nonce": bytes.fromhex(nonce[2:])},
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), payer["privateKey"])
    return (payer["address"], to, value, valid_after, valid_before, bytes.fromhex(nonce[2:]), signed.v,
            signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"))


def send(w3, info, data, legacy=False, nonce=None):
    relayer = info["deployer"]
    tx = {"chainId": 84532, "to": info["token"], "data": data, "gas": 200_000, "value": 0,
          "nonce": nonce if nonce is not None else w3.eth.get_transaction_count(relayer["address"], "pending")}
    if legacy:
        tx["gasPrice"] = w3.eth.gas_price
    else:
        tx.update(type=2, maxFeePerGas=w3.eth.gas_price * 2, maxPriorityFeePerGas=1_000_000)
    raw = Account.sign_transaction(tx, relayer["privateKey"]).raw_transaction
    return w3.eth.send_raw_transaction(raw)


def test_chain_id_and_token_domain(w3, token, info):
    assert w3.eth.chain_id == 84532
    assert token.functions.name().call() == "USDC"
    assert token.functions.decimals().call() == 6
    domain_typehash = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    from eth_abi import encode
    expected = keccak(encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                             [domain_typehash, keccak(text="USDC"), keccak(text="2"), 84532, info["token"]]))
    assert token.functions.DOMAIN_SEPARATOR().call() == expected
    assert keccak(text=TRANSFER_WITH_AUTHORIZATION)[:4].hex() == "e3ee160e"


@pytest.mark.parametrize("legacy", [False, True])
def test_transfer_with_authorization_settles_once(w3, token, info, legacy):
    payer, pay_to = info["payers"][-1], info["payTo"]["address"]
    before = token.functions.balanceOf(payer["address"]).call()
    args = sign_authorization(info, payer, pay_to, 12345)
    data = token.encode_abi("transferWithAuthorization", list(args))
    receipt = w3.eth.wait_for_transaction_receipt(send(w3, info, data, legacy=legacy), timeout=10)
    assert receipt.status == 1
    assert receipt.logs[-1]["topics"][0] == keccak(text="Transfer(address,address,uint256)")
    assert token.functions.balanceOf(payer["address"]).call() == before - 12345

    # The same authorization again: eth_call shows USDC's reason as Error(string) data, and a
    # transaction carrying it is mined as a failure without moving funds.
    answer = requests.post(info["rpcUrl"], json={"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                                                 "params": [{"to": info["token"], "data": data}, "latest"]}).json()
    assert answer["error"]["code"] == 3
    reason = abi_decode(["string"], bytes.fromhex(answer["error"]["data"][10:]))[0]
    assert reason == "FiatTokenV2: authorization is used or canceled"
    try:
        replay = w3.eth.wait_for_transaction_receipt(send(w3, info, data, legacy=legacy), timeout=10)
        assert replay.status == 0
    except Exception as exc:  # rejected at submission with the revert reason
        assert "authorization is used or canceled" in str(exc)
    assert token.functions.balanceOf(payer["address"]).call() == before - 12345


def test_expired_and_insufficient_reasons(token, info):
    payer, poor = info["payers"][-1], info["poorPayer"]
    expired = sign_authorization(info, payer, info["payTo"]["address"], 1, valid_before=int(time.time()) - 10)
    with pytest.raises(Exception, match="authorization is expired"):
        token.functions.transferWithAuthorization(*expired).call()
    broke = sign_authorization(info, poor, info["payTo"]["address"], 1)
    with pytest.raises(Exception, match="transfer amount exceeds balance"):
        token.functions.transferWithAuthorization(*broke).call()


def test_nonce_too_low_is_refused(w3, info):
    with pytest.raises(Exception, match="nonce too low"):
        send(w3, info, "0x", nonce=0)


def test_logs_are_found_by_filter_and_bloom(w3, token, info):
    """eth_getLogs filters (address, topics, block range) and the receipt's logs bloom, as an
    indexer or web3's event helpers use them."""
    from eth_bloom import BloomFilter
    payer, pay_to = info["payers"][-1], info["payTo"]["address"]
    args = sign_authorization(info, payer, pay_to, 777)
    data = token.encode_abi("transferWithAuthorization", list(args))
    receipt = w3.eth.wait_for_transaction_receipt(send(w3, info, data), timeout=10)
    assert receipt.status == 1
    transfer = keccak(text="Transfer(address,address,uint256)")
    bloom = BloomFilter(int.from_bytes(bytes(receipt.logsBloom), "big"))
    assert bytes.fromhex(info["token"][2:]) in bloom and transfer in bloom
    assert bytes.fromhex(info["deployer"]["address"][2:]) not in bloom

    from web3.logs import DISCARD  # the token's other log (AuthorizationUsed) is not in this ABI
    events = token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.sender, e.args.receiver, e.args.value) for e in events] == [(payer["address"], pay_to, 777)]
    block = receipt.blockNumber
    padded_payer = "0x" + "00" * 12 + payer["address"][2:].lower()
    found = w3.eth.get_logs({"address": info["token"], "fromBlock": block, "toBlock": block,
                             "topics": [transfer.hex() if transfer.hex().startswith("0x") else "0x" + transfer.hex(),
                                        padded_payer]})
    assert len(found) == 1 and found[0]["transactionHash"] == receipt.transactionHash
    other = "0x" + "00" * 12 + "11" * 20
    assert w3.eth.get_logs({"address": info["token"], "fromBlock": block, "toBlock": block,
                            "topics": [None, other]}) == []
    assert w3.eth.get_logs({"address": info["payTo"]["address"], "fromBlock": block, "toBlock": block}) == []
