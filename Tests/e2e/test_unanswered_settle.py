"""A `before` route settled through the official facilitator whose /settle answer is lost
(the devnet's /_devnet/cut-settle), through a real nginx with the official x402 client as payer:
the client is charged exactly once and served — never refused while charged, never asked to pay
again while its payment may still land."""
import requests
from payments import decode, sync_client
from stack import wait_for
from x402.http.clients import wrapRequestsWithPayment

INTEGRATION_PARAMETRIZED = True
PRICE = 40000  # the `facilitated` route: before, settle_via facilitator


def cut_next_settle(stack, address, settle):
    cut = {"payer": address, "settle": settle, "answer": "drop"}
    response = requests.post(stack.devnet.info["facilitatorUrl"] + "/_devnet/cut-settle", json=cut, timeout=10)
    assert response.status_code == 200, response.text


def test_transfer_sent_and_answer_lost_is_served_with_the_transaction(stack):
    account = stack.devnet.info["payers"][6]
    before = stack.devnet.balance(account["address"])
    cut_next_settle(stack, account["address"], settle=True)
    session = wrapRequestsWithPayment(requests.Session(), sync_client(account["privateKey"]))
    response = session.get(stack.nginx.url + "/facilitated")
    assert response.status_code == 200, response.text
    settled = decode(response.headers["PAYMENT-RESPONSE"])
    assert settled["success"] is True
    receipt = stack.devnet.rpc("eth_getTransactionReceipt", [settled["transaction"]])
    assert int(receipt["status"], 16) == 1, "the transaction named to the client is the one that moved the money"
    assert stack.devnet.balance(account["address"]) == before - PRICE
    assert stack.backend.requests_to("/facilitated")[-1]["headers"]["x-x402-transaction"] == settled["transaction"]


def test_answer_lost_before_any_transfer_is_served_and_settled_once_later(stack):
    account = stack.devnet.info["payers"][6]
    before = stack.devnet.balance(account["address"])
    served = len(stack.backend.requests_to("/facilitated"))
    cut_next_settle(stack, account["address"], settle=False)
    session = wrapRequestsWithPayment(requests.Session(), sync_client(account["privateKey"]))
    response = session.get(stack.nginx.url + "/facilitated")
    assert response.status_code == 200, response.text
    assert "PAYMENT-RESPONSE" not in response.headers, "nothing is on chain yet"
    assert len(stack.backend.requests_to("/facilitated")) == served + 1
    # Served on the first try, so the client signed one authorization: the worker looks on chain,
    # then settles it — exactly the price, once.
    wait_for(lambda: stack.devnet.balance(account["address"]) == before - PRICE, timeout=30,
             what="the in-doubt payment settled by the worker")
