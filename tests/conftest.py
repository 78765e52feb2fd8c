"""Shared pytest options: ``--device`` and ``--dtype`` choose where and in what precision.

The options come from sandflow's public pytest plugin, :mod:`sandflow.testing.plugin`.
"""

import pytest
import torch
from hypothesis import HealthCheck, settings
from torch.distributions import Distribution

settings.register_profile(
    "sandflow",
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("sandflow")

pytest_plugins = ["sandflow.testing.plugin"]


def pytest_collection_modifyitems(config, items):
    on_cuda = config.getoption("--device").startswith("cuda")
    skip = pytest.mark.skip(reason="needs --device cuda")
    for item in items:
        if "cuda" in item.keywords and not on_cuda:
            item.add_marker(skip)


def pytest_generate_tests(metafunc):
    if "dtype" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--dtype")
        names = ["float32", "float64"] if choice == "both" else [choice]
        metafunc.parametrize("dtype", [getattr(torch, n) for n in names], ids=names)


@pytest.fixture
def device(request) -> torch.device:
    return torch.device(request.config.getoption("--device"))


@pytest.fixture
def one_thread():
    """Small tensors: one thread is as fast, and immune to a busy second core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _validation():
    """Distributions validate by default in every test (importing zuko switches it off globally)."""
    previous = Distribution._validate_args
    Distribution.set_default_validate_args(True)
    yield
    Distribution.set_default_validate_args(previous)
