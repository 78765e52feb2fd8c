"""Noise schedules of Gaussian diffusion: :class:`NoiseSchedule`."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["NoiseSchedule"]


def _check_num_steps(num_steps: int) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps <= 0:
        raise ValueError(f"the number of steps T must be an int >= 1, got {num_steps!r}")


def _check_real(name: str, value: float, low: float, high: float, low_closed: bool = False) -> None:
    """Refuse ``value`` unless it is a finite real in ``(low, high)`` (``[low, high)``)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if real else math.nan
    inside = (low <= number if low_closed else low < number) and number < high
    if not (math.isfinite(number) and inside):
        where = f"{'[' if low_closed else '('}{low:g}, {high:g})"
        raise ValueError(f"{name} must be a finite float in {where}, got {value!r}")


class NoiseSchedule:
    r"""alpha_bar_t = prod_{s <= t} (1 - beta_s): the noise levels of a Gaussian diffusion.

    Step ``t = 1..T`` adds noise of variance :math:`\beta_t`,
    :math:`q(x_t \mid x_{t-1}) = N(\sqrt{\alpha_t}\, x_{t-1}, \beta_t I)`, and
    :math:`q(x_t \mid x_0) = N(\sqrt{\bar\alpha_t}\, x_0, (1 - \bar\alpha_t) I)`.
    Every tensor has length ``T + 1`` and is **indexed by t itself**; index 0
    is the data, ``x_0``:

    * ``betas``: :math:`\beta_t`, with ``betas[0] == 0``;
    * ``alphas``: :math:`\alpha_t = 1 - \beta_t`;
    * ``alpha_bars``: :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s`, ``alpha_bars[0] == 1``;
    * ``alpha_bars_prev``: :math:`\bar\alpha_{t-1}`, with ``alpha_bars_prev[0] == 1``;
    * ``posterior_variances``: :math:`\tilde\beta_t = \beta_t (1 - \bar\alpha_{t-1})
      / (1 - \bar\alpha_t)`, the variance of :math:`q(x_{t-1} \mid x_t, x_0)`;
      zero at ``t = 1`` (and at the unused ``t = 0``);
    * ``snr``: :math:`\bar\alpha_t / (1 - \bar\alpha_t)`, infinite at ``t = 0``.

    All are float64 on the CPU. A schedule is validated when built: every
    :math:`\beta_t` finite and in ``(0, 1)``, :math:`\bar\alpha_t` strictly
    decreasing and positive; otherwise :class:`ValueError` names the problem.

    Args:
        betas: the ``T`` values :math:`\beta_1 .. \beta_T`.

    References:
        Denoising Diffusion Probabilistic Models (Ho et al., 2020),
        https://arxiv.org/abs/2006.11239.

    Example:
        >>> s = NoiseSchedule.linear(1000)
        >>> s.num_steps, float(s.alpha_bars[0]), float(s.betas[1])
        (1000, 1.0, 0.0001)
    """

    def __init__(self, betas: Tensor | Sequence[float]) -> None:
        try:
            b = torch.as_tensor(betas).detach().to("cpu", torch.float64)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(
                f"betas must be a tensor or a sequence of floats, got {type(betas).__name__}"
            ) from error
        if b.dim() != 1 or b.numel() == 0:
            raise ValueError(
                f"betas must be a 1-D sequence of the T >= 1 values beta_1..beta_T, "
                f"got shape {tuple(b.shape)}"
            )
        bad = ~torch.isfinite(b)
        if bad.any():
            raise ValueError(f"betas must be finite; beta_t is not at t = {_steps(bad)}")
        bad = (b <= 0) | (b >= 1)
        if bad.any():
            raise ValueError(f"betas must lie in (0, 1); beta_t does not at t = {_steps(bad)}")
        self.betas = torch.cat([b.new_zeros(1), b])
        self.alphas = 1.0 - self.betas
        self.alpha_bars = torch.cumprod(self.alphas, 0)
        if self.alpha_bars[-1] <= 0:
            raise ValueError("alpha_bars[T] underflows to 0 in float64; use fewer or smaller betas")
        flat = self.alpha_bars[1:] >= self.alpha_bars[:-1]
        if flat.any():
            raise ValueError(
                f"alpha_bars must be strictly decreasing in t, but 1 - beta_t rounds to 1 "
                f"at t = {_steps(flat)}"
            )
        self.alpha_bars_prev = torch.cat([b.new_ones(1), self.alpha_bars[:-1]])
        post = self.betas * (1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars)
        self.posterior_variances = torch.cat([b.new_zeros(1), post[1:]])
        self.snr = self.alpha_bars / (1.0 - self.alpha_bars)

    @property
    def num_steps(self) -> int:
        """The number of noising steps ``T``."""
        return len(self.betas) - 1

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule(T={self.num_steps}, beta_1={float(self.betas[1]):.3g}, "
            f"beta_T={float(self.betas[-1]):.3g}, alpha_bar_T={float(self.alpha_bars[-1]):.3g})"
        )

    @classmethod
    def linear(
        cls, num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02
    ) -> NoiseSchedule:
        r"""beta_t = beta_start + (beta_end - beta_start) (t - 1) / (T - 1): DDPM's linear schedule.

        References:
            Denoising Diffusion Probabilistic Models (Ho et al., 2020),
            https://arxiv.org/abs/2006.11239, section 4.

        Example:
            >>> NoiseSchedule.linear(3, 0.1, 0.3).betas
            tensor([0.0000, 0.1000, 0.2000, 0.3000], dtype=torch.float64)
        """
        _check_num_steps(num_steps)
        _check_real("beta_start", beta_start, 0.0, 1.0)
        _check_real("beta_end", beta_end, 0.0, 1.0)
        return cls(torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64))

    @classmethod
    def cosine(
        cls, num_steps: int, offset: float = 0.008, max_beta: float = 0.999
    ) -> NoiseSchedule:
        r"""alpha_bar_t = f(t) / f(0), f(t) = cos^2(pi/2 (t/T + s) / (1 + s)): the cosine schedule.

        .. math::
            \beta_t = \min\Big(1 - \frac{\bar\alpha(t)}{\bar\alpha(t - 1)},\ 0.999\Big)

        The clipping keeps the last steps from adding noise of variance one
        (singular near ``t = T``). ``alpha_bars`` are then recomputed from the
        clipped betas.

        References:
            Improved Denoising Diffusion Probabilistic Models (Nichol & Dhariwal, 2021),
            https://arxiv.org/abs/2102.09672, equation 17.

        Example:
            >>> s = NoiseSchedule.cosine(100)
            >>> float(s.betas[-1])
            0.999
        """
        _check_num_steps(num_steps)
        _check_real("offset", offset, 0.0, math.inf, low_closed=True)
        _check_real("max_beta", max_beta, 0.0, 1.0)
        t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        return cls((1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta))

    def respace(self, steps: int) -> tuple[NoiseSchedule, Tensor]:
        r"""beta'_i = 1 - alpha_bar[tau_i] / alpha_bar[tau_{i-1}]: the chain on ``steps`` of T.

        Keeps ``steps`` timesteps :math:`\tau_1 < .. < \tau_S = T` evenly
        spaced over ``1..T`` (``tau_1 = 1`` for ``S >= 2``) and the same
        :math:`\bar\alpha` at them, so a network trained on the full chain
        serves the short one when called with the original timesteps.

        Returns:
            The respaced schedule and the long tensor ``timesteps`` of length
            ``S + 1`` mapping its steps to the original ones
            (``timesteps[0] == 0``, ``timesteps[i] == tau_i``).

        References:
            Improved Denoising Diffusion Probabilistic Models (Nichol & Dhariwal, 2021),
            https://arxiv.org/abs/2102.09672, section 4.

        Example:
            >>> s, taus = NoiseSchedule.linear(1000).respace(4)
            >>> taus
            tensor([   0,    1,  334,  667, 1000])
        """
        if (
            isinstance(steps, bool)
            or not isinstance(steps, int)
            or not 1 <= steps <= self.num_steps
        ):
            raise ValueError(f"steps must be an int in 1..T = 1..{self.num_steps}, got {steps!r}")
        kept = torch.linspace(self.num_steps, 1, steps, dtype=torch.float64).round().long().flip(0)
        alpha_bars = self.alpha_bars[kept]
        prev = torch.cat([alpha_bars.new_ones(1), alpha_bars[:-1]])
        return NoiseSchedule(1.0 - alpha_bars / prev), torch.cat([kept.new_zeros(1), kept])


def _steps(mask: Tensor) -> list[int]:
    """The timesteps ``t`` (1-based) where ``mask`` over ``beta_1..beta_T`` is true, at most 5."""
    return (mask.nonzero().flatten() + 1).tolist()[:5]
