import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from stack import INTEGRATIONS, MODULE_SO, ROOT, Backend, Devnet, Nginx, Sidecar  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--integration", choices=INTEGRATIONS + ("both",), default="both",
                     help="which nginx integration the parametrized end-to-end tests (test_nginx.py) run "
                          "against: the stock include files, ngx_http_x402_module, or both (default)")


def selected_integrations(config):
    chosen = config.getoption("--integration")
    return list(INTEGRATIONS) if chosen == "both" else [chosen]


def pytest_generate_tests(metafunc):
    """A test module that sets `INTEGRATION_PARAMETRIZED = True` runs against each integration."""
    if "integration" in metafunc.fixturenames and getattr(metafunc.module, "INTEGRATION_PARAMETRIZED", False):
        metafunc.parametrize("integration", selected_integrations(metafunc.config), indirect=True, scope="module")


@pytest.fixture(scope="module")
def integration(request):
    """"stock" unless the test module is parametrized over both integrations."""
    name = getattr(request, "param", "stock")
    if name == "module" and not os.path.exists(MODULE_SO):
        if os.environ.get("X402_REQUIRE_INTEGRATION"):
            pytest.fail(f"{MODULE_SO} is not built: run `make module`")
        pytest.skip(f"{MODULE_SO} is not built (make module)")
    return name


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
def stack(devnet, run_root, request, integration):
    run = os.path.join(run_root, request.module.__name__.split(".")[-1] + "-" + integration)
    backend = Backend()
    sidecar = Sidecar(run, devnet).start()
    nginx = Nginx(run, backend.port, integration=integration).start()

    class Stack:
        pass

    s = Stack()
    s.devnet, s.backend, s.sidecar, s.nginx, s.run = devnet, backend, sidecar, nginx, run
    s.integration = integration
    yield s
    nginx.stop()
    sidecar.stop()
    backend.stop()
