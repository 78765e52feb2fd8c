"""Doctests run seeded, with torch, sandflow and pyro in their namespace."""

import pyro
import pytest
import torch

import sandflow


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    doctest_namespace.update(torch=torch, sandflow=sandflow, pyro=pyro)
