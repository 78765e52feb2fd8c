"""Hypothesis strategies for tensors and random bijector chains."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from hypothesis import strategies as st

from sandflow.bijectors import (
    ActNorm,
    AdditiveCoupling,
    Affine,
    AffineCoupling,
    Bijector,
    Chain,
    Conv1x1,
    Permute,
    Reverse,
)
from sandflow.testing.check import perturb

__all__ = ["VECTOR_BIJECTORS", "batch_shapes", "bijectors", "tensors"]


def batch_shapes(max_dims: int = 2, max_size: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Batch shapes with up to ``max_dims`` dimensions of sizes 1 to ``max_size``."""
    return st.lists(st.integers(1, max_size), max_size=max_dims).map(tuple)


@st.composite
def tensors(
    draw: st.DrawFn,
    event_shape: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    batch_shape: st.SearchStrategy[tuple[int, ...]] | None = None,
    scale: st.SearchStrategy[float] | None = None,
) -> torch.Tensor:
    """Standard-normal tensors of shape ``batch + event_shape`` times a drawn scale.

    The batch shape and the scale are drawn by hypothesis (so failures shrink
    to small batches and tame scales); the values come from a seeded torch
    generator.

    Example:
        >>> from hypothesis import given
        >>> from sandflow.testing import strategies
        >>> @given(strategies.tensors((3,)))
        ... def test_event_size(x):
        ...     assert x.shape[-1] == 3
        >>> test_event_size()
    """
    batch = draw(batch_shapes() if batch_shape is None else batch_shape)
    factor = draw(st.sampled_from([0.1, 1.0, 3.0]) if scale is None else scale)
    seed = draw(st.integers(0, 2**32 - 1))
    generator = torch.Generator().manual_seed(seed)
    shape = (*batch, *event_shape)
    x = torch.randn(shape, generator=generator, dtype=torch.float64) * factor
    return x.to(dtype=dtype, device=device)


def _actnorm(features: int) -> Bijector:
    return ActNorm(features, event_dim=1)


#: Factories ``features -> Bijector`` for every vector bijector of the core set.
VECTOR_BIJECTORS: dict[str, Callable[[int], Bijector]] = {
    "affine_coupling": lambda d: AffineCoupling(d, hidden=(16,)),
    "affine_coupling_swap": lambda d: AffineCoupling(d, hidden=(16,), swap=True),
    "additive_coupling": lambda d: AdditiveCoupling(d, hidden=(16,)),
    "permute": lambda d: Permute.random(d),
    "reverse": lambda d: Reverse(d),
    "conv1x1": lambda d: Conv1x1(d, event_dim=1),
    "actnorm": _actnorm,
    "affine": lambda d: Affine(torch.zeros(d), torch.ones(d), event_dim=1, learnable=True),
}


@st.composite
def bijectors(
    draw: st.DrawFn,
    features: int,
    *,
    max_length: int = 4,
    factories: dict[str, Callable[[int], Bijector]] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Chain:
    """Random :class:`~sandflow.bijectors.Chain` of vector bijectors with perturbed parameters.

    Args:
        draw: supplied by hypothesis.
        features: event size of the chain.
        max_length: most parts in a chain.
        factories: name -> ``features -> Bijector`` to draw from; add your own
            bijectors here to test them inside chains (default: the core set).
        dtype: parameter dtype.
        device: parameter device.

    Example:
        >>> from hypothesis import given, settings
        >>> from sandflow.testing import check_bijector, strategies
        >>> f64 = torch.float64
        >>> @settings(max_examples=5, deadline=None)
        ... @given(strategies.bijectors(3, dtype=f64), strategies.tensors((3,), dtype=f64))
        ... def test_random_chains(chain, x):
        ...     check_bijector(chain, x)
        >>> test_random_chains()
    """
    table = VECTOR_BIJECTORS if factories is None else factories
    names = draw(st.lists(st.sampled_from(sorted(table)), min_size=1, max_size=max_length))
    seed = draw(st.integers(0, 2**32 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        chain = Chain([table[name](features) for name in names])
        perturb(chain, scale=0.3)
    return chain.to(dtype=dtype, device=device)
