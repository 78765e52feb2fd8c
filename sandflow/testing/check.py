"""Property checks that a bijector is invertible and that its log-det is its Jacobian's."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import constraints

from sandflow.bijectors.actnorm import ActNorm
from sandflow.bijectors.base import Bijector

__all__ = ["autograd_log_det", "check_bijector", "perturb", "tolerances"]


def tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """``(rtol, atol)`` used by :func:`check_bijector` for a dtype."""
    if dtype == torch.float64:
        return 1e-6, 1e-6
    if dtype in (torch.float32, torch.complex64):
        return 2e-3, 2e-3
    return 5e-2, 5e-2


def autograd_log_det(bijector: Bijector, x: Tensor) -> Tensor:
    """``log|det J_f(x)|`` per batch entry, from the full Jacobian that autograd computes.

    Bijectors never mix batch entries, so the Jacobian of ``f(x).sum(batch)``
    with respect to ``x`` holds every entry's own ``D x D`` Jacobian.
    """
    event_dim = bijector.event_dim
    batch = x.shape[: x.dim() - event_dim]
    flat = x.detach().reshape(-1, *x.shape[x.dim() - event_dim :])

    def summed(inputs: Tensor) -> Tensor:
        return bijector(inputs).reshape(flat.shape[0], -1).sum(0)

    jacobian = torch.autograd.functional.jacobian(summed, flat, vectorize=True)
    jacobian = jacobian.reshape(jacobian.shape[0], flat.shape[0], -1).transpose(0, 1)
    return torch.linalg.slogdet(jacobian)[1].reshape(batch)


def _is_real(constraint: constraints.Constraint) -> bool:
    while isinstance(constraint, constraints.independent):
        constraint = constraint.base_constraint
    return constraint is constraints.real


def _assert_close(name: str, actual: Tensor, expected: Tensor, rtol: float, atol: float) -> None:
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{name}: shape {tuple(actual.shape)} differs from expected {tuple(expected.shape)}"
        )
    if not torch.isfinite(actual).all():
        raise AssertionError(f"{name}: non-finite values {actual.flatten()[:5].tolist()}")
    if not torch.allclose(actual, expected, rtol=rtol, atol=atol):
        error = (actual - expected).abs().max().item()
        raise AssertionError(f"{name}: max abs error {error:.3g} (rtol={rtol}, atol={atol})")


def check_bijector(
    bijector: Bijector,
    x: Tensor,
    *,
    y: Tensor | None = None,
    jacobian: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    r"""Assert that ``bijector`` is a correct bijection with a correct log-det at ``x``.

    Checks, with tolerances set by ``x.dtype`` (see :func:`tolerances`):

    1. shapes: ``f(x)`` has ``forward_shape(x.shape)``; the log-det has the
       batch shape ``x.shape[:x.dim() - event_dim]``; values are finite;
    2. round trips: :math:`f^{-1}(f(x)) = x` and :math:`f(f^{-1}(y)) = y`;
    3. the forward log-det equals :math:`\log|\det J_f(x)|` from the autograd
       Jacobian (``jacobian=False`` skips this for very large events);
    4. the inverse log-det at :math:`f(x)` is minus the forward log-det;
    5. the fused primitives agree with the derived torch ``Transform`` calls
       (``bij(x)``, ``bij.inv(y)``, ``bij.log_abs_det_jacobian(x, y)``).

    Args:
        bijector: the bijector under test (parameters away from the identity
            make a stronger test: see :func:`perturb`).
        x: inputs in the bijector's domain, with at least ``event_dim`` dims.
        y: outputs in the codomain for the second round trip; by default
            ``f(x)`` plus a small perturbation when the codomain is the reals.
        jacobian: compare the log-det with the autograd Jacobian.
        rtol: relative tolerance (default by dtype).
        atol: absolute tolerance (default by dtype).

    Raises:
        AssertionError: naming the failed check and the size of the error.

    Example:
        >>> from sandflow.bijectors import AffineCoupling
        >>> from sandflow.testing import check_bijector, perturb
        >>> layer = perturb(AffineCoupling(4, hidden=(8,)).double())
        >>> check_bijector(layer, torch.randn(3, 4, dtype=torch.float64))
    """
    default_rtol, default_atol = tolerances(x.dtype)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    event_dim = bijector.event_dim
    batch = x.shape[: x.dim() - event_dim]
    with torch.no_grad():
        fx, log_det = bijector.forward_and_log_det(x)
        expected_shape = torch.Size(bijector.forward_shape(x.shape))
        if fx.shape != expected_shape:
            raise AssertionError(
                f"forward shape: f(x) has shape {tuple(fx.shape)}, forward_shape says "
                f"{tuple(expected_shape)}"
            )
        if torch.Size(bijector.inverse_shape(fx.shape)) != x.shape:
            raise AssertionError("inverse_shape(forward_shape(shape)) differs from shape")
        if log_det.shape != batch:
            raise AssertionError(
                f"log-det shape {tuple(log_det.shape)} is not the batch shape {tuple(batch)}"
            )
        _assert_close("forward output", fx, fx.nan_to_num(), rtol, atol)
        x_back, inverse_log_det = bijector.inverse_and_log_det(fx)
        _assert_close("inverse(forward(x)) == x", x_back, x, rtol, atol)
        _assert_close("inverse log-det == -forward log-det", inverse_log_det, -log_det, rtol, atol)
        if y is None:
            y = fx + 0.1 * torch.randn_like(fx) if _is_real(bijector.codomain) else fx
        x_of_y = bijector.inverse_and_log_det(y)[0]
        _assert_close(
            "forward(inverse(y)) == y", bijector.forward_and_log_det(x_of_y)[0], y, rtol, atol
        )
        _assert_close("bij(x) == forward_and_log_det(x)[0]", bijector(x), fx, rtol, atol)
        _assert_close(
            "bij.inv(y) == inverse_and_log_det(y)[0]", bijector.inv(fx), x_back, rtol, atol
        )
        _assert_close(
            "log_abs_det_jacobian(x, y) == forward_and_log_det(x)[1]",
            bijector.log_abs_det_jacobian(x, fx),
            log_det,
            rtol,
            atol,
        )
    if jacobian:
        reference = autograd_log_det(bijector, x)
        scale = max(1.0, x[0].numel() ** 0.5) if x.dim() else 1.0
        _assert_close(
            "log-det == log|det J| (autograd)", log_det, reference, rtol * scale, atol * scale
        )


@torch.no_grad()
def perturb(
    module: nn.Module, scale: float = 0.2, generator: torch.Generator | None = None
) -> nn.Module:
    """Move every parameter away from its (often identity) initialisation; return the module.

    Adds Gaussian noise of standard deviation ``scale`` to each parameter and
    marks every :class:`~sandflow.bijectors.ActNorm` as initialised, so that a
    check exercises the general case rather than the identity.
    """
    for parameter in module.parameters():
        noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
        parameter.add_(scale * noise.to(parameter.device))
    for sub in module.modules():
        if isinstance(sub, ActNorm):
            sub.initialized.fill_(True)
    return module
