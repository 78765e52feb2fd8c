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
        lambda: flows.glow((1, 8, 8), levels=2, steps=1, hidden=8).bijector,
        (1, 8, 8),
        perturbation=0.1,
    ),
    # splines are steep where a perturbed conditioner saturates: float32 needs gentler weights
    "spline_coupling": Case(
        lambda: SplineCoupling(5, bins=4, hidden=(16,)), (5,), perturbation=0.1
    ),
    "spline_coupling_one_bin": Case(
        lambda: SplineCoupling(4, bins=1, hidden=(8,), swap=True), (4,), perturbation=0.1
    ),
    "spline_coupling_context": Case(
        lambda: _conditioned(SplineCoupling(4, bins=3, hidden=(16,), context=2), 2),
        (4,),
        perturbation=0.1,
    ),
    "spline_coupling_image": Case(
        lambda: SplineCoupling(4, bins=3, hidden=8, event_dim=3), (4, 2, 2), perturbation=0.1
    ),
    "maf": Case(lambda: MaskedAutoregressive(4, hidden=(16, 16)), (4,)),
    "maf_order": Case(lambda: MaskedAutoregressive(4, hidden=(16,), order=[2, 0, 3, 1]), (4,)),
    "maf_one_feature": Case(lambda: MaskedAutoregressive(1, hidden=(8,)), (1,)),
    "maf_spline": Case(
        lambda: MaskedAutoregressive(3, hidden=(16,), transform="spline", bins=4),
        (3,),
        perturbation=0.1,
    ),
    "maf_context": Case(
        lambda: _conditioned(MaskedAutoregressive(3, hidden=(16,), context=2), 2), (3,)
    ),
    "iaf": Case(lambda: MaskedAutoregressive(4, hidden=(16, 16), iaf=True), (4,)),
    "iaf_spline_context": Case(
        lambda: _conditioned(
            MaskedAutoregressive(3, hidden=(16,), iaf=True, transform="spline", context=2), 2
        ),
        (3,),
        perturbation=0.1,
    ),
    "planar": Case(lambda: Planar(3), (3,)),
    "planar_one_feature": Case(lambda: Planar(1), (1,)),
    "radial": Case(lambda: Radial(3), (3,)),
    "radial_one_feature": Case(lambda: Radial(1), (1,)),
    "nsf": Case(
        lambda: flows.nsf(3, layers=2, hidden=(16,), bins=4).bijector, (3,), perturbation=0.1
    ),
    "nsf_context": Case(
        lambda: _conditioned(flows.nsf(3, layers=2, hidden=(8,), bins=3, context=2).bijector, 2),
        (3,),
        perturbation=0.1,
    ),
    "maf_flow": Case(lambda: flows.maf(3, layers=3, hidden=(16,)).bijector, (3,), perturbation=0.1),
    "iaf_flow_context": Case(
        lambda: _conditioned(flows.maf(3, layers=2, hidden=(8,), context=2, iaf=True).bijector, 2),
        (3,),
        perturbation=0.1,
    ),
}
