"""The backend context bound to its request, through a real nginx (both integrations), the sidecar
binary and the devnet: a context verifies on the request it was minted for, and a context captured
from that request and replayed straight to the backend with another path, method or host is
refused by the backend's verifier — the e2e backend's, the demo backend's (deploy/demo/backend.py),
and the README's Python and JS snippets run as written. `backend.context_version: 1` still signs the
old field list, which binds nothing."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import requests
from payments import sync_client, v2_header
from requests.structures import CaseInsensitiveDict
from stack import BACKEND_SECRET, ROOT, Backend, Nginx, Sidecar, free_port, verify_context, wait_for

INTEGRATION_PARAMETRIZED = True
# Hop-by-hop and framing headers are the replaying client's own, not part of the captured context.
NOT_REPLAYED = {"connection", "content-length", "transfer-encoding", "keep-alive"}


def pay(stack, path, payer_index):
    """Pays `path` through nginx with the official client; the backend's record of the request."""
    key = stack.devnet.info["payers"][payer_index]["privateKey"]
    challenge = requests.get(stack.nginx.url + path, timeout=10)
    assert challenge.status_code == 402
    header = v2_header(sync_client(key), challenge)
    response = requests.get(stack.nginx.url + path, headers={"PAYMENT-SIGNATURE": header}, timeout=30)
    assert response.status_code == 200, response.text
    return stack.backend.requests_to(path)[-1]


def replays(record):
    """The captured request, and the same context replayed with another path, method or host:
    (what changed, method, uri, headers)."""
    headers = {k: v for k, v in record["headers"].items() if k not in NOT_REPLAYED}
    return [
        ("minted", record["method"], record["path"], headers),
        ("path", record["method"], "/before" + record["path"][len("/weather"):], headers),
        ("query", record["method"], record["path"] + "&more=1", headers),
        ("method", "POST", record["path"], headers),
        ("host", record["method"], record["path"], dict(headers, host="evil.example")),
    ]


def send_to_backend(backend, method, uri, headers):
    """What an attacker with a captured context does: go around nginx, straight to the backend."""
    response = requests.request(method, f"http://127.0.0.1:{backend.port}{uri}", headers=headers, timeout=10)
    assert response.status_code == 200
    return response.json()["context_verified"]


def readme_snippets():
    """The Python and JS verifiers of README's "Verifying the context in the backend", as written."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index("### Verifying the context in the backend"):]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    js = re.search(r"```js\n(.*?)```", section, re.S).group(1)
    return python, js


def readme_python(cases, accept):
    namespace = {}
    exec(readme_snippets()[0], namespace)  # noqa: S102 - the README's own code, run as a backend would
    return [namespace["x402_verified"](method, uri, CaseInsensitiveDict(headers), BACKEND_SECRET.encode(), accept)
            for _, method, uri, headers in cases]


def readme_js(cases, accept):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the README's JS verifier cannot run")
    script = readme_snippets()[1] + (
        "\nconst input = JSON.parse(process.argv[1]);\n"
        "console.log(JSON.stringify(input.cases.map((c) => x402Verified(c, input.secret, input.accept))));\n")
    arguments = json.dumps({"secret": BACKEND_SECRET, "accept": list(accept),
                            "cases": [{"method": m, "url": u, "headers": h} for _, m, u, h in cases]})
    result = subprocess.run([node, "-e", script, arguments], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(result.stdout)


def test_context_verifies_only_on_the_request_it_was_minted_for(stack):
    record = pay(stack, "/weather?context=bound", 5)
    seen = record["headers"]
    assert seen["x-x402-context-version"] == "2"
    assert seen["host"] == "127.0.0.1"  # nginx's $host: what the sidecar signed
    assert record["hmac_ok"] is True
    verdicts = {what: send_to_backend(stack.backend, method, uri, headers)
                for what, method, uri, headers in replays(record)}
    assert verdicts == {"minted": True, "path": False, "query": False, "method": False, "host": False}


def test_readme_snippets_verify_the_bound_context(stack):
    record = pay(stack, "/weather?context=readme", 6)
    cases = replays(record)
    expected = [True, False, False, False, False]
    assert readme_python(cases, ("2",)) == expected
    assert readme_js(cases, ["2"]) == expected
    # Tampering with a signed value breaks it as before.
    forged = [("payer", "GET", record["path"], dict(cases[0][3], **{"x-x402-amount": "1"}))]
    assert readme_python(forged, ("2",)) == [False] and readme_js(forged, ["2"]) == [False]


@pytest.fixture(scope="module")
def demo_backend():
    """deploy/demo/backend.py, what `make demo` puts behind nginx, with the e2e secret: its port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "deploy", "demo", "backend.py"), str(port),
                                BACKEND_SECRET], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/free", timeout=1).status_code == 200, what="demo backend")
    yield port
    process.terminate()
    process.wait(10)


def test_demo_backend_takes_a_context_only_where_it_was_minted(stack, demo_backend):
    record = pay(stack, "/weather?context=demo", 4)
    verdicts = {}
    for what, method, uri, headers in replays(record):
        if method != "GET":
            continue  # the demo serves GET only
        response = requests.get(f"http://127.0.0.1:{demo_backend}{uri}", headers=headers, timeout=10)
        verdicts[what] = (response.status_code, response.json()["context_verified"])
    assert verdicts == {"minted": (200, True), "path": (403, False), "query": (403, False), "host": (403, False)}


@pytest.fixture(scope="module")
def legacy(devnet, run_root, integration):
    """A sidecar on `backend.context_version: 1` and a backend in migration, taking both versions."""
    run = os.path.join(run_root, "context-legacy-" + integration)
    backend = Backend(accept=("1", "2"))
    sidecar = Sidecar(run, devnet, backend_extra="  context_version: 1\n").start()
    nginx = Nginx(run, backend.port, integration=integration).start()

    class Stack:
        pass

    s = Stack()
    s.devnet, s.backend, s.sidecar, s.nginx = devnet, backend, sidecar, nginx
    yield s
    nginx.stop()
    sidecar.stop()
    backend.stop()


def test_legacy_switch_signs_the_old_field_list(legacy):
    record = pay(legacy, "/weather?context=legacy", 7)
    seen = record["headers"]
    assert seen["x-x402-context-version"] == "1"
    assert record["hmac_ok"] is True  # the migrating backend takes it
    cases = replays(record)
    # The old message names no request: it verifies wherever it is replayed. That is what version 2 ends.
    assert readme_python(cases, ("1", "2")) == [True] * len(cases)
    assert readme_js(cases, ["1", "2"]) == [True] * len(cases)
    assert [verify_context(m, u, CaseInsensitiveDict(h), BACKEND_SECRET, ("1", "2")) for _, m, u, h in cases] \
        == [True] * len(cases)
    # A backend that has moved over refuses it, even on its own request.
    assert readme_python(cases[:1], ("2",)) == [False]
    assert verify_context(record["method"], record["path"], seen, BACKEND_SECRET, ("2",)) is False
    # A version-1 context relabelled "2" does not verify as one.
    relabelled = [("relabelled", "GET", record["path"], dict(cases[0][3], **{"x-x402-context-version": "2"}))]
    assert readme_python(relabelled, ("1", "2")) == [False]
    assert "backend.context_version" in "\n".join(legacy.sidecar.log_lines())
