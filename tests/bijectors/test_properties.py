"""The property harness: the kit's BijectorSuite on every bijector of the registry.

One test class per registry entry (``Test_<name>``), one test per check, run
in float32 and float64 on the ``--device`` of the run. The random chains of
``strategies.bijectors`` are checked with hypothesis on top.
"""

import torch
from hypothesis import given

from sandflow.testing import BijectorSuite, check_bijector, strategies
from sandflow.testing.registry import REGISTRY


class _Registered(BijectorSuite):
    def make_bijector(self):
        return self.entry.factory()


for _name, _entry in REGISTRY.items():
    globals()[f"Test_{_name}"] = type(
        f"Test_{_name}",
        (_Registered,),
        {
            "entry": _entry,
            "event_shape": _entry.event_shape,
            "perturbation": _entry.perturbation,
            "triangular": _entry.triangular,
            "known_failures": _entry.known_failures,
        },
    )


@given(
    chain=strategies.bijectors(4, dtype=torch.float64),
    x=strategies.domain_tensors(
        torch.distributions.constraints.real_vector, (4,), dtype=torch.float64
    ),
)
def test_random_chains(chain, x):
    check_bijector(
        chain, x, checks=["shapes", "round_trip_x", "round_trip_y", "log_det", "inverse_log_det"]
    )
