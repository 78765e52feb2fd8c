r"""The per-step Gaussian algebra of diffusion: :class:`DiffusionSteps`, base of GaussianDiffusion.

Everything a training loss, the ELBO and the samplers share: the schedule's
coefficients as float64 buffers, the noising step, the posterior mean, the
network's prediction turned into the reverse mean and variance, and the
per-step terms of the bound. The conventions (``t = 1`` is the decoder, bins
of the discretised decoder) are stated in :mod:`sandflow.diffusion.gaussian_diffusion`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pyro.distributions as dist
import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from sandflow.diffusion.schedule import NoiseSchedule
from sandflow.distributions.gaussian import (
    DiscretizedNormal,
    discretized_normal_log_prob,
    normal_kl,
)

__all__ = ["DiffusionSteps", "Model"]

Model = Callable[[Tensor, Tensor], Tensor]
_PARAMETERIZATIONS = ("eps", "x0", "v")
_VARIANCES = ("posterior", "beta", "learned")
_DECODERS = ("gaussian", "discretized")
_LOG_2PI = math.log(2 * math.pi)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


class DiffusionSteps(nn.Module):
    r"""mu_theta(x_t, t) = a_t x_t + b_t model(x_t, t): one reverse step, linear in the prediction.

    For each parameterisation the predicted :math:`\hat x_0` and
    :math:`\hat\epsilon` are linear in :math:`x_t` and the network output,
    so the reverse mean

    .. math::
        \mu_\theta = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1 - \bar\alpha_t}\hat x_0
        + \frac{\sqrt{\alpha_t}(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t

    is too; every coefficient is built once in float64 (non-persistent
    buffers: the schedule is configuration) and cast to the data's dtype on
    use. The arguments are those of
    :class:`~sandflow.diffusion.GaussianDiffusion`, which adds the public API.

    References:
        Denoising Diffusion Probabilistic Models (Ho et al., 2020),
        https://arxiv.org/abs/2006.11239, equations 7 and 11.
    """

    def __init__(
        self,
        schedule: NoiseSchedule,
        parameterization: str = "eps",
        reverse_variance: str = "posterior",
        decoder: str = "gaussian",
        levels: int = 256,
    ) -> None:
        super().__init__()
        self.parameterization = _choice("parameterization", parameterization, _PARAMETERIZATIONS)
        self.reverse_variance = _choice("reverse_variance", reverse_variance, _VARIANCES)
        self.decoder = _choice("decoder", decoder, _DECODERS)
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise ValueError(f"levels must be an int >= 2, got {levels!r}")
        self.levels = levels
        self.schedule = schedule
        self.num_steps = schedule.num_steps
        for name, value in _buffers(schedule, parameterization).items():
            self.register_buffer(name, value, persistent=False)
        self.register_buffer("model_timesteps", torch.arange(self.num_steps + 1), persistent=False)

    def _timesteps(self, t: int | Tensor, x: Tensor) -> Tensor:
        """Check user timesteps: an int or a long tensor of shape ``(batch,)`` in ``1..T``."""
        n, device = x.shape[0], self.betas.device
        t = torch.as_tensor(t, device=device)
        if torch.is_floating_point(t) or torch.is_complex(t) or t.dtype == torch.bool:
            raise TypeError(f"timesteps must be an int or a long tensor, got dtype {t.dtype}")
        if t.dim() == 0:
            t = t.expand(n)
        elif t.shape != (n,):
            raise ValueError(f"timesteps must have shape (batch,) = ({n},), got {tuple(t.shape)}")
        lo, hi = int(t.min()), int(t.max())
        if lo < 1 or hi > self.num_steps:
            raise ValueError(
                f"timesteps must lie in 1..T = 1..{self.num_steps}, got values from {lo} to {hi}"
            )
        return t.long()

    def _coef(self, name: str, t: Tensor, x: Tensor) -> Tensor:
        """``buffer[t]`` in the dtype of ``x``, shaped to broadcast over the event dims of ``x``."""
        value = getattr(self, name)[t].to(x.dtype)
        return value.view(*t.shape, *(1,) * (x.dim() - t.dim()))

    def _noised(self, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``."""
        return self._coef("sqrt_alpha_bars", t, x0) * x0 + self._coef("sqrt_one_minus", t, x0) * eps

    def _posterior_mean(self, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        return self._coef("post_x0", t, x0) * x0 + self._coef("post_xt", t, x0) * xt

    def _model_output(self, model: Model, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor | None]:
        """The prediction and, for a learned variance, the interpolation ``v``."""
        return self._split_output(model(xt, self.model_timesteps[t]), xt)

    def _split_output(self, out: Tensor, xt: Tensor) -> tuple[Tensor, Tensor | None]:
        """Check the shape of ``model(xt, t)`` and split off ``v`` for a learned variance."""
        learned = self.reverse_variance == "learned"
        if learned and xt.dim() < 2:
            raise ValueError(
                "reverse_variance='learned' needs data of shape (batch, channels, ...)"
            )
        shape = (xt.shape[0], 2 * xt.shape[1], *xt.shape[2:]) if learned else tuple(xt.shape)
        if tuple(out.shape) != shape:
            need = (
                "twice the channels of xt on dim 1 (the prediction, then the variance "
                "interpolation v) for reverse_variance='learned'"
                if learned
                else "the shape of xt"
            )
            raise ValueError(
                f"model(xt, t) returned shape {tuple(out.shape)} for xt of shape "
                f"{tuple(xt.shape)}; it must return {shape}: {need}"
            )
        return out.chunk(2, dim=1) if learned else (out, None)

    def _mean(self, xt: Tensor, out: Tensor, t: Tensor) -> Tensor:
        """``mu_theta``: linear in ``x_t`` and the prediction, with float64-built coefficients."""
        return self._coef("mean_from_xt", t, xt) * xt + self._coef("mean_from_out", t, xt) * out

    def _log_variance(self, t: Tensor, v: Tensor | None, x: Tensor) -> Tensor:
        """``log sigma_t^2``: fixed (broadcasting over the event) or learned from ``v``."""
        if v is None:
            small = self.reverse_variance == "posterior"
            return self._coef("log_var_small" if small else "log_var_large", t, x)
        frac = (v + 1.0) / 2.0
        return frac * self._coef("log_var_large", t, x) + (1.0 - frac) * self._coef(
            "log_var_small", t, x
        )

    def _reverse_params(self, model: Model, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        out, v = self._model_output(model, xt, t)
        return self._mean(xt, out, t), self._log_variance(t, v, xt)

    def _reverse_distribution(self, mean: Tensor, log_var: Tensor, t: Tensor) -> Distribution:
        """Elementwise ``N(mean, exp(log_var))``, the discretised decoder where ``t == 1``."""
        scale = (0.5 * log_var).exp().expand_as(mean)
        normal = dist.Normal(mean, scale)
        if self.decoder == "gaussian":
            return normal
        decoder = DiscretizedNormal(mean, scale, self.levels)
        return dist.MaskedMixture((t == 1).expand_as(mean), normal, decoder)

    def _decoder_log_prob(self, x0: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
        """``log p(x_0 | x_1)``, elementwise."""
        if self.decoder == "discretized":
            return discretized_normal_log_prob(x0, mean, (0.5 * log_var).exp(), self.levels)
        return -0.5 * (log_var + _LOG_2PI + (x0 - mean) ** 2 / log_var.exp())

    def _step_loss(
        self, x0: Tensor, xt: Tensor, t: Tensor, mean: Tensor, log_var: Tensor
    ) -> Tensor:
        """``L_{t-1} = KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))``, ``-log p(x_0|x_1)`` at t = 1."""
        dims = tuple(range(1, x0.dim()))
        post_var = self._coef("posterior_variances", t, x0)
        first = (t == 1).nonzero().flatten()
        if len(first):  # beta_tilde_1 = 0: no KL at t = 1, the decoder instead
            post_var = post_var.index_fill(0, first, 1.0)
        kl = normal_kl(self._posterior_mean(x0, xt, t), post_var, mean, log_var.exp()).sum(dims)
        if not len(first):
            return kl
        log_var = log_var.expand_as(mean)[first]
        nll = -self._decoder_log_prob(x0[first], mean[first], log_var).sum(dims)
        return kl.index_put((first,), nll)

    def _prior_kl(self, x0: Tensor) -> Tensor:
        """``KL(q(x_T | x_0) || N(0, I))`` per example."""
        T = torch.full((x0.shape[0],), self.num_steps, dtype=torch.long, device=x0.device)
        mean = self._coef("sqrt_alpha_bars", T, x0) * x0
        var = self._coef("sqrt_one_minus", T, x0) ** 2
        return normal_kl(mean, var, torch.zeros_like(x0), torch.ones_like(var)).sum(
            tuple(range(1, x0.dim()))
        )


def _buffers(schedule: NoiseSchedule, parameterization: str) -> dict[str, Tensor]:
    """Every per-step coefficient, built once in float64 from the schedule."""
    betas, alphas, abar = schedule.betas, schedule.alphas, schedule.alpha_bars
    T = schedule.num_steps
    prev = torch.cat([abar.new_ones(1), abar[:-1]])
    sa, so = abar.sqrt(), (1.0 - abar).sqrt()
    safe_so = torch.where(so > 0, so, 1.0)  # t = 0 is never used; keep it finite
    post_x0 = torch.where(so > 0, prev.sqrt() * betas / safe_so**2, 0.0)
    post_xt = torch.where(so > 0, alphas.sqrt() * (1.0 - prev) / safe_so**2, 0.0)
    # x0_hat = a x_t + b out and eps_hat = c x_t + d out for each parameterization
    a, b, c, d = {
        "eps": (1.0 / sa, -so / sa, torch.zeros_like(sa), torch.ones_like(sa)),
        "x0": (torch.zeros_like(sa), torch.ones_like(sa), 1.0 / safe_so, -sa / safe_so),
        "v": (sa, -so, so, sa),
    }[parameterization]
    post = schedule.posterior_variances
    small = post.clone()
    small[:2] = post[2] if T >= 2 else betas[1]
    large = betas.clone()
    large[0] = betas[1]
    return {
        "betas": betas.clone(),
        "alphas": alphas.clone(),
        "alpha_bars": abar.clone(),
        "posterior_variances": post.clone(),
        "sqrt_alphas": alphas.sqrt(),
        "sqrt_betas": betas.sqrt(),
        "sqrt_alpha_bars": sa,
        "sqrt_one_minus": so,
        "post_x0": post_x0,
        "post_xt": post_xt,
        "x0_from_xt": a,
        "x0_from_out": b,
        "eps_from_xt": c,
        "eps_from_out": d,
        "mean_from_xt": post_x0 * a + post_xt,
        "mean_from_out": post_x0 * b,
        "log_var_small": small.log(),
        "log_var_large": large.log(),
    }
