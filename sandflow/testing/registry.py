"""Every bijector sandflow ships, as named factories: the one registry of the property harness.

``REGISTRY[name]`` is an :class:`Entry`: a zero-argument factory, the event
shape of its inputs and the perturbation that moves its parameters away from
the identity without leaving what float32 can verify. The names are the test
ids of ``tests/bijectors/test_properties.py``; entries that work for any
number of features also carry a ``vector`` factory, from which
:func:`sandflow.testing.strategies.bijectors` draws random chains. Inputs come
from each bijector's own ``domain`` (:func:`~sandflow.testing.domain_inputs`).

Example:
    >>> from sandflow.testing import check_bijector, domain_inputs
    >>> from sandflow.testing.registry import REGISTRY
    >>> entry = REGISTRY["affine_coupling"]
    >>> bijector = entry.build(dtype=torch.float64)
    >>> x = domain_inputs(bijector, entry.event_shape, dtype=torch.float64)
    >>> check_bijector(bijector, x, triangular=entry.triangular)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch.distributions import Transform

from sandflow import flows
from sandflow.bijectors import (
    ActNorm,
    AdditiveCoupling,
    Affine,
    AffineCoupling,
    Bijector,
    Chain,
    ContinuousFlow,
    Conv1x1,
    Invert,
    Logit,
    MaskedAutoregressive,
    MultiscaleSplit,
    Permute,
    Planar,
    Radial,
    Reverse,
    Sigmoid,
    SplineCoupling,
    Squeeze,
)
from sandflow.nn import MLPVectorField
from sandflow.testing.check import perturb

__all__ = ["REGISTRY", "Entry"]


@dataclass(frozen=True)
class Entry:
    """One registered bijector.

    Attributes:
        factory: builds the bijector (unperturbed; :meth:`build` perturbs it).
        event_shape: shape of one input event.
        perturbation: standard deviation of the noise added to every parameter
            (deep chains and splines get less, or float32 cannot invert them).
        triangular: the Jacobian is triangular up to a permutation (coupling,
            autoregressive): the kit checks the claim.
        vector: ``features -> bijector`` for entries that fit any event size
            (drawn into random chains by the strategies).
        known_failures: check name -> why it fails (an expected failure of
            the harness, reported in ``docs/kit_findings.rst``).
    """

    factory: Callable[[], Transform]
    event_shape: tuple[int, ...]
    perturbation: float = 0.3
    triangular: bool = False
    vector: Callable[[int], Transform] | None = None
    known_failures: Mapping[str, str] = field(default_factory=dict)

    def build(
        self,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> Transform:
        """The bijector, perturbed with a seeded generator, on ``device`` in ``dtype``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            bijector = perturb(self.factory(), scale=self.perturbation)
        return bijector.to(dtype=dtype, device=device)


def _vector(make: Callable[[int], Transform], features: int, **kwargs: object) -> Entry:
    return Entry(lambda: make(features), (features,), vector=make, **kwargs)


def _conditioned(bijector: Bijector, features: int) -> Bijector:
    """The bijector with a fixed context bound (a context is an input, not state)."""
    return bijector.condition(torch.linspace(-1.0, 1.0, features))


def _actnorm_vector(features: int) -> Bijector:
    return ActNorm(features, event_dim=1)


def _affine_vector(features: int) -> Bijector:
    return Affine(torch.zeros(features), torch.ones(features), event_dim=1, learnable=True)


_ONE_BIN = "a one-bin spline with unit end slopes is the identity: its conditioner is dead"
_ONE_FEATURE = "MADE's first layer is fully masked for one feature: its weight is dead"

REGISTRY: dict[str, Entry] = {
    "affine": Entry(lambda: Affine(torch.randn(3), torch.rand(3) + 0.5, event_dim=1), (3,)),
    "affine_scalar": Entry(lambda: Affine(0.3, -2.0), ()),
    "sigmoid": Entry(lambda: Sigmoid(event_dim=1), (3,)),
    "logit": Entry(lambda: Logit(event_dim=1), (3,)),
    "permute": Entry(lambda: Permute([2, 0, 3, 1]), (4,)),
    "reverse": _vector(Reverse, 5),
    "permute_random": _vector(Permute.random, 4),
    "permute_channels": Entry(lambda: Permute([1, 2, 0], event_dim=3), (3, 2, 2)),
    "affine_coupling": _vector(lambda d: AffineCoupling(d, hidden=(16,)), 5, triangular=True),
    "affine_coupling_swap": _vector(
        lambda d: AffineCoupling(d, hidden=(16,), swap=True), 5, triangular=True
    ),
    "affine_coupling_context": Entry(
        lambda: _conditioned(AffineCoupling(4, hidden=(16,), context=2), 2), (4,)
    ),
    "affine_coupling_image": Entry(lambda: AffineCoupling(4, hidden=8, event_dim=3), (4, 2, 3)),
    "additive_coupling": _vector(lambda d: AdditiveCoupling(d, hidden=(16,)), 4, triangular=True),
    "additive_coupling_image": Entry(
        lambda: AdditiveCoupling(3, hidden=8, event_dim=3, swap=True), (3, 2, 2)
    ),
    "conv1x1_lu": Entry(lambda: Conv1x1(4), (4, 2, 3)),
    "conv1x1_plain": Entry(lambda: Conv1x1(4, lu=False), (4, 2, 3)),
    "conv1x1_vector": _vector(lambda d: Conv1x1(d, event_dim=1), 3),
    "affine_vector": _vector(_affine_vector, 3),
    "actnorm_image": Entry(lambda: ActNorm(3), (3, 2, 2)),
    "actnorm_vector": _vector(_actnorm_vector, 4),
    "squeeze": Entry(Squeeze, (2, 4, 2)),
    "unsqueeze": Entry(lambda: Invert(Squeeze()), (8, 1, 2)),
    "multiscale_split_exit": Entry(lambda: MultiscaleSplit(4, hidden=8), (4, 2, 2)),
    "multiscale_split_inner": Entry(
        lambda: MultiscaleSplit(4, Chain([ActNorm(2), Conv1x1(2)]), hidden=8), (4, 2, 2)
    ),
    "chain_mixed_event_dims": Entry(
        lambda: Chain([Affine(0.1, 0.3), AdditiveCoupling(3, hidden=(8,)), Sigmoid()]), (3,)
    ),
    "invert_coupling": Entry(lambda: Invert(AffineCoupling(4, hidden=(8,))), (4,)),
    "nice": Entry(lambda: flows.nice(5, hidden=(16,)).bijector, (5,)),
    "realnvp": Entry(
        lambda: flows.realnvp(4, layers=4, hidden=(16,)).bijector, (4,), perturbation=0.1
    ),
    "realnvp_context": Entry(
        lambda: _conditioned(flows.realnvp(3, layers=2, hidden=(8,), context=2).bijector, 2),
        (3,),
    ),
    "glow": Entry(
        lambda: flows.glow((1, 8, 8), levels=2, steps=1, hidden=8).bijector,
        (1, 8, 8),
        perturbation=0.1,
    ),
    # splines are steep where a perturbed conditioner saturates: float32 needs gentler weights
    "spline_coupling": Entry(
        lambda: SplineCoupling(5, bins=4, hidden=(16,)), (5,), perturbation=0.1, triangular=True
    ),
    "spline_coupling_one_bin": Entry(
        lambda: SplineCoupling(4, bins=1, hidden=(8,), swap=True),
        (4,),
        perturbation=0.1,
        known_failures={"gradients": _ONE_BIN, "pyro_module": _ONE_BIN},
    ),
    "spline_coupling_context": Entry(
        lambda: _conditioned(SplineCoupling(4, bins=3, hidden=(16,), context=2), 2),
        (4,),
        perturbation=0.1,
    ),
    "spline_coupling_image": Entry(
        lambda: SplineCoupling(4, bins=3, hidden=8, event_dim=3), (4, 2, 2), perturbation=0.1
    ),
    "maf": Entry(lambda: MaskedAutoregressive(4, hidden=(16, 16)), (4,), triangular=True),
    "maf_order": Entry(
        lambda: MaskedAutoregressive(4, hidden=(16,), order=[2, 0, 3, 1]), (4,), triangular=True
    ),
    "maf_one_feature": Entry(
        lambda: MaskedAutoregressive(1, hidden=(8,)),
        (1,),
        known_failures={"gradients": _ONE_FEATURE, "pyro_module": _ONE_FEATURE},
    ),
    "maf_spline": Entry(
        lambda: MaskedAutoregressive(3, hidden=(16,), transform="spline", bins=4),
        (3,),
        perturbation=0.1,
    ),
    "maf_context": Entry(
        lambda: _conditioned(MaskedAutoregressive(3, hidden=(16,), context=2), 2), (3,)
    ),
    "iaf": Entry(lambda: MaskedAutoregressive(4, hidden=(16, 16), iaf=True), (4,), triangular=True),
    "iaf_spline_context": Entry(
        lambda: _conditioned(
            MaskedAutoregressive(3, hidden=(16,), iaf=True, transform="spline", context=2), 2
        ),
        (3,),
        perturbation=0.1,
    ),
    "planar": Entry(lambda: Planar(3), (3,)),
    "planar_one_feature": Entry(lambda: Planar(1), (1,)),
    "radial": Entry(lambda: Radial(3), (3,)),
    "radial_one_feature": Entry(lambda: Radial(1), (1,)),
    "nsf": Entry(
        lambda: flows.nsf(3, layers=2, hidden=(16,), bins=4).bijector, (3,), perturbation=0.1
    ),
    "nsf_context": Entry(
        lambda: _conditioned(flows.nsf(3, layers=2, hidden=(8,), bins=3, context=2).bijector, 2),
        (3,),
        perturbation=0.1,
    ),
    "maf_flow": Entry(
        lambda: flows.maf(3, layers=3, hidden=(16,)).bijector, (3,), perturbation=0.1
    ),
    "iaf_flow_context": Entry(
        lambda: _conditioned(flows.maf(3, layers=2, hidden=(8,), context=2, iaf=True).bijector, 2),
        (3,),
        perturbation=0.1,
    ),
    # exact trace, adaptive steps at tolerances that float64 can check, a bound context
    "continuous_flow_context": Entry(
        lambda: _conditioned(
            ContinuousFlow(
                MLPVectorField(3, hidden=(8,), context=2), event_shape=(3,), atol=1e-8, rtol=1e-8
            ),
            2,
        ),
        (3,),
        perturbation=0.1,
    ),
}
