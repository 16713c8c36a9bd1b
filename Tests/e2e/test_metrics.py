"""/metrics as a Prometheus client library reads it: decisions by route and outcome in the decision
log's words, settlement outcomes, queue gauges."""
import json

import requests
from payments import sync_client, v2_header
from prometheus_client.parser import text_string_to_metric_families
from x402.http.clients import wrapRequestsWithPayment


def samples(stack):
    text = requests.get(stack.sidecar.url + "/metrics", timeout=5).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def decisions(stack):
    counts = {}
    for line in stack.sidecar.log_lines():
        if line.startswith("{") and '"event":"decision"' in line:
            record = json.loads(line)
            key = (record.get("route"), record["outcome"])
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_metrics_parse_and_use_the_decision_logs_outcome_words(stack):
    account = stack.devnet.info["payers"][1]
    # A challenge, a paid request, and a replay of the same header.
    assert requests.get(stack.nginx.url + "/weather?m=1").status_code == 402
    session = wrapRequestsWithPayment(requests.Session(), sync_client(account["privateKey"]))
    assert session.get(stack.nginx.url + "/weather?m=2").status_code == 200
    challenge = requests.get(stack.nginx.url + "/weather?m=3")
    header = v2_header(sync_client(account["privateKey"]), challenge)
    assert requests.get(stack.nginx.url + "/weather?m=3", headers={"PAYMENT-SIGNATURE": header}).status_code == 200
    assert requests.get(stack.nginx.url + "/weather?m=3", headers={"PAYMENT-SIGNATURE": header}).status_code == 402

    found = samples(stack)
    logged = decisions(stack)
    assert logged[("weather", "paid")] >= 2 and logged[("weather", "payment_invalid")] >= 1
    for (route, outcome), count in logged.items():
        key = ("x402_decisions_total", tuple(sorted({"route": route or "-", "outcome": outcome}.items())))
        assert found.get(key) == count, f"{key}: metrics {found.get(key)} vs decision log {count}"
    outcomes = {dict(labels)["outcome"] for (name, labels) in found if name == "x402_decisions_total"}
    assert outcomes == {"paid", "payment_required", "payment_invalid", "refused", "unavailable", "misconfigured",
                        "rate_limited", "free", "leased", "lease_refused", "lease_issued", "signed_in", "sign_in_refused"}
    assert found[("x402_settlements_total", (("outcome", "enqueued"),))] >= 2
    assert ("x402_settlement_queue_jobs", (("state", "pending"),)) in found
    assert found[("x402_settlement_jobs_undecodable", ())] == 0
