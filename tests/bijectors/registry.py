"""Every bijector the library ships, as factories for the property harness.

Each entry: ``name -> Case(factory, event_shape, to_domain)``. ``factory()``
builds the bijector (parameters are perturbed by the harness); ``to_domain``
maps standard-normal draws into the bijector's domain.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sandflow import flows
from sandflow.bijectors import (
    ActNorm,
    AdditiveCoupling,
    Affine,
    AffineCoupling,
    Bijector,
    Chain,
    Conv1x1,
    Invert,
    Logit,
    MultiscaleSplit,
    Permute,
    Reverse,
    Sigmoid,
    Squeeze,
)


@dataclass(frozen=True)
class Case:
    factory: Callable[[], Bijector]
    event_shape: tuple[int, ...]
    to_domain: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    perturbation: float = 0.3  # deep chains get less, or float32 cannot invert them


def _conditioned(bijector, features: int) -> Bijector:
    return bijector.condition(torch.randn(features))


CASES: dict[str, Case] = {
    "affine": Case(lambda: Affine(torch.randn(3), torch.rand(3) + 0.5, event_dim=1), (3,)),
    "affine_scalar": Case(lambda: Affine(0.3, -2.0), ()),
    "sigmoid": Case(lambda: Sigmoid(event_dim=1), (3,)),
    "logit": Case(lambda: Logit(event_dim=1), (3,), torch.sigmoid),
    "permute": Case(lambda: Permute([2, 0, 3, 1]), (4,)),
    "reverse": Case(lambda: Reverse(5), (5,)),
    "permute_channels": Case(lambda: Permute([1, 2, 0], event_dim=3), (3, 2, 2)),
    "affine_coupling": Case(lambda: AffineCoupling(5, hidden=(16,)), (5,)),
    "affine_coupling_swap": Case(lambda: AffineCoupling(5, hidden=(16,), swap=True), (5,)),
    "affine_coupling_context": Case(
        lambda: _conditioned(AffineCoupling(4, hidden=(16,), context=2), 2), (4,)
    ),
    "affine_coupling_image": Case(lambda: AffineCoupling(4, hidden=8, event_dim=3), (4, 2, 3)),
    "additive_coupling": Case(lambda: AdditiveCoupling(4, hidden=(16,)), (4,)),
    "additive_coupling_image": Case(
        lambda: AdditiveCoupling(3, hidden=8, event_dim=3, swap=True), (3, 2, 2)
    ),
    "conv1x1_lu": Case(lambda: Conv1x1(4), (4, 2, 3)),
    "conv1x1_plain": Case(lambda: Conv1x1(4, lu=False), (4, 2, 3)),
    "conv1x1_vector": Case(lambda: Conv1x1(3, event_dim=1), (3,)),
    "actnorm_image": Case(lambda: ActNorm(3), (3, 2, 2)),
    "actnorm_vector": Case(lambda: ActNorm(4, event_dim=1), (4,)),
    "squeeze": Case(Squeeze, (2, 4, 2)),
    "unsqueeze": Case(lambda: Invert(Squeeze()), (8, 1, 2)),
    "multiscale_split_exit": Case(lambda: MultiscaleSplit(4, hidden=8), (4, 2, 2)),
    "multiscale_split_inner": Case(
        lambda: MultiscaleSplit(4, Chain([ActNorm(2), Conv1x1(2)]), hidden=8), (4, 2, 2)
    ),
    "chain_mixed_event_dims": Case(
        lambda: Chain([Affine(0.1, 0.3), AdditiveCoupling(3, hidden=(8,)), Sigmoid()]), (3,)
    ),
    "invert_coupling": Case(lambda: Invert(AffineCoupling(4, hidden=(8,))), (4,)),
    "nice": Case(lambda: flows.nice(5, hidden=(16,)).bijector, (5,)),
    "realnvp": Case(
        lambda: flows.realnvp(4, layers=4, hidden=(16,)).bijector, (4,), perturbation=0.1
    ),
    "realnvp_context": Case(
        lambda: _conditioned(flows.realnvp(3, layers=2, hidden=(8,), context=2).bijector, 2),
        (3,),
    ),
    "glow": Case(
        lambda: flows.glow((1, 8, 8), levels=2, steps=2, hidden=8).bijector,
        (1, 8, 8),
        perturbation=0.1,
    ),
}
