r"""Continuous normalizing flows: :class:`ContinuousFlow`, an ODE solved by torchdiffeq."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint

from sandflow.bijectors.base import Bijector
from sandflow.bijectors.checks import ShapeError, batch_shape_of

__all__ = ["ContinuousFlow"]

_ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
_FIXED = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams")
_TRACES = ("exact", "hutchinson")


class ContinuousFlow(Bijector):
    r"""y = x(t_1), dx/dt = v(x, t[, c]), x(t_0) = x: log|det J| = int tr(dv/dx) dt (FFJORD).

    The map from noise at ``t_span[0]`` to data at ``t_span[1]`` obtained by
    integrating the vector field, with the instantaneous change of variables

    .. math::
        \frac{d}{dt} \log\Big|\det \frac{\partial x(t)}{\partial x(t_0)}\Big|
        = \operatorname{tr} \frac{\partial v(x(t), t)}{\partial x(t)}

    integrated alongside the state, so one solve gives both :math:`y` and
    :math:`\log|\det J_f(x)|`; the inverse is the same solve from ``t_span[1]``
    back to ``t_span[0]``. The divergence is

    * ``trace="exact"``: :math:`\sum_i \partial v_i / \partial x_i`, from
      the ``D`` vector-Jacobian products :math:`e_i^\top \partial v / \partial x`
      of one evaluation, batched in one backward pass (``is_grads_batched``);
    * ``trace="hutchinson"``: :math:`\varepsilon^\top (\partial v / \partial x)
      \varepsilon` with one Rademacher draw :math:`\varepsilon` per solve, an
      unbiased estimate at the cost of one vector-Jacobian product.

    When gradients are on, the divergence is built with ``create_graph`` so
    that the log-det trains the field. An adaptive solver holds every entry
    of the batch (state and log-det) to ``atol + rtol |x|``; its step sizes
    are shared by the batch (one solve for all entries, which meet only in
    the step size, at the solver's tolerance) and kept out of autograd. ``adjoint=True``
    computes parameter gradients by the adjoint method
    (``torchdiffeq.odeint_adjoint`` with the field's parameters as
    ``adjoint_params``): memory constant in the number of solver steps, at
    the price of a second solve.

    The field is called as ``vector_field(x, t)`` (``vector_field(x, t,
    context)`` for a conditional one, whose ``context_features`` attribute
    gives the context size) with ``x`` of shape ``(N, *event_shape)``, every
    batch dimension flattened into ``N``, ``t`` a scalar tensor, and the
    context of shape ``(N, context_features)``. It must treat rows
    independently (no batch normalisation).

    Args:
        vector_field: the module :math:`v`.
        event_shape: shape of one event; ``event_dim = len(event_shape)``.
        t_span: ``(t_0, t_1)``, noise time and data time (either order).
        trace: ``"exact"`` or ``"hutchinson"``.
        solver: a torchdiffeq method: adaptive (``"dopri5"``, ``"dopri8"``,
            ``"bosh3"``, ``"fehlberg2"``, ``"adaptive_heun"``) or fixed-step
            (``"euler"``, ``"midpoint"``, ``"rk4"``, ...; these need
            ``options={"step_size": h}``).
        atol: absolute tolerance of an adaptive solver.
        rtol: relative tolerance of an adaptive solver.
        adjoint: gradients by the adjoint method.
        options: further torchdiffeq solver options.

    References:
        Neural Ordinary Differential Equations (Chen et al., 2018),
        https://arxiv.org/abs/1806.07366;
        FFJORD: Free-form Continuous Dynamics for Scalable Reversible
        Generative Models (Grathwohl et al., 2019), https://arxiv.org/abs/1810.01367.

    Example:
        >>> from sandflow.nn import MLPVectorField
        >>> flow = ContinuousFlow(MLPVectorField(2, hidden=(16,)), event_shape=(2,))
        >>> y, log_det = flow.forward_and_log_det(torch.randn(5, 2))
        >>> y.shape, log_det.shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(
        self,
        vector_field: nn.Module | Callable[..., Tensor],
        *,
        event_shape: Sequence[int],
        t_span: tuple[float, float] = (0.0, 1.0),
        trace: str = "exact",
        solver: str = "dopri5",
        atol: float = 1e-5,
        rtol: float = 1e-5,
        adjoint: bool = False,
        options: dict | None = None,
    ) -> None:
        event_shape = torch.Size(event_shape)
        context = getattr(vector_field, "context_features", 0)
        super().__init__(event_dim=len(event_shape), context_features=context)
        if trace not in _TRACES:
            raise ValueError(f"trace must be 'exact' or 'hutchinson', got {trace!r}")
        if solver not in _ADAPTIVE + _FIXED:
            raise ValueError(
                f"solver must be a torchdiffeq method, one of {', '.join(_ADAPTIVE + _FIXED)}; "
                f"got {solver!r}"
            )
        options = dict(options or {})
        if solver in _FIXED and "step_size" not in options and "grid_constructor" not in options:
            raise ValueError(
                f"solver={solver!r} takes fixed steps: pass options={{'step_size': h}} "
                "(one step over the whole t_span otherwise)"
            )
        if not (atol > 0 and rtol > 0):
            raise ValueError(f"atol and rtol must be positive, got atol={atol}, rtol={rtol}")
        t0, t1 = (float(t) for t in t_span)
        if not (math.isfinite(t0) and math.isfinite(t1)) or t0 == t1:
            raise ValueError(f"t_span must be two distinct finite times, got {tuple(t_span)}")
        self.vector_field = vector_field
        self.event_shape = event_shape
        self.t_span = (t0, t1)
        self.trace, self.solver, self.atol, self.rtol = trace, solver, atol, rtol
        self.adjoint, self.options = adjoint, options

    def forward_and_log_det(
        self, x: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self._solve(x, context, self.t_span)

    def inverse_and_log_det(
        self, y: Tensor, context: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return self._solve(y, context, self.t_span[::-1])

    def _solve(
        self, x: Tensor, context: Tensor | None, span: tuple[float, float]
    ) -> tuple[Tensor, Tensor]:
        """Integrate state and log-det from ``span[0]`` to ``span[1]``."""
        batch = batch_shape_of(x, self.event_dim, "ContinuousFlow")
        if x.shape[len(batch) :] != self.event_shape:
            raise ShapeError(
                f"ContinuousFlow was built for events of shape {tuple(self.event_shape)}, "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        context = self._context_for(x, context)
        flat = x.reshape(-1, *self.event_shape)
        if context is not None:
            context = context.reshape(-1, self.context_features)
        log_det = flat.new_zeros(flat.shape[0])
        if flat.shape[0] == 0:
            return x, log_det.reshape(batch)
        noise = None
        if self.trace == "hutchinson":
            noise = torch.randint_like(flat, 2).mul_(2).sub_(1)
        dynamics = _Dynamics(self.vector_field, context, noise)
        times = torch.tensor(span, dtype=x.dtype, device=x.device)
        options = self.options
        if self.solver in _ADAPTIVE and "norm" not in options:
            options = {**options, "norm": _step_norm}
        solve = {"rtol": self.rtol, "atol": self.atol, "method": self.solver, "options": options}
        if self.adjoint:
            params = tuple(self.vector_field.parameters())
            if context is not None and context.requires_grad:
                params += (context,)
            adjoint_options = {"norm": "seminorm"} if self.solver in _ADAPTIVE else None
            ys, log_dets = odeint_adjoint(
                dynamics,
                (flat, log_det),
                times,
                adjoint_params=params,
                adjoint_options=adjoint_options,
                **solve,
            )
        else:
            ys, log_dets = odeint(dynamics, (flat, log_det), times, **solve)
        return ys[-1].reshape(x.shape), log_dets[-1].reshape(batch)

    def extra_repr(self) -> str:
        return (
            f"event_shape={tuple(self.event_shape)}, t_span={self.t_span}, trace={self.trace!r}, "
            f"solver={self.solver!r}, atol={self.atol}, rtol={self.rtol}, adjoint={self.adjoint}"
            + (f", context={self.context_features}" if self.context_features else "")
        )


def _step_norm(state: tuple[Tensor, ...]) -> Tensor:
    """The error norm that sets the step size: the largest entry, outside autograd.

    The maximum (not torchdiffeq's default root mean square) holds every
    entry of the batch to the tolerance, as if it were solved alone. The step
    size is the solver's choice, not part of the map: without the detach,
    gradients would flow through it from every batch entry to every other.
    """
    return torch.stack([s.detach().abs().max() for s in state]).max()


class _Dynamics:
    """The augmented ODE ``(dx/dt, d log|det|/dt) = (v(x, t), tr dv/dx)`` of one solve."""

    def __init__(
        self, field: Callable[..., Tensor], context: Tensor | None, noise: Tensor | None
    ) -> None:
        self.field, self.context, self.noise = field, context, noise
        self.basis: Tensor | None = None

    def _velocity(self, x: Tensor, t: Tensor, context: Tensor | None) -> Tensor:
        return self.field(x, t) if context is None else self.field(x, t, context)

    def __call__(self, t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x = state[0]
        create_graph = torch.is_grad_enabled()  # training, or the adjoint's backward solve
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_()
            if self.noise is None:
                v, div = self._exact(x, t, create_graph)
            else:
                v = self._velocity(x, t, self.context)
                (vjp,) = torch.autograd.grad(v, x, self.noise, create_graph=create_graph)
                div = (vjp * self.noise).flatten(1).sum(-1)
        if not create_graph:
            v, div = v.detach(), div.detach()
        return v, div

    def _exact(self, x: Tensor, t: Tensor, create_graph: bool) -> tuple[Tensor, Tensor]:
        """``v`` and ``tr dv/dx``: the ``D`` vector-Jacobian products ``e_i^T dv/dx``, vmapped."""
        n, dims = x.shape[0], x[0].numel()
        if self.basis is None or self.basis.shape[1:] != x.shape:
            eye = torch.eye(dims, dtype=x.dtype, device=x.device)
            self.basis = eye.view(dims, 1, *x.shape[1:]).expand(dims, *x.shape)
        v = self._velocity(x, t, self.context)
        (rows,) = torch.autograd.grad(
            v, x, self.basis, create_graph=create_graph, is_grads_batched=True
        )
        return v, rows.reshape(dims, n, dims).diagonal(dim1=0, dim2=2).sum(-1)
