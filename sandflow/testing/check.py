r"""Property checks for any :class:`torch.distributions.Transform`: one named verdict per property.

The kit calls a transform the way a distribution does, through its fused
primitives when it has them (sandflow's ``forward_and_log_det`` /
``inverse_and_log_det``, zuko's ``call_and_ladj``) and through torch's
``t(x)``, ``t.inv(y)``, ``t.log_abs_det_jacobian(x, y)`` otherwise. Every call
gets a fresh tensor (a clone), so an identity-keyed cache (torch's and Pyro's
``cache_size=1``) can never answer for the transform: an inverse that only
exists in a cache is reported as "no inverse".
"""

from __future__ import annotations

import copy
import functools
import io
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Transform, biject_to, constraints

from sandflow.bijectors.actnorm import ActNorm
from sandflow.testing.jacobian import jacobian
from sandflow.testing.report import CheckResult, Report

__all__ = [
    "CHECKS",
    "autograd_log_det",
    "check_bijector",
    "domain_inputs",
    "inspect_bijector",
    "perturb",
    "tolerances",
]

#: Every check of the kit, in the order it runs: name -> what it asserts.
CHECKS: dict[str, str] = {
    "shapes": "forward_shape, inverse_shape, log-det of the batch shape, finite values",
    "derived_calls": "fused primitives == t(x), t.inv(y), t.log_abs_det_jacobian(x, y)",
    "round_trip_x": "inverse(forward(x)) == x",
    "round_trip_y": "forward(inverse(y)) == y",
    "log_det": "log-det == log|det J| (exact Jacobian)",
    "inverse_log_det": "inverse log-det == -forward log-det",
    "batch_independence": "no batch entry depends on another",
    "triangular": "Jacobian triangular up to a permutation (claimed)",
    "gradients": "every parameter gets a finite, nonzero gradient",
    "state_dict": "state_dict through torch.save/torch.load(weights_only=True) reproduces outputs",
    "pyro_module": "every parameter moves under pyro.infer.SVI with pyro.module",
    "dtype": "the float64 copy agrees with the float32 copy",
    "device": "parameters, buffers and outputs on the input's device",
    "compile": "torch.compile gives the eager outputs (compile=True)",
}


def tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """``(rtol, atol)`` used by the kit for a dtype."""
    if dtype == torch.float64:
        return 1e-6, 1e-6
    if dtype in (torch.float32, torch.complex64):
        return 2e-3, 2e-3
    return 5e-2, 5e-2


class _Failed(Exception):
    """A check's verdict: failed, with the measured error and the tolerance."""

    def __init__(self, detail: str, error: float | None = None, tol: float | None = None) -> None:
        super().__init__(detail)
        self.detail, self.error, self.tolerance = detail, error, tol


class _Skipped(Exception):
    """A check that does not apply; the message says why."""


@dataclass(frozen=True)
class _Measured:
    error: float | None = None
    tolerance: float | None = None
    detail: str = ""


def _compare(what: str, actual: Tensor, expected: Tensor, rtol: float, atol: float) -> _Measured:
    """Fail unless ``|actual - expected| <= atol + rtol |expected|`` everywhere."""
    if actual.shape != expected.shape:
        raise _Failed(f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if not torch.isfinite(actual).all():
        raise _Failed(f"{what}: non-finite values {actual[~torch.isfinite(actual)][:3].tolist()}")
    if actual.numel() == 0:
        return _Measured(0.0, atol)
    diff = (actual.detach() - expected.detach()).abs().double()
    allowed = atol + rtol * expected.detach().abs().double()
    worst = torch.argmax(diff - allowed)
    error, tol = diff.max().item(), allowed.flatten()[worst].item()
    if (diff > allowed).any():
        raise _Failed(f"{what}: max abs error {error:.3g}", error, tol)
    return _Measured(error, tol)


def _worst(*measured: _Measured) -> _Measured:
    return max(measured, key=lambda m: -1.0 if m.error is None else m.error)


# -- what is under test ---------------------------------------------------------------
@dataclass(frozen=True)
class _Subject:
    """A transform, or what builds one: a conditional transform with its context, a module."""

    obj: Any
    context: Tensor | None = None

    @property
    def module(self) -> nn.Module | None:
        return self.obj if isinstance(self.obj, nn.Module) else None

    def build(self) -> Transform:
        obj, context = self.obj, self.context
        if context is not None and hasattr(obj, "condition"):
            transform = obj.condition(context)
        elif isinstance(obj, Transform):
            transform = obj
        elif hasattr(obj, "condition"):
            raise TypeError(f"{type(obj).__name__} is conditional: pass context=")
        elif isinstance(obj, nn.Module) and callable(obj):  # a module that builds a transform
            transform = obj() if context is None else obj(context)
        else:
            transform = None
        if not isinstance(transform, Transform):
            raise TypeError(
                "transform must be a torch.distributions.Transform, a conditional transform "
                f"with context=, or a module returning one; got {type(obj).__name__}"
            )
        return transform

    def copy(self, dtype: torch.dtype | None = None) -> _Subject:
        obj = copy.deepcopy(self.obj, memo=_detached_intermediates(self.obj))
        context = self.context
        if dtype is not None:
            obj = obj.to(dtype)
            context = None if context is None else context.to(dtype)
        return _Subject(obj, context)


def _detached_intermediates(obj: object) -> dict[int, Tensor]:
    """A deepcopy memo that detaches the non-leaf tensors a transform keeps in its caches."""
    memo: dict[int, Tensor] = {}
    pending, seen = [obj], set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Tensor):
            if item.grad_fn is not None:
                memo[id(item)] = item.detach()
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        elif isinstance(item, nn.Module):
            pending.extend(item.children())
            pending.extend(vars(item).values())
        elif isinstance(item, Transform):
            pending.extend(vars(item).values())
    return memo


def _generic(method: Callable | None) -> bool:
    """True for zuko's generic ``Transform.call_and_ladj`` (patched onto torch's class)."""
    return method is None or getattr(Transform, "call_and_ladj", None) is method


def _broadcast(log_det: Tensor, batch: torch.Size) -> Tensor:
    """A log-det that broadcasts to the batch (torch and Pyro accept a constant one), expanded."""
    try:
        if log_det.shape != batch and torch.broadcast_shapes(log_det.shape, batch) == batch:
            return log_det.expand(batch)
    except RuntimeError:
        pass
    return log_det


class _Calls:
    """How the kit calls one transform: fused primitives when present, never through a cache."""

    def __init__(self, transform: Transform) -> None:
        self.t = transform
        self.sandflow = hasattr(transform, "forward_and_log_det") and hasattr(
            transform, "inverse_and_log_det"
        )
        self.zuko = not _generic(getattr(type(transform), "call_and_ladj", None))

    @property
    def fused(self) -> bool:
        return self.sandflow or self.zuko

    @property
    def event_dim(self) -> int:
        return self.t.domain.event_dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.clone()
        if self.sandflow:
            return self.t.forward_and_log_det(x)
        if self.zuko:
            y, log_det = self.t.call_and_ladj(x)
        else:
            y = self.t(x)
            log_det = self.t.log_abs_det_jacobian(x, y)
        return y, _broadcast(log_det, x.shape[: x.dim() - self.event_dim])

    def forward_value(self, x: Tensor) -> Tensor:
        return self.t.forward_and_log_det(x)[0] if self.sandflow else self.t(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = y.clone()
        if self.sandflow:
            return self.t.inverse_and_log_det(y)
        inv = self.t.inv
        if not _generic(getattr(type(inv), "call_and_ladj", None)):
            x, log_det = inv.call_and_ladj(y)
        else:
            x = inv(y)
            log_det = inv.log_abs_det_jacobian(y, x)
        return x, _broadcast(log_det, y.shape[: y.dim() - self.t.codomain.event_dim])


# -- one run of the kit ---------------------------------------------------------------
@dataclass(frozen=True)
class _Options:
    inverse: bool
    jacobian: bool
    jacobian_max_size: int
    triangular: bool
    compile: bool
    rtol: float
    atol: float
    factory: Callable[[], Any] | None


class _Run:
    """Shared state of the checks on one transform and one input; computed lazily, once."""

    def __init__(self, subject: _Subject, x: Tensor, y: Tensor | None, options: _Options) -> None:
        self.subject, self.x, self.y_given, self.options = subject, x.detach(), y, options
        self.calls = _Calls(subject.build())
        self.event_dim = self.calls.event_dim
        if x.dim() < self.event_dim:
            raise ValueError(
                f"x must have at least event_dim={self.event_dim} dims, got shape {tuple(x.shape)}"
            )
        self.batch = x.shape[: x.dim() - self.event_dim]
        self.event_size = math.prod(x.shape[x.dim() - self.event_dim :])

    def compare(self, what: str, actual: Tensor, expected: Tensor, scale: float = 1.0) -> _Measured:
        return _compare(
            what, actual, expected, self.options.rtol * scale, self.options.atol * scale
        )

    @functools.cached_property
    def forward(self) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return self.calls.forward(self.x)

    def need_inverse(self) -> None:
        if not self.options.inverse:
            raise _Skipped("inverse=False: a forward-only transform")
        if isinstance(self.inverse, Exception):
            error = self.inverse
            raise _Failed(
                f"no inverse ({type(error).__name__}: {error}); pass inverse=False to check "
                "the forward map only"
            )

    @functools.cached_property
    def inverse(self) -> tuple[Tensor, Tensor] | Exception:
        try:
            with torch.no_grad():
                return self.calls.inverse(self.forward[0])
        except (NotImplementedError, KeyError, RuntimeError, ValueError, AttributeError) as error:
            return error

    @functools.cached_property
    def jacobian(self) -> Tensor:
        if not self.options.jacobian:
            raise _Skipped("jacobian=False")
        if self.event_size > self.options.jacobian_max_size:
            raise _Skipped(
                f"event of {self.event_size} values > jacobian_max_size="
                f"{self.options.jacobian_max_size}"
            )
        with torch.no_grad():
            return jacobian(self.calls.forward_value, self.x, self.event_dim)

    def module(self) -> nn.Module:
        module = self.subject.module
        if module is None:
            raise _Skipped("not an nn.Module: no parameters or state")
        return module

    def parameters(self) -> list[tuple[str, nn.Parameter]]:
        named = [(n, p) for n, p in self.module().named_parameters() if p.requires_grad]
        if not named:
            raise _Skipped("no trainable parameters")
        return named

    def weights(self, like: Tensor, seed: int) -> Tensor:
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(like.shape, generator=generator, dtype=torch.float64)
        return noise.to(dtype=like.dtype, device=like.device)

    def loss(self, calls: _Calls, x: Tensor) -> Tensor:
        """A scalar that every parameter of a bijection reaches: weighted outputs and log-dets."""
        y, log_det = calls.forward(x)
        return (y * self.weights(y, 1)).sum() + log_det.sum()


def _check_shapes(run: _Run) -> _Measured:
    y, log_det = run.forward
    t = run.calls.t
    problems = []
    expected = torch.Size(t.forward_shape(run.x.shape))
    if y.shape != expected:
        problems.append(f"f(x) has shape {tuple(y.shape)}, forward_shape says {tuple(expected)}")
    if torch.Size(t.inverse_shape(y.shape)) != run.x.shape:
        problems.append(
            f"inverse_shape{tuple(y.shape)} = {tuple(t.inverse_shape(y.shape))}, "
            f"not the input shape {tuple(run.x.shape)}"
        )
    if log_det.shape != run.batch:
        problems.append(
            f"log-det shape {tuple(log_det.shape)} is not the batch shape {tuple(run.batch)}"
        )
    for name, value in (("f(x)", y), ("log-det", log_det)):
        if not torch.isfinite(value).all():
            problems.append(f"{name} has non-finite values")
    if problems:
        raise _Failed("; ".join(problems))
    return _Measured(detail=f"event_dim={run.event_dim}, batch {tuple(run.batch)}")


def _check_derived_calls(run: _Run) -> _Measured:
    calls = run.calls
    if not calls.fused:
        raise _Skipped("no fused primitives: the torch calls are the primitives")
    y, log_det = run.forward
    t, x = calls.t, run.x.clone()
    with torch.no_grad():
        y_call = t(x)
        measured = [
            run.compare("t(x) == fused forward", y_call, y),
            run.compare(
                "log_abs_det_jacobian == fused log-det", t.log_abs_det_jacobian(x, y_call), log_det
            ),
        ]
        if run.options.inverse and not isinstance(run.inverse, Exception):
            measured.append(
                run.compare("t.inv(y) == fused inverse", t.inv(y.clone()), run.inverse[0])
            )
    return _worst(*measured)


def _check_round_trip_x(run: _Run) -> _Measured:
    run.need_inverse()
    return run.compare("inverse(forward(x)) == x", run.inverse[0], run.x)


def _codomain_point(run: _Run) -> Tensor:
    """A fresh point of the image: ``f(x')``, ``x'`` moved from ``x`` by 0.1 in unconstrained space.

    Moving ``f(x)`` itself would trust the declared codomain, which can be
    wider than the image (torch's ``ComposeTransform`` reports its last part's).
    """
    if run.y_given is not None:
        return run.y_given
    try:
        to_domain = biject_to(run.calls.t.domain)
    except NotImplementedError:  # no bijection onto the domain: f(x), computed afresh
        to_domain = None
    with torch.no_grad():
        if to_domain is None:
            return run.calls.forward(run.x)[0]
        u = to_domain.inv(run.x)
        return run.calls.forward(to_domain(u + 0.1 * run.weights(u, 2)))[0]


def _check_round_trip_y(run: _Run) -> _Measured:
    run.need_inverse()
    y = _codomain_point(run)
    with torch.no_grad():
        x = run.calls.inverse(y)[0]
        return run.compare("forward(inverse(y)) == y", run.calls.forward(x)[0], y)


def _check_log_det(run: _Run) -> _Measured:
    jac = run.jacobian
    if jac.shape[-1] != jac.shape[-2]:
        raise _Skipped(
            f"the Jacobian is not square ({jac.shape[-1]} values in, {jac.shape[-2]} out): "
            "the log-det is of a parametrisation, not of J"
        )
    reference = torch.linalg.slogdet(jac.double())[1].to(run.x.dtype)
    measured = run.compare(
        "log-det == log|det J|", run.forward[1], reference, scale=max(1.0, run.event_size**0.5)
    )
    return replace(measured, detail=f"jacfwd over {jac.shape[-1]} event values, slogdet")


def _check_inverse_log_det(run: _Run) -> _Measured:
    run.need_inverse()
    return run.compare("inverse log-det == -forward log-det", run.inverse[1], -run.forward[1])


def _check_batch_independence(run: _Run) -> _Measured:
    size = math.prod(run.batch)
    if size < 2:
        raise _Skipped("one batch entry")
    directions = {"forward": (run.calls.forward, run.x)}
    if run.options.inverse and not isinstance(run.inverse, Exception):
        directions["inverse"] = (run.calls.inverse, run.forward[0])
    leak, inside, leaking = 0.0, 0.0, []
    for direction, (call, point) in directions.items():
        out, inn = _leak(run, call, point)
        leak, inside = max(leak, out), max(inside, inn)
        if out > torch.finfo(run.x.dtype).eps * inn:
            leaking.append(direction)
    tol = torch.finfo(run.x.dtype).eps * inside
    if leaking:
        raise _Failed(f"{' and '.join(leaking)}: entries depend on other entries", leak, tol)
    return _Measured(leak, tol, f"{size} entries, {' and '.join(directions)}, gradient masks")


def _leak(run: _Run, call: Callable, point: Tensor) -> tuple[float, float]:
    """Largest gradient of the outputs of some batch entries with respect to other entries."""
    size = math.prod(run.batch)
    index = torch.arange(size, device=point.device).reshape(run.batch)
    leak, inside = 0.0, 0.0
    with torch.enable_grad():
        inputs = point.clone().requires_grad_(True)
        out, log_det = call(inputs)
        if out.shape[: len(run.batch)] != run.batch:
            raise _Failed(f"output of shape {tuple(out.shape)} lost the batch {tuple(run.batch)}")
        for bit in range(max(1, math.ceil(math.log2(size)))):
            for side in (0, 1):
                chosen = ((index >> bit) & 1) == side
                mask = chosen.reshape(*run.batch, *([1] * (out.dim() - len(run.batch))))
                loss = (out * run.weights(out, 3) * mask).sum()
                if log_det.shape == run.batch:
                    loss = loss + (log_det * chosen).sum()
                (grad,) = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
                if grad is None:
                    continue
                grad = grad.abs().reshape(*run.batch, -1).amax(-1)
                leak = max(leak, grad[~chosen].max().item() if (~chosen).any() else 0.0)
                inside = max(inside, grad[chosen].max().item())
    return leak, inside


def _acyclic(depends: Tensor) -> bool:
    """True if ``depends[i, j]`` (output i reads input j, i != j) admits a topological order."""
    remaining = torch.ones(depends.shape[0], dtype=torch.bool)
    while remaining.any():
        free = remaining & ~(depends[:, remaining].any(-1))
        if not free.any():
            return False
        remaining &= ~free
    return True


def _check_triangular(run: _Run) -> _Measured:
    if not run.options.triangular:
        raise _Skipped("no triangular claim (triangular=True)")
    jac = run.jacobian
    if jac.shape[-1] != jac.shape[-2]:
        raise _Failed(f"a {jac.shape[-2]}x{jac.shape[-1]} Jacobian is not triangular")
    magnitude = jac.abs().reshape(-1, *jac.shape[-2:]).amax(0)
    depends = magnitude > run.options.atol * 1e-3 * magnitude.max()
    depends.fill_diagonal_(False)
    if not _acyclic(depends):
        raise _Failed(
            "the dependency pattern of the Jacobian has a cycle: no order makes it triangular"
        )
    return _Measured(detail=f"{int(depends.sum())} off-diagonal dependencies, acyclic")


def _check_gradients(run: _Run) -> _Measured:
    named = run.parameters()
    with torch.enable_grad():
        calls = _Calls(run.subject.build())
        loss = run.loss(calls, run.x)
        if run.options.inverse and not isinstance(run.inverse, Exception):
            x, log_det = calls.inverse(run.forward[0])
            loss = loss + (x * run.weights(x, 4)).sum() + log_det.sum()
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    missing = [n for (n, _), g in zip(named, grads, strict=True) if g is None or not g.any()]
    broken = [
        n
        for (n, _), g in zip(named, grads, strict=True)
        if g is not None and not g.isfinite().all()
    ]
    if missing or broken:
        parts = [f"no gradient reaches {missing}"] if missing else []
        parts += [f"non-finite gradient in {broken}"] if broken else []
        raise _Failed("; ".join(parts))
    return _Measured(detail=f"{len(named)} parameter tensors")


def _check_state_dict(run: _Run) -> _Measured:
    module = run.module()
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    if run.options.factory is not None:
        fresh = _Subject(run.options.factory(), run.subject.context)
        how = "loaded into a fresh instance"
    else:
        fresh = run.subject.copy()
        perturb(fresh.module, scale=0.5)
        how = "loaded into a perturbed copy"
    fresh.module.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        y, log_det = _Calls(fresh.build()).forward(run.x)
    rtol, atol = run.options.rtol * 1e-2, run.options.atol * 1e-2
    measured = _worst(
        _compare("outputs after loading", y, run.forward[0], rtol, atol),
        _compare("log-det after loading", log_det, run.forward[1], rtol, atol),
    )
    return replace(measured, detail=how)


def _check_pyro_module(run: _Run) -> _Measured:
    import pyro
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam

    run.parameters()
    subject = run.subject.copy()
    before = {n: p.detach().clone() for n, p in subject.module.named_parameters()}

    def model() -> None:
        pyro.module("kit", subject.module)
        pyro.factor("loss", -run.loss(_Calls(subject.build()), run.x))

    with pyro.get_param_store().scope():
        svi = SVI(model, lambda: None, Adam({"lr": 1e-2}), Trace_ELBO())
        for _ in range(2):
            svi.step()
    after = dict(subject.module.named_parameters())
    frozen = [n for n, p in before.items() if after[n].requires_grad and torch.equal(after[n], p)]
    if frozen:
        raise _Failed(
            f"parameters {frozen} did not move in 2 SVI steps: Pyro's param store trains a copy "
            "(a non-contiguous or re-created tensor?)"
        )
    return _Measured(detail=f"{len(before)} parameter tensors moved")


def _check_dtype(run: _Run) -> _Measured:
    run.module()
    if not run.x.is_floating_point() or run.x.dtype not in (torch.float32, torch.float64):
        raise _Skipped(f"input dtype {run.x.dtype}")
    outputs = {}
    for dtype in (torch.float32, torch.float64):
        subject = run.subject.copy(dtype)
        with torch.no_grad():
            outputs[dtype] = _Calls(subject.build()).forward(run.x.to(dtype))
    rtol, atol = tolerances(torch.float32)
    scale = max(1.0, run.event_size**0.5)
    (y32, l32), (y64, l64) = outputs[torch.float32], outputs[torch.float64]
    if y64.dtype != torch.float64:
        raise _Failed(f"the float64 copy returns {y64.dtype}")
    return _worst(
        _compare("float32 outputs vs float64", y32.double(), y64, rtol, atol),
        _compare("float32 log-det vs float64", l32.double(), l64, rtol * scale, atol * scale),
    )


def _tensors(obj: object, depth: int = 0) -> Iterator[tuple[str, Tensor]]:
    """Every tensor a transform holds: parameters, buffers, plain tensor attributes, parts."""
    if depth > 6:
        return
    if isinstance(obj, nn.Module):
        yield from obj.named_parameters()
        yield from obj.named_buffers()
        for name, sub in obj.named_modules():
            for key, value in vars(sub).items():
                if isinstance(value, Tensor) and not key.startswith("_cached"):
                    yield f"{name}.{key}".lstrip("."), value
        return
    if isinstance(obj, Tensor):
        yield "", obj
    elif isinstance(obj, (list, tuple)):
        for i, part in enumerate(obj):
            yield from ((f"{i}.{n}", t) for n, t in _tensors(part, depth + 1))
    elif isinstance(obj, Transform):
        for key, value in vars(obj).items():
            if key.startswith("_cached") or key == "_inv":
                continue
            yield from ((f"{key}.{n}".rstrip("."), t) for n, t in _tensors(value, depth + 1))


def _check_device(run: _Run) -> _Measured:
    device = run.x.device
    wrong = [n for n, t in _tensors(run.subject.obj) if t.device != device]
    wrong += [n for n, t in _tensors(run.calls.t) if t.device != device and n not in wrong]
    if run.subject.context is not None and run.subject.context.device != device:
        wrong.append("context")
    outputs = {"f(x)": run.forward[0], "log-det": run.forward[1]}
    if run.options.inverse and not isinstance(run.inverse, Exception):
        outputs["inverse(y)"] = run.inverse[0]
    wrong += [f"{n} (output)" for n, t in outputs.items() if t.device != device]
    if wrong:
        raise _Failed(f"not on the input's device {device}: {sorted(set(wrong))[:8]}")
    return _Measured(detail=f"all on {device}")


def _check_compile(run: _Run) -> _Measured:
    if not run.options.compile:
        raise _Skipped("not requested (compile=True)")
    calls = run.calls
    compiled = torch.compile(calls.forward, dynamic=False)
    with torch.no_grad():
        y, log_det = compiled(run.x)
    return _worst(
        run.compare("compiled forward", y, run.forward[0]),
        run.compare("compiled log-det", log_det, run.forward[1]),
    )


_IMPLEMENTATIONS: dict[str, Callable[[_Run], _Measured]] = {
    "shapes": _check_shapes,
    "derived_calls": _check_derived_calls,
    "round_trip_x": _check_round_trip_x,
    "round_trip_y": _check_round_trip_y,
    "log_det": _check_log_det,
    "inverse_log_det": _check_inverse_log_det,
    "batch_independence": _check_batch_independence,
    "triangular": _check_triangular,
    "gradients": _check_gradients,
    "state_dict": _check_state_dict,
    "pyro_module": _check_pyro_module,
    "dtype": _check_dtype,
    "device": _check_device,
    "compile": _check_compile,
}


def _run_one(name: str, run: _Run) -> CheckResult:
    description = CHECKS[name]
    try:
        measured = _IMPLEMENTATIONS[name](run)
    except _Skipped as skipped:
        return CheckResult(name, description, "skipped", detail=str(skipped))
    except _Failed as failed:
        return CheckResult(
            name, description, "failed", failed.error, failed.tolerance, failed.detail
        )
    except Exception as error:  # noqa: BLE001 - a crash in a check is that check's verdict
        return CheckResult(name, description, "failed", detail=f"{type(error).__name__}: {error}")
    return CheckResult(
        name, description, "passed", measured.error, measured.tolerance, measured.detail
    )


def _results(
    transform: Any,
    x: Tensor,
    *,
    context: Tensor | None,
    y: Tensor | None,
    checks: Sequence[str] | None,
    options: _Options,
) -> Iterator[CheckResult]:
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"checks must be names from {list(CHECKS)}, got unknown {unknown}")
    run = _Run(_Subject(transform, context), x, y, options)
    for name in names:
        yield _run_one(name, run)


def _options(x: Tensor, rtol: float | None, atol: float | None, **kwargs: Any) -> _Options:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor in the transform's domain, got {type(x).__name__}")
    default_rtol, default_atol = tolerances(x.dtype)
    return _Options(
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
        **kwargs,
    )


def inspect_bijector(
    transform: Any,
    x: Tensor,
    *,
    context: Tensor | None = None,
    y: Tensor | None = None,
    inverse: bool = True,
    jacobian: bool = True,
    jacobian_max_size: int = 4096,
    triangular: bool = False,
    compile: bool = False,
    factory: Callable[[], Any] | None = None,
    checks: Sequence[str] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> Report:
    r"""Run every check of :data:`CHECKS` on ``transform`` at ``x``; return the :class:`Report`.

    Each check passes, fails (with the measured error and the tolerance) or is
    skipped (with the reason); a check that crashes fails with the exception.
    Tolerances are set by ``x.dtype`` (see :func:`tolerances`); the log-det
    checks scale them by :math:`\sqrt{D}` for events of ``D`` values.

    Args:
        transform: a :class:`torch.distributions.Transform` (sandflow's, torch's,
            Pyro's, zuko's), a conditional transform (Pyro's
            ``ConditionalTransformModule``, a conditional sandflow bijector) with
            ``context``, or an ``nn.Module`` whose call returns a transform
            (zuko's ``LazyTransform``, called with ``context`` if given).
        x: fresh inputs in the domain, at least ``domain.event_dim`` dims; more
            than one batch entry makes the batch-independence check bite.
        context: the context of a conditional transform.
        y: codomain points for the second round trip (default: ``f(x')`` for
            ``x'`` near ``x``, moved by 0.1 in the unconstrained space of the domain).
        inverse: ``False`` for a forward-only transform: the checks that need
            the inverse are skipped rather than failed.
        jacobian: compare the log-det with the exact Jacobian's.
        jacobian_max_size: events with more values skip the exact Jacobian
            (a 3x32x32 event, 3072 values, takes about 30 s per batch entry on
            one CPU core).
        triangular: claim that the Jacobian is triangular up to a permutation
            (autoregressive and coupling transforms) and check the claim.
        compile: also check that ``torch.compile`` gives the eager outputs.
        factory: builds a fresh instance for the ``state_dict`` check (default:
            a perturbed deep copy).
        checks: run only these checks (names from :data:`CHECKS`), in this order.
        rtol: relative tolerance (default by dtype).
        atol: absolute tolerance (default by dtype).

    Example:
        >>> from sandflow.bijectors import AffineCoupling
        >>> layer = perturb(AffineCoupling(4, hidden=(8,))).double()
        >>> report = inspect_bijector(layer, torch.randn(3, 4, dtype=torch.float64))
        >>> report.summary()
        '12 passed, 0 failed, 2 skipped'
        >>> report["log_det"].error < report["log_det"].tolerance
        True
    """
    options = _options(
        x,
        rtol,
        atol,
        inverse=inverse,
        jacobian=jacobian,
        jacobian_max_size=jacobian_max_size,
        triangular=triangular,
        compile=compile,
        factory=factory,
    )
    start = time.perf_counter()
    results = list(_results(transform, x, context=context, y=y, checks=checks, options=options))
    name = getattr(transform, "__name__", None) or type(transform).__name__
    return Report(name, results, time.perf_counter() - start)


def check_bijector(transform: Any, x: Tensor, **options: Any) -> None:
    """Assert that ``transform`` is a correct bijection at ``x``: :func:`inspect_bijector`, raising.

    The keyword arguments are :func:`inspect_bijector`'s; the checks run in the
    order of :data:`CHECKS` and the first failure is raised.

    Raises:
        AssertionError: naming the failed check, what it asserts and the error.

    Example:
        >>> from sandflow.bijectors import AffineCoupling
        >>> layer = perturb(AffineCoupling(4, hidden=(8,)).double())
        >>> check_bijector(layer, torch.randn(3, 4, dtype=torch.float64))
        >>> check_bijector(torch.distributions.SigmoidTransform(), torch.randn(5))
    """
    for result in inspect_bijector(transform, x, **options):
        if result.status == "failed":
            raise AssertionError(result.message)


def autograd_log_det(transform: Transform, x: Tensor) -> Tensor:
    """``log|det J_f(x)|`` per batch entry from the exact Jacobian (forward-mode autodiff).

    Example:
        >>> from sandflow.bijectors import Affine
        >>> bij = Affine(torch.zeros(3), torch.tensor([1.0, 2.0, 4.0]), event_dim=1)
        >>> autograd_log_det(bij, torch.randn(2, 3))
        tensor([2.0794, 2.0794])
    """
    calls = _Calls(transform)
    with torch.no_grad():
        jac = jacobian(calls.forward_value, x, calls.event_dim)
    return torch.linalg.slogdet(jac.double())[1].to(x.dtype)


def _strictly_inside(constraint: constraints.Constraint, x: Tensor) -> Tensor:
    """``constraint.check(x)`` for finite ``x``, the bounds of an interval excluded (closed too)."""
    inside = constraint.check(x)
    base = constraint
    while isinstance(base, constraints.independent):
        base = base.base_constraint
    strict = torch.isfinite(x)
    if hasattr(base, "lower_bound"):
        strict &= x > base.lower_bound
    if hasattr(base, "upper_bound"):
        strict &= x < base.upper_bound
    return inside & strict.reshape(*inside.shape, -1).all(-1)


def domain_inputs(
    transform: Transform | constraints.Constraint,
    event_shape: Sequence[int],
    *,
    batch_shape: Sequence[int] = (4,),
    scale: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Points of a transform's ``domain``: ``biject_to(domain)(scale * N(0, I))``, strictly inside.

    A large ``scale`` gives large magnitudes on unbounded domains and values
    near the boundary on bounded ones; values that round onto the boundary in
    ``dtype`` are pulled back inside.

    Args:
        transform: a transform (its ``domain`` is used) or a constraint.
        event_shape: shape of one event of the domain.
        batch_shape: batch shape of the result.
        scale: standard deviation in the unconstrained space.
        dtype: dtype of the result.
        device: device of the result.
        generator: torch generator for the draws (CPU).

    Example:
        >>> x = domain_inputs(torch.distributions.constraints.unit_interval, (), scale=30.0)
        >>> bool(((x > 0) & (x < 1)).all())
        True
    """
    constraint = transform.domain if isinstance(transform, Transform) else transform
    to_domain = biject_to(constraint)
    shape = (*batch_shape, *to_domain.inverse_shape(torch.Size(event_shape)))
    z = scale * torch.randn(shape, generator=generator, dtype=torch.float64)
    for _ in range(200):
        x = to_domain(z).to(dtype)
        inside = _strictly_inside(constraint, x)
        if inside.all():
            break
        z = torch.where(inside.reshape(*inside.shape, *[1] * (z.dim() - inside.dim())), z, 0.8 * z)
    return x.to(device)


@torch.no_grad()
def perturb(
    module: nn.Module, scale: float = 0.2, generator: torch.Generator | None = None
) -> nn.Module:
    """Move every parameter away from its (often identity) initialisation; return the module.

    Adds Gaussian noise of standard deviation ``scale`` to each parameter and
    marks every :class:`~sandflow.bijectors.ActNorm` as initialised, so that a
    check exercises the general case rather than the identity. The right
    ``scale`` depends on the layer: 0.1 to 0.3 suits sandflow's soft-clamped
    scales; deep stacks or unclamped layers (other libraries') need less, or
    their Jacobians reach condition numbers that no float32 check can verify.
    """
    for parameter in module.parameters():
        noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
        parameter.add_(scale * noise.to(dtype=parameter.dtype, device=parameter.device))
    for sub in module.modules():
        if isinstance(sub, ActNorm):
            sub.initialized.fill_(True)
    return module
