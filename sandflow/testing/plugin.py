"""pytest plugin: the ``--device`` and ``--dtype`` options that :class:`.BijectorSuite` reads.

Enable it in your ``conftest.py`` with ``pytest_plugins = ["sandflow.testing.plugin"]``
(or run ``pytest -p sandflow.testing.plugin``); then ``pytest --device cuda
--dtype float64`` runs every inherited suite on CUDA tensors in float64.
"""

from __future__ import annotations

import pytest
import torch

__all__ = ["pytest_addoption", "pytest_configure"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--device`` (default ``cpu``) and ``--dtype`` (default ``both``)."""
    group = parser.getgroup("sandflow", "sandflow.testing")
    group.addoption("--device", default="cpu", help="torch device of the tests: cpu, cuda, ...")
    group.addoption(
        "--dtype",
        default="both",
        choices=["both", "float32", "float64"],
        help="dtype of the bijector suites (both runs float32 and float64)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Refuse ``--device cuda`` where CUDA is not available."""
    if config.getoption("--device").startswith("cuda") and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda was given but torch.cuda.is_available() is False")
