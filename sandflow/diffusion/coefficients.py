r"""Per-step Gaussian algebra of diffusion in ``q_``/``p_`` names: :class:`DiffusionCoefficients`.

Everything a training loss, the ELBO and a sampler need, as a small public
API (the names of improved-diffusion's ``gaussian_diffusion.py``):

* :meth:`~DiffusionCoefficients.q_sample`: the noised data :math:`x_t`;
* :meth:`~DiffusionCoefficients.q_posterior_mean_variance`:
  :math:`q(x_{t-1} \mid x_t, x_0)`;
* :meth:`~DiffusionCoefficients.p_output`: the network's prediction;
  :meth:`~DiffusionCoefficients.p_mean_variance` (and its two halves
  :meth:`~DiffusionCoefficients.p_mean`,
  :meth:`~DiffusionCoefficients.p_log_variance`):
  :math:`p_\theta(x_{t-1} \mid x_t)`;
* :meth:`~DiffusionCoefficients.vb_term`: the per-step bound term
  :math:`L_{t-1}`; :meth:`~DiffusionCoefficients.prior_kl`: :math:`L_T`.

The per-step coefficients are float64 buffers of length ``T + 1`` indexed by
``t`` (the conventions of :mod:`sandflow.diffusion`), read with
:meth:`~DiffusionCoefficients.extract`. :mod:`~sandflow.diffusion.elbo`,
:mod:`~sandflow.diffusion.losses` and :mod:`~sandflow.diffusion.sampling`
use nothing else, and neither need a user's own loss or sampler.
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

__all__ = ["DiffusionCoefficients", "Model"]

Model = Callable[[Tensor, Tensor], Tensor]
_PARAMETERIZATIONS = ("eps", "x0", "v")
_VARIANCES = ("posterior", "beta", "learned")
_DECODERS = ("gaussian", "discretized")
_LOG_2PI = math.log(2 * math.pi)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


class DiffusionCoefficients(nn.Module):
    r"""mu_theta(x_t, t) = a_t x_t + b_t model(x_t, t): one reverse step, linear in the prediction.

    For each parameterisation the predicted :math:`\hat x_0` and
    :math:`\hat\epsilon` are linear in :math:`x_t` and the network output,
    so the reverse mean

    .. math::
        \mu_\theta = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1 - \bar\alpha_t}\hat x_0
        + \frac{\sqrt{\alpha_t}(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t

    is too. Every coefficient below is a float64 buffer of length ``T + 1``
    indexed by ``t`` (non-persistent: the schedule is configuration), cast to
    the data's dtype on use by :meth:`extract`. The methods take a long
    tensor ``t`` of shape ``(batch,)`` in ``1..T`` (see
    :meth:`check_timesteps`) and data of shape ``(batch, *event)``. The
    arguments are those of :class:`~sandflow.diffusion.GaussianDiffusion`,
    which adds the distributions and the objectives.

    References:
        Denoising Diffusion Probabilistic Models (Ho et al., 2020),
        https://arxiv.org/abs/2006.11239, equations 7 and 11;
        Improved Denoising Diffusion Probabilistic Models (Nichol & Dhariwal, 2021),
        https://arxiv.org/abs/2102.09672.

    Example:
        >>> from sandflow.diffusion import GaussianDiffusion, NoiseSchedule
        >>> d = GaussianDiffusion(NoiseSchedule.linear(10))
        >>> x0, t = torch.zeros(2, 3), torch.tensor([1, 10])
        >>> xt = d.q_sample(x0, t, torch.randn(2, 3))
        >>> mean, log_variance = d.p_mean_variance(lambda x, s: torch.zeros_like(x), xt, t)
        >>> d.vb_term(x0, xt, t, mean, log_variance).shape
        torch.Size([2])
    """

    #: :math:`\beta_t`, ``betas[0] == 0``.
    betas: Tensor
    #: :math:`\alpha_t = 1 - \beta_t`.
    alphas: Tensor
    #: :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s`, ``alpha_bars[0] == 1``.
    alpha_bars: Tensor
    #: :math:`\bar\alpha_{t-1}`, ``alpha_bars_prev[0] == 1``.
    alpha_bars_prev: Tensor
    #: :math:`\tilde\beta_t`, the variance of :math:`q(x_{t-1} \mid x_t, x_0)`; zero at ``t = 1``.
    posterior_variances: Tensor
    #: :math:`\sqrt{\alpha_t}`.
    sqrt_alphas: Tensor
    #: :math:`\sqrt{\beta_t}`.
    sqrt_betas: Tensor
    #: :math:`\sqrt{\bar\alpha_t}`.
    sqrt_alpha_bars: Tensor
    #: :math:`\sqrt{1 - \bar\alpha_t}`.
    sqrt_one_minus_alpha_bars: Tensor
    #: :math:`\sqrt{\bar\alpha_{t-1}}\beta_t / (1 - \bar\alpha_t)`, the weight of ``x0`` in the
    #: posterior mean.
    posterior_mean_coef_x0: Tensor
    #: :math:`\sqrt{\alpha_t}(1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)`, the weight of ``xt``.
    posterior_mean_coef_xt: Tensor
    #: :math:`\hat x_0 = ` ``x0_from_xt * xt + x0_from_output * output`` (this parameterization).
    x0_from_xt: Tensor
    #: See ``x0_from_xt``.
    x0_from_output: Tensor
    #: :math:`\hat\epsilon = ` ``eps_from_xt * xt + eps_from_output * output``.
    eps_from_xt: Tensor
    #: See ``eps_from_xt``.
    eps_from_output: Tensor
    #: :math:`\mu_\theta = ` ``mean_from_xt * xt + mean_from_output * output``.
    mean_from_xt: Tensor
    #: See ``mean_from_xt``.
    mean_from_output: Tensor
    #: :math:`\log\tilde\beta_t`, clipped at ``t = 1`` to :math:`\log\tilde\beta_2`
    #: (:math:`\log\beta_1` when ``T = 1``): :math:`\log\sigma_t^2` for
    #: ``reverse_variance="posterior"``.
    posterior_log_variance_clipped: Tensor
    #: :math:`\log\beta_t` (index 0, unused, repeats ``t = 1``): :math:`\log\sigma_t^2` for
    #: ``reverse_variance="beta"``.
    log_betas: Tensor
    #: The timestep the network is called with at each ``t`` (the original ones after
    #: :meth:`~sandflow.diffusion.GaussianDiffusion.respace`), a long tensor.
    model_timesteps: Tensor

    def __init__(
        self,
        schedule: NoiseSchedule,
        parameterization: str = "eps",
        reverse_variance: str = "posterior",
        decoder: str = "gaussian",
        grid_points: int = 256,
        validate_args: bool | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        self.parameterization = _choice("parameterization", parameterization, _PARAMETERIZATIONS)
        self.reverse_variance = _choice("reverse_variance", reverse_variance, _VARIANCES)
        self.decoder = _choice("decoder", decoder, _DECODERS)
        if isinstance(grid_points, bool) or not isinstance(grid_points, int) or grid_points < 2:
            raise ValueError(f"grid_points must be an int >= 2, got {grid_points!r}")
        if validate_args not in (None, True, False):
            raise TypeError(f"validate_args must be None, True or False, got {validate_args!r}")
        self.grid_points = grid_points
        self._validate_args = validate_args
        self.schedule = schedule
        self.num_steps = schedule.num_steps
        for name, value in _coefficients(schedule, parameterization).items():
            self.register_buffer(name, value, persistent=False)
        self.register_buffer("model_timesteps", torch.arange(self.num_steps + 1), persistent=False)

    @property
    def validate_args(self) -> bool:
        """Whether inputs and model outputs are checked for NaN and infinity.

        The constructor's ``validate_args``; if that is ``None``, Pyro's
        global switch (``pyro.enable_validation``, on by default).
        """
        if self._validate_args is None:
            return dist.is_validation_enabled()
        return self._validate_args

    # -- inputs --------------------------------------------------------------
    def check_timesteps(self, t: int | Tensor, x: Tensor) -> Tensor:
        """Timesteps ``t`` (an int or a long tensor of shape ``(batch,)`` in ``1..T``) for ``x``.

        Returns:
            A long tensor of shape ``(batch,)`` on the buffers' device.
        """
        n, device = x.shape[0], self.betas.device
        t = torch.as_tensor(t, device=device)
        if torch.is_floating_point(t) or torch.is_complex(t) or t.dtype == torch.bool:
            raise TypeError(f"timesteps must be an int or a long tensor, got dtype {t.dtype}")
        if t.dim() == 0:
            t = t.expand(n)
        elif t.shape != (n,):
            raise ValueError(f"timesteps must have shape (batch,) = ({n},), got {tuple(t.shape)}")
        if t.numel():
            lo, hi = int(t.min()), int(t.max())
            if lo < 1 or hi > self.num_steps:
                raise ValueError(
                    f"timesteps must lie in 1..T = 1..{self.num_steps}, "
                    f"got values from {lo} to {hi}"
                )
        return t.long()

    def check_input(
        self, x: Tensor, model: Model | None = None, name: str = "x0", data: bool = True
    ) -> None:
        """Refuse input the diffusion or ``model`` cannot use, naming ``name`` and the fix.

        Checks that ``x`` is a floating tensor of shape ``(batch, *event)`` on
        the device of the buffers, in the dtype and on the device of the
        model's parameters (when ``model`` is an ``nn.Module`` that has some),
        within ``[-1, 1]`` for the discretised decoder if it is ``data``
        (``x_0``, not a noised ``x_t``), and, when :attr:`validate_args`, finite.

        Raises:
            TypeError: for a non-tensor, a non-floating dtype or a dtype other
                than the model's.
            ValueError: for a scalar, another device, values outside ``[-1, 1]``
                (discretised decoder) or NaN/inf values.
        """
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a tensor of shape (batch, *event), got {type(x)}")
        if not torch.is_floating_point(x):
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() == 0:
            raise ValueError(f"{name} must have shape (batch, *event), got a scalar")
        if x.device != self.betas.device:
            raise ValueError(
                f"{name} is on device {x.device}, but the diffusion's coefficients are on "
                f"{self.betas.device}: move both to one device with .to(device)"
            )
        param = _first_floating_parameter(model)
        if param is not None and param.dtype != x.dtype:
            raise TypeError(
                f"{name} has dtype {x.dtype}, but the model's parameters have dtype "
                f"{param.dtype}: convert the data (.to({param.dtype})) or the model "
                f"(model.to({x.dtype}))"
            )
        if param is not None and param.device != x.device:
            raise ValueError(
                f"{name} is on device {x.device}, but the model's parameters are on "
                f"{param.device}: move the model and the diffusion to one device"
            )
        if not x.numel():
            return
        if self.validate_args and not torch.isfinite(x).all():
            raise ValueError(
                f"{name} contains NaN or infinite values ({int((~torch.isfinite(x)).sum())} of "
                f"{x.numel()}); pass finite data (or validate_args=False to let NaN through)"
            )
        if data and self.decoder == "discretized" and (x.min() < -1.0 or x.max() > 1.0):
            raise ValueError(
                f"{name} must lie in [-1, 1] for decoder='discretized' (grid_points="
                f"{self.grid_points} values from -1 to 1), got values from {float(x.min()):g} "
                f"to {float(x.max()):g}; map grey levels k = 0..K-1 to 2 k / (K - 1) - 1"
            )

    def extract(self, values: Tensor, t: Tensor, x: Tensor) -> Tensor:
        """``values[t]`` in the dtype of ``x``, shaped to broadcast over the event dims of ``x``.

        Example:
            >>> d = sandflow.diffusion.GaussianDiffusion(sandflow.diffusion.NoiseSchedule.linear(5))
            >>> d.extract(d.betas, torch.tensor([1, 5]), torch.zeros(2, 3, 4)).shape
            torch.Size([2, 1, 1])
        """
        value = values[t].to(x.dtype)
        return value.view(*t.shape, *(1,) * (x.dim() - t.dim()))

    # -- the forward process q -------------------------------------------------
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        r"""x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise: a draw of q(x_t | x_0)."""
        return (
            self.extract(self.sqrt_alpha_bars, t, x0) * x0
            + self.extract(self.sqrt_one_minus_alpha_bars, t, x0) * noise
        )

    def q_posterior_mean_variance(self, x0: Tensor, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        r"""(mu_tilde, beta_tilde_t) of q(x_{t-1} | x_t, x_0), the variance broadcasting over x0.

        .. math::
            \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\beta_t}{1 - \bar\alpha_t} x_0
            + \frac{\sqrt{\alpha_t}(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t} x_t
        """
        mean = (
            self.extract(self.posterior_mean_coef_x0, t, x0) * x0
            + self.extract(self.posterior_mean_coef_xt, t, x0) * xt
        )
        return mean, self.extract(self.posterior_variances, t, x0)

    def prediction_target(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        r"""What the network should output for x_t = q_sample(x0, t, noise): eps, x0 or v.

        :math:`v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1 - \bar\alpha_t}\, x_0`.
        """
        if self.parameterization == "eps":
            return noise
        if self.parameterization == "x0":
            return x0
        return (
            self.extract(self.sqrt_alpha_bars, t, x0) * noise
            - self.extract(self.sqrt_one_minus_alpha_bars, t, x0) * x0
        )

    # -- the reverse process p -------------------------------------------------
    def p_output(self, model: Model, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor | None]:
        """``model(xt, model_timesteps[t])``, checked, and split for a learned variance.

        Returns:
            The prediction (``eps``, ``x0`` or ``v``, the shape of ``xt``) and,
            for ``reverse_variance="learned"``, the variance interpolation
            ``v`` (else ``None``).

        Raises:
            TypeError: if the model returns something other than a tensor.
            ValueError: if the output has the wrong shape or, when
                :attr:`validate_args`, holds NaN or infinite values.
        """
        learned = self.reverse_variance == "learned"
        if learned and xt.dim() < 2:
            raise ValueError(
                "reverse_variance='learned' needs data of shape (batch, channels, ...)"
            )
        shape = (xt.shape[0], 2 * xt.shape[1], *xt.shape[2:]) if learned else tuple(xt.shape)
        out = model(xt, self.model_timesteps[t])
        if not isinstance(out, Tensor):
            raise TypeError(
                f"model(xt, t) must return a tensor of shape {shape}, got {type(out).__name__}"
                + (" (return only the prediction)" if isinstance(out, tuple | list) else "")
            )
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
        if self.validate_args and out.numel():
            bad = ~torch.isfinite(out).reshape(len(out), -1).all(1)
            if bad.any():
                steps = sorted(set(self.model_timesteps[t[bad]].tolist()))
                raise ValueError(
                    f"model(xt, t) returned NaN or infinite values at t = {steps[:5]}"
                    f"{' ...' if len(steps) > 5 else ''}; check the network (a diverged "
                    "training run?), or pass validate_args=False to let NaN through"
                )
        return out.chunk(2, dim=1) if learned else (out, None)

    def predict_x0(self, xt: Tensor, t: Tensor, output: Tensor) -> Tensor:
        r"""x0_hat(x_t, output), e.g. (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t)."""
        return (
            self.extract(self.x0_from_xt, t, xt) * xt
            + self.extract(self.x0_from_output, t, xt) * output
        )

    def predict_eps(self, xt: Tensor, t: Tensor, output: Tensor) -> Tensor:
        r"""eps_hat(x_t, output), e.g. (x_t - sqrt(alpha_bar_t) x0_hat) / sqrt(1 - alpha_bar_t)."""
        return (
            self.extract(self.eps_from_xt, t, xt) * xt
            + self.extract(self.eps_from_output, t, xt) * output
        )

    def p_mean(self, xt: Tensor, t: Tensor, output: Tensor) -> Tensor:
        r"""mu_theta(x_t, t): the posterior mean at x0_hat, linear in x_t and the prediction."""
        return (
            self.extract(self.mean_from_xt, t, xt) * xt
            + self.extract(self.mean_from_output, t, xt) * output
        )

    def p_log_variance(self, xt: Tensor, t: Tensor, v: Tensor | None = None) -> Tensor:
        r"""Log sigma_t^2: fixed (broadcasting over the event) or interpolated by a learned ``v``.

        .. math::
            \log\sigma_t^2 = \tfrac{v + 1}{2}\log\beta_t + \tfrac{1 - v}{2}\log\tilde\beta_t
        """
        if v is None:
            small = self.reverse_variance == "posterior"
            return self.extract(
                self.posterior_log_variance_clipped if small else self.log_betas, t, xt
            )
        frac = (v + 1.0) / 2.0
        return frac * self.extract(self.log_betas, t, xt) + (1.0 - frac) * self.extract(
            self.posterior_log_variance_clipped, t, xt
        )

    def p_mean_variance(self, model: Model, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        r"""(mu_theta(x_t, t), log sigma_t^2) of p_theta(x_{t-1} | x_t), one network call."""
        output, v = self.p_output(model, xt, t)
        return self.p_mean(xt, t, output), self.p_log_variance(xt, t, v)

    def p_distribution(self, mean: Tensor, log_variance: Tensor, t: Tensor) -> Distribution:
        """Elementwise ``N(mean, exp(log_variance))``; the discretised decoder where ``t == 1``.

        ``t`` holds the batch dims of ``mean`` (its event dims are appended).
        """
        scale = (0.5 * log_variance).exp().expand_as(mean)
        normal = dist.Normal(mean, scale)
        if self.decoder == "gaussian":
            return normal
        decoder = DiscretizedNormal(mean, scale, self.grid_points)
        at_one = t.view(*t.shape, *(1,) * (mean.dim() - t.dim())) == 1
        return dist.MaskedMixture(at_one.expand_as(mean), normal, decoder)

    # -- terms of the bound ------------------------------------------------------
    def vb_term(
        self, x0: Tensor, xt: Tensor, t: Tensor, mean: Tensor, log_variance: Tensor
    ) -> Tensor:
        r"""L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)); -log p(x_0 | x_1) at t = 1.

        The per-step term of the bound, in nats per example (summed over the
        event), for the reverse step ``(mean, log_variance)`` of
        :meth:`p_mean_variance`.
        """
        dims = tuple(range(1, x0.dim()))
        post_mean, post_var = self.q_posterior_mean_variance(x0, xt, t)
        first = (t == 1).nonzero().flatten()
        if len(first):  # beta_tilde_1 = 0: no KL at t = 1, the decoder instead
            post_var = post_var.index_fill(0, first, 1.0)
        kl = normal_kl(post_mean, post_var, mean, log_variance.exp()).sum(dims)
        if not len(first):
            return kl
        log_variance = log_variance.expand_as(mean)[first]
        nll = -self._decoder_log_prob(x0[first], mean[first], log_variance).sum(dims)
        return kl.index_put((first,), nll)

    def prior_kl(self, x0: Tensor) -> Tensor:
        r"""L_T = KL(q(x_T | x_0) || N(0, I)), in nats per example."""
        T = torch.full((x0.shape[0],), self.num_steps, dtype=torch.long, device=x0.device)
        mean = self.extract(self.sqrt_alpha_bars, T, x0) * x0
        var = self.extract(self.sqrt_one_minus_alpha_bars, T, x0) ** 2
        return normal_kl(mean, var, torch.zeros_like(x0), torch.ones_like(var)).sum(
            tuple(range(1, x0.dim()))
        )

    def _decoder_log_prob(self, x0: Tensor, mean: Tensor, log_variance: Tensor) -> Tensor:
        """``log p(x_0 | x_1)``, elementwise."""
        if self.decoder == "discretized":
            scale = (0.5 * log_variance).exp()
            return discretized_normal_log_prob(x0, mean, scale, self.grid_points)
        return -0.5 * (log_variance + _LOG_2PI + (x0 - mean) ** 2 / log_variance.exp())


def _first_floating_parameter(model: object) -> Tensor | None:
    """The first floating-point parameter (or buffer) of an ``nn.Module``, else ``None``."""
    if not isinstance(model, nn.Module):
        return None
    for tensor in (*model.parameters(), *model.buffers()):
        if torch.is_floating_point(tensor):
            return tensor
    return None


def _coefficients(schedule: NoiseSchedule, parameterization: str) -> dict[str, Tensor]:
    """Every per-step coefficient, built once in float64 from the schedule."""
    betas, alphas, abar = schedule.betas, schedule.alphas, schedule.alpha_bars
    prev = schedule.alpha_bars_prev
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
    small[:2] = post[2] if schedule.num_steps >= 2 else betas[1]
    large = betas.clone()
    large[0] = betas[1]
    return {
        "betas": betas.clone(),
        "alphas": alphas.clone(),
        "alpha_bars": abar.clone(),
        "alpha_bars_prev": prev.clone(),
        "posterior_variances": post.clone(),
        "sqrt_alphas": alphas.sqrt(),
        "sqrt_betas": betas.sqrt(),
        "sqrt_alpha_bars": sa,
        "sqrt_one_minus_alpha_bars": so,
        "posterior_mean_coef_x0": post_x0,
        "posterior_mean_coef_xt": post_xt,
        "x0_from_xt": a,
        "x0_from_output": b,
        "eps_from_xt": c,
        "eps_from_output": d,
        "mean_from_xt": post_x0 * a + post_xt,
        "mean_from_output": post_x0 * b,
        "posterior_log_variance_clipped": small.log(),
        "log_betas": large.log(),
    }
