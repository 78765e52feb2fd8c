"""Normalizing flows as modules: :class:`Flow` and builders (nice, realnvp, glow, nsf, maf, cnf)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from sandflow.bijectors import (
    ActNorm,
    AdditiveCoupling,
    Affine,
    AffineCoupling,
    Bijector,
    Chain,
    Conv1x1,
    Invert,
    MaskedAutoregressive,
    MultiscaleSplit,
    Reverse,
    SplineCoupling,
    Squeeze,
)
from sandflow.bijectors.checks import check_finite, check_tensor
from sandflow.bijectors.continuous import ContinuousFlow
from sandflow.distributions import DiagonalNormal, TransformedDistribution
from sandflow.nn.vector_field import MLPVectorField

__all__ = ["Flow", "cnf", "glow", "maf", "nice", "nsf", "realnvp"]


class Flow(nn.Module):
    r"""A normalizing flow: a bijector from a standard-normal base to data, as an ``nn.Module``.

    Calling the module returns the distribution, :math:`x = f(z)`,
    :math:`z \sim N(0, I)`: ``flow()`` unconditionally, ``flow(context)`` for
    a conditional flow. The base parameters are buffers, so ``.to(device)``,
    ``.double()`` and ``state_dict()`` cover the whole flow.

    Args:
        bijector: the map from noise to data.
        shape: the event shape of the base (noise).

    Example:
        >>> flow = realnvp(2, layers=2, hidden=(8,))
        >>> d = flow()
        >>> d.sample((5,)).shape, d.log_prob(torch.zeros(5, 2)).shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, bijector: Bijector, shape: Sequence[int]) -> None:
        super().__init__()
        self.bijector = bijector
        self.shape = torch.Size(shape)
        self.register_buffer("base_loc", torch.zeros(self.shape))
        self.register_buffer("base_scale", torch.ones(self.shape))

    @property
    def context_features(self) -> int:
        """Number of context features (0 for an unconditional flow)."""
        return self.bijector.context_features

    @property
    def base(self) -> DiagonalNormal:
        """The standard-normal base distribution over events of shape ``shape``."""
        return self._normal(self.base_scale)

    def _normal(self, scale: Tensor) -> DiagonalNormal:
        return DiagonalNormal(self.base_loc, scale, len(self.shape))

    def forward(
        self,
        context: Tensor | None = None,
        *,
        temperature: float = 1.0,
        validate_args: bool | None = None,
    ) -> TransformedDistribution:
        """The flow's distribution, given ``context`` of shape ``(..., context)`` if conditional.

        Args:
            context: the conditioning tensor of a conditional flow.
            temperature: scale of the base noise; below 1 (Glow uses 0.7)
                samples concentrate on the typical set.
            validate_args: check values and results (``None``: the default
                that ``pyro.enable_validation`` sets).
        """
        if validate_args is None:
            validate_args = Distribution._validate_args
        features = self.context_features
        base = self.base
        if not 0 < temperature < float("inf"):
            raise ValueError(f"temperature must be positive and finite, got {temperature}")
        if temperature != 1.0:
            base = self._normal(temperature * self.base_scale)
        if context is None:
            if features:
                raise ValueError(
                    f"this flow is conditional (context={features}); call flow(context) with "
                    f"a tensor of shape (..., {features})."
                )
            return TransformedDistribution(base, self.bijector, validate_args=validate_args)
        if not features:
            raise ValueError("this flow was built without context; build it with context=<n>.")
        check_tensor("context", context, self.base_loc, "the flow's parameters")
        if validate_args:
            check_finite("context", context)
        bijector = self.bijector.condition(context)
        return TransformedDistribution(
            base.expand(context.shape[:-1]), bijector, validate_args=validate_args
        )


def _check_sizes(**sizes: object) -> None:
    """Refuse builder arguments that no flow can have, naming the argument."""
    for name, value in sizes.items():
        values = value if name == "hidden" and not isinstance(value, int) else (value,)
        if name == "hidden" and not len(values):
            raise ValueError("hidden must list at least one hidden size, got ()")
        least = 0 if name == "context" else 1
        for v in values:
            if not isinstance(v, int) or isinstance(v, bool) or v < least:
                raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


def realnvp(
    features: int,
    *,
    layers: int = 8,
    hidden: Sequence[int] = (256, 256),
    context: int = 0,
) -> Flow:
    """RealNVP for vectors: ``layers`` affine couplings, alternating halves (Dinh et al., 2017).

    Example:
        >>> realnvp(3, layers=4)().event_shape
        torch.Size([3])
    """
    _check_sizes(features=features, layers=layers, hidden=hidden, context=context)
    parts = [
        AffineCoupling(features, hidden=hidden, context=context, swap=i % 2 == 1)
        for i in range(layers)
    ]
    return Flow(Chain(parts), (features,))


def nice(
    features: int,
    *,
    layers: int = 4,
    hidden: Sequence[int] = (256, 256),
    context: int = 0,
) -> Flow:
    """NICE: a learned diagonal scaling, then ``layers`` additive couplings (Dinh et al., 2014).

    Example:
        >>> nice(4)().log_prob(torch.zeros(4)).shape
        torch.Size([])
    """
    _check_sizes(features=features, layers=layers, hidden=hidden, context=context)
    scaling = Affine(torch.zeros(features), torch.ones(features), event_dim=1, learnable=True)
    couplings = [
        AdditiveCoupling(features, hidden=hidden, context=context, swap=i % 2 == 1)
        for i in range(layers)
    ]
    return Flow(Chain([scaling, *couplings]), (features,))


def _glow_level(channels: int, levels: int, steps: int, hidden: int) -> Chain:
    """One level in the sampling direction: squeeze, split (deeper levels), steps, unsqueeze."""
    wide = 4 * channels
    parts: list[Bijector] = [Squeeze()]
    if levels > 1:
        inner = _glow_level(wide // 2, levels - 1, steps, hidden)
        parts.append(MultiscaleSplit(wide, inner, hidden=hidden))
    for _ in range(steps):
        parts += [
            AffineCoupling(wide, hidden=hidden, event_dim=3),
            Conv1x1(wide, lu=True),
            ActNorm(wide),
        ]
    parts.append(Invert(Squeeze()))
    return Chain(parts)


def glow(shape: Sequence[int], *, levels: int = 2, steps: int = 4, hidden: int = 128) -> Flow:
    """Glow for ``(C, H, W)`` images, mapping ``(C, H, W)`` noise to ``(C, H, W)`` data.

    Each level squeezes, runs ``steps`` flow steps (in the density direction:
    ActNorm, invertible 1x1 convolution with LU, affine coupling) and factors
    half of the channels out with a learned conditional prior
    (:class:`~sandflow.bijectors.MultiscaleSplit`); the last level exits
    without a split. ``H`` and ``W`` must be divisible by ``2 ** levels``.

    References:
        Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma &
        Dhariwal, 2018). https://arxiv.org/abs/1807.03039

    Example:
        >>> flow = glow((1, 8, 8), levels=2, steps=1, hidden=16)
        >>> flow().sample((2,)).shape
        torch.Size([2, 1, 8, 8])
    """
    _check_sizes(levels=levels, steps=steps, hidden=hidden)
    if len(shape) != 3:
        raise ValueError(f"glow needs shape=(C, H, W), got {tuple(shape)}")
    c, h, w = shape
    _check_sizes(channels=c, height=h, width=w)
    if h % 2**levels or w % 2**levels:
        raise ValueError(f"glow with {levels} levels needs H, W divisible by {2**levels}: {shape}")
    return Flow(_glow_level(c, levels, steps, hidden), (c, h, w))


def nsf(
    features: int,
    *,
    layers: int = 8,
    hidden: Sequence[int] = (256, 256),
    bins: int = 8,
    bound: float = 5.0,
    context: int = 0,
) -> Flow:
    """Neural spline flow: ``layers`` rational-quadratic spline couplings, alternating halves.

    Each :class:`~sandflow.bijectors.SplineCoupling` has ``bins`` bins on
    ``[-bound, bound]``, the identity outside; a learned elementwise affine map
    at the data end sets scale and location, so that data wider than the
    interval is still shaped by the splines. The untrained flow is N(0, I).

    References:
        Neural Spline Flows (Durkan, Bekasov, Murray & Papamakarios, 2019).
        https://arxiv.org/abs/1906.04032

    Example:
        >>> nsf(3, layers=2, hidden=(16,))().log_prob(torch.zeros(5, 3)).shape
        torch.Size([5])
    """
    _check_sizes(features=features, layers=layers, hidden=hidden, bins=bins, context=context)
    spline = {"bins": bins, "bound": bound, "hidden": hidden, "context": context}
    couplings = [SplineCoupling(features, swap=i % 2 == 1, **spline) for i in range(layers)]
    scaling = Affine(torch.zeros(features), torch.ones(features), event_dim=1, learnable=True)
    return Flow(Chain([*couplings, scaling]), (features,))


def maf(
    features: int,
    *,
    layers: int = 5,
    hidden: Sequence[int] = (256, 256),
    context: int = 0,
    iaf: bool = False,
) -> Flow:
    """Masked autoregressive flow: ``layers`` affine MAF layers with the order reversed between.

    With ``iaf=False`` (MAF) ``log_prob`` is one network pass per layer and
    sampling ``features`` passes: the choice for density estimation. With
    ``iaf=True`` (IAF) sampling and ``rsample_and_log_prob`` are one pass per
    layer: the choice for variational inference. See
    :class:`~sandflow.bijectors.MaskedAutoregressive`.

    References:
        Masked Autoregressive Flow for Density Estimation (Papamakarios,
        Pavlakou & Murray, 2017). https://arxiv.org/abs/1705.07057

    Example:
        >>> flow = maf(3, layers=2, hidden=(16,), iaf=True)
        >>> x, log_q = flow().rsample_and_log_prob((4,))
        >>> x.shape, log_q.shape
        (torch.Size([4, 3]), torch.Size([4]))
    """
    _check_sizes(features=features, layers=layers, hidden=hidden, context=context)
    parts: list[Bijector] = []
    for i in range(layers):
        if i:
            parts.append(Reverse(features))
        parts.append(MaskedAutoregressive(features, hidden=hidden, context=context, iaf=iaf))
    return Flow(Chain(parts), (features,))


def cnf(
    features: int,
    *,
    hidden: Sequence[int] = (64, 64, 64),
    context: int = 0,
    trace: str = "exact",
    solver: str = "dopri5",
    atol: float = 1e-5,
    rtol: float = 1e-5,
    adjoint: bool = False,
) -> Flow:
    """Continuous normalizing flow: a :class:`~sandflow.bijectors.ContinuousFlow` of an MLP field.

    The field is a :class:`~sandflow.nn.MLPVectorField` (zero at start: the
    untrained flow is N(0, I)), integrated from noise at ``t = 0`` to data at
    ``t = 1``. Train it by maximum likelihood (``-flow().log_prob(x)``, one
    ODE solve per step) or, without solves, by flow matching on
    ``flow.bijector.vector_field`` (:func:`sandflow.matching.flow_matching_loss`).

    References:
        FFJORD: Free-form Continuous Dynamics for Scalable Reversible
        Generative Models (Grathwohl et al., 2019), https://arxiv.org/abs/1810.01367;
        Flow Matching for Generative Modeling (Lipman et al., 2023),
        https://arxiv.org/abs/2210.02747.

    Example:
        >>> flow = cnf(2, hidden=(16, 16))
        >>> flow().log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
    """
    field = MLPVectorField(features, hidden=hidden, context=context)
    options = {"trace": trace, "solver": solver, "atol": atol, "rtol": rtol, "adjoint": adjoint}
    return Flow(ContinuousFlow(field, event_shape=(features,), **options), (features,))
