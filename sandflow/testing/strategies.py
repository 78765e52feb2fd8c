"""Hypothesis strategies: tensors, points of a transform's domain, random bijector chains."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from hypothesis import strategies as st
from torch.distributions import Transform, constraints

from sandflow.bijectors import Chain
from sandflow.testing.check import domain_inputs, perturb
from sandflow.testing.registry import REGISTRY

__all__ = ["batch_shapes", "bijectors", "domain_tensors", "tensors"]


def batch_shapes(max_dims: int = 2, max_size: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Batch shapes with up to ``max_dims`` dimensions of sizes 1 to ``max_size``."""
    return st.lists(st.integers(1, max_size), max_size=max_dims).map(tuple)


def tensors(event_shape: Sequence[int], **options: Any) -> st.SearchStrategy[torch.Tensor]:
    """Standard-normal tensors of shape ``batch + event_shape`` times a drawn scale.

    :func:`domain_tensors` on the real line, the scale drawn from 0.1, 1 and 3
    by default; the keyword arguments (``dtype``, ``device``, ``batch_shape``,
    ``scale``) are its. The batch shape and the scale are drawn by hypothesis
    (so failures shrink to small batches and tame scales); the values come from
    a seeded torch generator.

    Example:
        >>> from hypothesis import given
        >>> from sandflow.testing import strategies
        >>> @given(strategies.tensors((3,)))
        ... def test_event_size(x):
        ...     assert x.shape[-1] == 3
        >>> test_event_size()
    """
    if options.get("scale") is None:
        options["scale"] = st.sampled_from([0.1, 1.0, 3.0])
    return domain_tensors(constraints.real, event_shape, **options)


def _vector_factories() -> dict[str, Callable[[int], Transform]]:
    """Name -> ``features -> bijector`` for every registry entry that fits any event size."""
    return {name: e.vector for name, e in REGISTRY.items() if e.vector is not None}


@st.composite
def domain_tensors(
    draw: st.DrawFn,
    transform: Transform | constraints.Constraint,
    event_shape: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    batch_shape: st.SearchStrategy[tuple[int, ...]] | None = None,
    scale: st.SearchStrategy[float] | None = None,
) -> torch.Tensor:
    """Points of a transform's ``domain``, tame to extreme: see :func:`.domain_inputs`.

    The scale in the unconstrained space is drawn from 0.01 to 30 by default:
    the large ones give large magnitudes on unbounded domains and values next
    to the boundary on bounded ones (``sigmoid(30)`` is ``1 - 1e-13``).

    Example:
        >>> from hypothesis import given
        >>> from torch.distributions import constraints
        >>> @given(domain_tensors(constraints.positive, (2,), dtype=torch.float64))
        ... def test_inside(x):
        ...     assert (x > 0).all()
        >>> test_inside()
    """
    batch = draw(batch_shapes() if batch_shape is None else batch_shape)
    factor = draw(st.sampled_from([0.01, 0.3, 1.0, 3.0, 30.0]) if scale is None else scale)
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    return domain_inputs(
        transform,
        event_shape,
        batch_shape=batch,
        scale=factor,
        dtype=dtype,
        device=device,
        generator=generator,
    )


@st.composite
def bijectors(
    draw: st.DrawFn,
    features: int,
    *,
    max_length: int = 4,
    factories: dict[str, Callable[[int], Transform]] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Chain:
    """Random :class:`~sandflow.bijectors.Chain` of vector bijectors with perturbed parameters.

    Args:
        draw: supplied by hypothesis.
        features: event size of the chain.
        max_length: most parts in a chain.
        factories: name -> ``features -> Bijector`` to draw from; add your own
            bijectors here to test them inside chains (default: every entry of
            :data:`~sandflow.testing.registry.REGISTRY` with a ``vector`` factory).
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
    table = _vector_factories() if factories is None else factories
    names = draw(st.lists(st.sampled_from(sorted(table)), min_size=1, max_size=max_length))
    seed = draw(st.integers(0, 2**32 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        chain = Chain([table[name](features) for name in names])
        perturb(chain, scale=0.3)
    return chain.to(dtype=dtype, device=device)
