"""Markov chains as distributions over whole trajectories: :class:`MarkovChain`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import Distribution, constraints

__all__ = ["MarkovChain"]

Transition = Callable[[Tensor, Tensor], Distribution]


class MarkovChain(TorchDistribution):
    r"""p(z_0, ..., z_T) = p(z_0) prod_{t=1}^T p(z_t | z_{t-1}): a Markov chain as one distribution.

    The whole trajectory ``z_0 .. z_T`` is one event. **Time is the leftmost
    axis of the event**, right after the batch dims (the layout of TFP's
    ``MarkovChain``): with ``state_shape = initial.event_shape``, a sample has
    shape ``sample_shape + batch_shape + (T + 1,) + state_shape`` and index
    ``t`` along that axis (dim ``-1 - len(state_shape)``) holds ``z_t``.

    ``transition(t, z_prev)`` returns the distribution of ``z_t`` given
    ``z_{t-1} = z_prev``. Its arguments:

    * ``z_prev``: states of shape ``batch + state_shape`` (any batch);
    * ``t``: a long tensor of step indices in ``1..T`` with shape ``batch``,
      one per chain, so ``coef[t]`` lines up with the batch of ``z_prev``.

    The returned distribution has batch shape ``batch`` (or one that expands
    to it) and event shape ``state_shape``.

    :meth:`sample` and :meth:`rsample` call ``transition`` once per step.
    :meth:`log_prob` calls it **once for all T steps**: the time axis is moved
    to the front, ``z_prev`` is ``z_{0:T-1}`` of shape
    ``(T,) + batch + state_shape`` and ``t`` holds ``1..T`` along that first
    axis, so that

    .. math::
        \log p(z_{0:T}) = \log p(z_0) + \sum_{t=1}^{T} \log p(z_t \mid z_{t-1})

    costs one batched transition. A transition that cannot take a batch of
    different steps is used with ``vectorized=False`` (a loop over ``t``).
    An empty batch gives empty samples and log-densities.

    Args:
        initial: distribution of ``z_0``; its batch and event shapes are the
            chain's batch shape and state shape.
        transition: callable ``(t, z_prev) -> Distribution`` as above.
        num_steps: the number of transitions ``T >= 1``; a trajectory holds
            ``T + 1`` states.
        vectorized: whether ``transition`` accepts states and steps from all
            times in one call.
        validate_args: check the shape and support of values in
            :meth:`log_prob`.

    References:
        TensorFlow Distributions (Dillon et al., 2017),
        https://arxiv.org/abs/1711.10604, whose ``MarkovChain`` this follows.

    Example:
        >>> from pyro.distributions import Normal
        >>> walk = MarkovChain(Normal(0.0, 1.0), lambda t, z: Normal(z, 1.0), num_steps=4)
        >>> z = walk.sample((3,))
        >>> z.shape
        torch.Size([3, 5])
        >>> walk.log_prob(z).shape
        torch.Size([3])
    """

    arg_constraints: dict = {}

    def __init__(
        self,
        initial: Distribution,
        transition: Transition,
        num_steps: int,
        *,
        vectorized: bool = True,
        validate_args: bool | None = None,
    ) -> None:
        if not isinstance(initial, Distribution):
            raise TypeError(
                f"initial must be a torch Distribution over z_0, got {type(initial).__name__}"
            )
        if not callable(transition):
            raise TypeError(
                "transition must be a callable (t, z_prev) -> Distribution, "
                f"got {type(transition).__name__}"
            )
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
        self.initial = initial
        self.transition = transition
        self.num_steps = num_steps
        self.vectorized = vectorized
        event_shape = torch.Size((num_steps + 1,)) + initial.event_shape
        super().__init__(initial.batch_shape, event_shape, validate_args=validate_args)

    @property
    def state_shape(self) -> torch.Size:
        """The event shape of one state ``z_t``."""
        return self.initial.event_shape

    @property
    def support(self) -> constraints.Constraint:
        return constraints.independent(self.initial.support, 1)

    @property
    def has_rsample(self) -> bool:
        return self.initial.has_rsample

    def _step(self, t: Tensor, z_prev: Tensor) -> Distribution:
        """``transition(t, z_prev)``, checked against the shapes the chain needs."""
        d = self.transition(t, z_prev)
        if not isinstance(d, Distribution):
            raise TypeError(
                f"transition(t, z_prev) must return a torch Distribution of z_t, got "
                f"{type(d).__name__}; wrap a mean in one, e.g. pyro.distributions.Normal(mean, 1)"
            )
        if d.event_shape != self.state_shape:
            raise ValueError(
                f"transition returned event_shape {tuple(d.event_shape)}, but the states of this "
                f"chain have event_shape {tuple(self.state_shape)} (initial.event_shape)"
            )
        if d.batch_shape != t.shape:
            try:
                d = d.expand(t.shape)
            except (RuntimeError, ValueError) as err:
                raise ValueError(
                    f"transition returned batch_shape {tuple(d.batch_shape)}, which does not "
                    f"expand to the batch shape {tuple(t.shape)} of z_prev"
                ) from err
        return d

    def _simulate(self, sample_shape: torch.Size, method: str) -> Tensor:
        z = getattr(self.initial, method)(sample_shape)
        batch = z.shape[: z.dim() - len(self.state_shape)]
        states = [z]
        for step in range(1, self.num_steps + 1):
            t = torch.full(batch, step, dtype=torch.long, device=z.device)
            z = getattr(self._step(t, z), method)()
            states.append(z)
        return torch.stack(states, dim=len(batch))

    def sample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        """Draw trajectories by ancestral sampling, one transition per step (no gradients)."""
        with torch.no_grad():
            return self._simulate(torch.Size(sample_shape), "sample")

    def rsample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        """Draw reparameterised trajectories: gradients flow through every step."""
        return self._simulate(torch.Size(sample_shape), "rsample")

    def log_prob(self, value: Tensor) -> Tensor:
        """``log p(z_0) + sum_t log p(z_t | z_{t-1})``, of shape ``value.shape[:-event_dim]``."""
        k = len(self.state_shape)
        if value.dim() < k + 1 or value.shape[value.dim() - k - 1] != self.num_steps + 1:
            raise ValueError(
                f"a trajectory of this chain has event shape {tuple(self.event_shape)} "
                f"(T + 1 = {self.num_steps + 1} states, time leftmost), got a value of shape "
                f"{tuple(value.shape)}"
            )
        if not value.numel():  # no states: log-density 0 for each (possibly empty) batch entry
            return value.new_zeros(value.shape[: value.dim() - len(self.event_shape)])
        if self._validate_args:
            self._validate_sample(value)
        z = value.movedim(value.dim() - k - 1, 0)
        lp = self.initial.log_prob(z[0])
        batch = z.shape[1 : z.dim() - k]
        if self.vectorized:
            steps = torch.arange(1, self.num_steps + 1, device=value.device)
            t = steps.view(-1, *(1,) * len(batch)).expand(self.num_steps, *batch)
            return lp + self._step(t, z[:-1]).log_prob(z[1:]).sum(0)
        for step in range(1, self.num_steps + 1):
            t = torch.full(batch, step, dtype=torch.long, device=value.device)
            lp = lp + self._step(t, z[step - 1]).log_prob(z[step])
        return lp
