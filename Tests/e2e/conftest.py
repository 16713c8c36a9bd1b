import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from stack import ROOT, Backend, Devnet, Nginx, Sidecar  # noqa: E402


@pytest.fixture(scope="session")
def run_root():
    base = os.path.join(ROOT, ".run")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix="e2e-", dir=base)


@pytest.fixture(scope="session")
def devnet(run_root):
    chain = Devnet(os.path.join(run_root, "devnet"))
    yield chain
    chain.stop()


@pytest.fixture(scope="module")
def stack(devnet, run_root, request):
    run = os.path.join(run_root, request.module.__name__.split(".")[-1])
    backend = Backend()
    sidecar = Sidecar(run, devnet).start()
    nginx = Nginx(run, backend.port).start()

    class Stack:
        pass

    s = Stack()
    s.devnet, s.backend, s.sidecar, s.nginx, s.run = devnet, backend, sidecar, nginx, run
    yield s
    nginx.stop()
    sidecar.stop()
    backend.stop()
