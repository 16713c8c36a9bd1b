import json
import os
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session")
def info():
    path = os.environ.get("X402_TEST_DEVNET_INFO")
    if path:
        with open(path) as f:
            yield json.load(f)
        return
    run = tempfile.mkdtemp(prefix="devnet-")
    script = os.path.join(HERE, "..", "devnet.sh")
    out = subprocess.run([script, "start", run], check=True, capture_output=True, text=True).stdout
    yield json.loads(out)
    subprocess.run([script, "stop", run], check=False)
