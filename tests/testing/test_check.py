"""The kit on planted bugs in plain torch transforms and on correct torch, Pyro, sandflow ones."""

import math

import pyro.distributions.transforms as pyro_transforms
import pytest
import torch
from pyro.distributions.torch_transform import TransformModule
from torch import nn
from torch.distributions import constraints
from torch.distributions import transforms as T

from sandflow.bijectors import AffineCoupling, MaskedAutoregressive
from sandflow.testing import (
    CHECKS,
    autograd_log_det,
    check_bijector,
    domain_inputs,
    inspect_bijector,
    perturb,
    tolerances,
)

F64 = torch.float64


class Scale(T.Transform):
    """y = s * x per feature (event_dim 1): the base of the planted bugs."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, cache_size=0):
        super().__init__(cache_size=cache_size)
        self.s = torch.tensor([0.5, 2.0, 3.0], dtype=F64)

    def _call(self, x):
        return x * self.s

    def _inverse(self, y):
        return y / self.s

    def log_abs_det_jacobian(self, x, y):
        return self.s.abs().log().sum().expand(x.shape[:-1])


class SignError(Scale):
    def log_abs_det_jacobian(self, x, y):
        return -super().log_abs_det_jacobian(x, y)


class MissingFactor(Scale):
    def log_abs_det_jacobian(self, x, y):
        return self.s[:-1].log().sum().expand(x.shape[:-1])


class InverseOff(Scale):
    def _inverse(self, y):
        return y / self.s + 1e-4


class MixesBatch(Scale):
    def _call(self, x):
        return x * self.s + 0.1 * x.mean(0)

    def _inverse(self, y):
        return (y - 0.1 / (1 + 0.1 / self.s) * (y / self.s).mean(0)) / self.s


class CachedOnlyInverse(Scale):
    def __init__(self):
        super().__init__(cache_size=1)

    def _inverse(self, y):
        raise NotImplementedError("no inverse")


class Linear(TransformModule):
    """y = x W^T, a Pyro TransformModule; ``extra`` is a parameter nothing reads."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, weight, extra=False):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.extra = nn.Parameter(torch.zeros(2)) if extra else None

    def _call(self, x):
        return x @ self.weight.T

    def _inverse(self, y):
        return torch.linalg.solve(self.weight, y.unsqueeze(-1)).squeeze(-1)

    def log_abs_det_jacobian(self, x, y):
        return torch.linalg.slogdet(self.weight)[1].expand(x.shape[:-1])


def _x(n=5, d=3, dtype=F64):
    return torch.randn(n, d, dtype=dtype)


@pytest.mark.parametrize(
    ("transform", "check"),
    [
        (SignError(), "log_det"),
        (MissingFactor(), "log_det"),
        (InverseOff(), "round_trip_x"),
        (MixesBatch(), "batch_independence"),
        (CachedOnlyInverse(), "round_trip_x"),
        (Linear(torch.eye(3, dtype=F64) + 0.1, extra=True), "gradients"),
    ],
    ids=["sign", "missing_factor", "inverse_off", "mixes_batch", "cached_inverse", "dead_param"],
)
def test_planted_bugs_fail_the_named_check(transform, check):
    report = inspect_bijector(transform, _x())
    assert report[check].status == "failed", report
    with pytest.raises(AssertionError, match=f"^{check}: "):
        check_bijector(transform, _x(), checks=[check])


def test_the_correct_base_passes_every_check():
    report = inspect_bijector(Scale(), _x())
    assert report.passed, str(report)
    assert report["log_det"].error < 1e-12 < report["log_det"].tolerance


def test_a_sign_error_is_measured():
    result = inspect_bijector(SignError(), _x())["log_det"]
    assert result.error == pytest.approx(2 * math.log(3.0))
    assert result.tolerance < 1e-4


def test_a_cache_never_answers_for_the_inverse():
    transform, x = CachedOnlyInverse(), _x()
    assert transform.inv(transform(x)) is x  # what a thin adapter would see
    result = inspect_bijector(transform, x)["round_trip_x"]
    assert result.status == "failed" and "no inverse" in result.detail
    forward_only = inspect_bijector(transform, x, inverse=False)
    assert forward_only.passed, forward_only
    assert forward_only["round_trip_x"].status == "skipped"


def test_mixing_is_caught_in_the_log_det_too():
    class SummedLogDet(Scale):
        def log_abs_det_jacobian(self, x, y):
            return (x.sum() * 0 + self.s.log().sum()).expand(x.shape[:-1]) + 1e-3 * x.sum()

    assert inspect_bijector(SummedLogDet(), _x())["batch_independence"].status == "failed"


def test_non_contiguous_parameter_is_caught_under_pyro_svi():
    weight = torch.linalg.qr(torch.randn(3, 3, dtype=F64))[0]
    assert not weight.is_contiguous()
    report = inspect_bijector(Linear(weight), _x())
    assert report["pyro_module"].status == "failed", report
    assert "did not move" in report["pyro_module"].detail
    assert report["gradients"].status == "passed"
    assert inspect_bijector(Linear(weight.contiguous()), _x())["pyro_module"].status == "passed"


def test_triangular_claim():
    dense = Linear(torch.eye(3, dtype=F64) + 0.3)
    assert inspect_bijector(dense, _x(), triangular=True)["triangular"].status == "failed"
    maf = perturb(MaskedAutoregressive(3, hidden=(8,), order=[2, 0, 1])).double()
    assert inspect_bijector(maf, _x(), triangular=True)["triangular"].status == "passed"


def test_state_dict_with_a_factory_catches_state_outside_the_state_dict():
    class RandomPermutation(TransformModule):
        domain = constraints.real_vector
        codomain = constraints.real_vector
        bijective = True

        def __init__(self):
            super().__init__()
            self.order = torch.randperm(3)  # a plain attribute: not in the state_dict

        def _call(self, x):
            return x[..., self.order]

        def _inverse(self, y):
            return y[..., torch.argsort(self.order)]

        def log_abs_det_jacobian(self, x, y):
            return x.new_zeros(x.shape[:-1])

    torch.manual_seed(0)
    orders = iter([torch.tensor([2, 0, 1]), torch.tensor([1, 2, 0])])

    def factory():
        layer = RandomPermutation()
        layer.order = next(orders)
        return layer

    first = factory()
    assert inspect_bijector(first, _x(), checks=["state_dict"]).passed
    result = inspect_bijector(first, _x(), factory=factory)["state_dict"]
    assert result.status == "failed" and result.detail.startswith("outputs after loading")


def test_dtype_check_catches_a_float32_cast():
    class CastsToFloat(Linear):
        def _call(self, x):
            return x.float() @ self.weight.float().T

    result = inspect_bijector(CastsToFloat(torch.eye(3) * 2), _x(dtype=torch.float32))["dtype"]
    assert result.status == "failed" and "float32" in result.detail


def test_device_check_catches_a_tensor_left_behind():
    class LeftBehind(Linear):
        def __init__(self):
            super().__init__(torch.eye(3, dtype=F64) * 2)
            self.shift = torch.zeros(3, device="meta")  # a plain attribute that .to() misses

    result = inspect_bijector(LeftBehind(), _x(), checks=["device"])["device"]
    assert result.status == "failed" and "shift" in result.detail and "meta" not in "cpu"

    class OutputElsewhere(Linear):
        def _call(self, x):
            return (x @ self.weight.T).to("meta")

    result = inspect_bijector(OutputElsewhere(torch.eye(3, dtype=F64)), _x(), checks=["device"])
    assert result["device"].status == "failed" and "(output)" in result["device"].detail


CORRECT = {
    "torch_affine_per_feature": lambda: T.AffineTransform(torch.randn(3), torch.rand(3) + 0.5),
    "torch_compose": lambda: T.ComposeTransform(
        [T.AffineTransform(0.3, 2.0), T.SigmoidTransform(), T.AffineTransform(-1.0, 0.5)]
    ),
    "torch_independent": lambda: T.IndependentTransform(T.TanhTransform(), 1),
    "torch_exp": T.ExpTransform,
    "pyro_affine_coupling": lambda: perturb(pyro_transforms.affine_coupling(3), 0.1),
    "pyro_spline_coupling": lambda: perturb(pyro_transforms.spline_coupling(3), 0.1),
    "pyro_householder": lambda: pyro_transforms.householder(3, count_transforms=2),
    "sandflow_affine_coupling": lambda: perturb(AffineCoupling(3, hidden=(8,))),
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_transforms_pass_without_false_alarms(name, dtype):
    torch.manual_seed(0)
    transform = CORRECT[name]()
    if isinstance(transform, nn.Module):
        transform = transform.to(dtype)
    elif dtype == F64:
        transform = T.ComposeTransform([transform])  # exercise composition in float64 too
    report = inspect_bijector(transform, domain_inputs(transform, (3,), dtype=dtype))
    assert report.passed, str(report)


def test_finds_that_pyros_autoregressive_inverse_ignores_float64():
    layer = perturb(pyro_transforms.affine_autoregressive(3), 0.1).double()
    report = inspect_bijector(layer, _x())
    assert report["round_trip_x"].status == "failed" and "Float and Double" in str(report)
    assert report["log_det"].status == report["dtype"].status == "passed"


def test_conditional_pyro_transform_takes_context():
    torch.manual_seed(0)
    transform = perturb(pyro_transforms.conditional_affine_coupling(3, context_dim=2), 0.1)
    report = inspect_bijector(transform, _x(dtype=torch.float32), context=torch.randn(5, 2))
    assert report.passed, str(report)
    with pytest.raises(TypeError, match="pass context="):
        check_bijector(transform, _x(dtype=torch.float32))


def test_zuko_transforms_and_lazy_modules():
    zuko = pytest.importorskip("zuko")
    torch.manual_seed(0)
    spline = zuko.transforms.MonotonicRQSTransform(*torch.randn(3, 3, 5).unbind(0))
    assert inspect_bijector(spline, torch.randn(4, 3)).passed
    flow = zuko.flows.MAF(3, context=2, transforms=2, hidden_features=(8,))
    report = inspect_bijector(flow.transform, torch.randn(4, 3), context=torch.randn(4, 2))
    assert report.passed, str(report)
    assert report["gradients"].status == report["state_dict"].status == "passed"


def test_check_bijector_stops_at_the_first_failure():
    with pytest.raises(AssertionError, match="^round_trip_x: inverse\\(forward\\(x\\)\\) == x"):
        check_bijector(InverseOff(), _x())


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown \\['round_trip'\\]"):
        inspect_bijector(Scale(), _x(), checks=["round_trip"])
    with pytest.raises(TypeError, match="x must be a tensor"):
        inspect_bijector(Scale(), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least event_dim=1 dims"):
        inspect_bijector(Scale(), torch.tensor(1.0, dtype=F64))
    with pytest.raises(TypeError, match="must be a torch.distributions.Transform"):
        inspect_bijector(object(), _x())


def test_every_check_is_reported_in_order():
    report = inspect_bijector(Scale(), _x())
    assert [r.name for r in report] == list(CHECKS)
    table = str(report)
    assert table.splitlines()[0].startswith("Scale: 7 passed, 0 failed, 7 skipped")
    assert "batch_independence  passed" in table


def test_autograd_log_det_matches_a_known_jacobian():
    assert torch.allclose(
        autograd_log_det(Scale(), _x()), torch.full((5,), math.log(3.0), dtype=F64)
    )


def test_tolerances_by_dtype():
    assert tolerances(torch.float64) < tolerances(torch.float32) < tolerances(torch.float16)


def test_perturb_moves_every_parameter():
    layer = AffineCoupling(4, hidden=(8,))
    before = [p.clone() for p in layer.parameters()]
    perturb(layer, scale=0.01)
    moved = [(a - b).abs().max() for a, b in zip(before, layer.parameters(), strict=True)]
    assert all(0 < m < 0.1 for m in moved)


@pytest.mark.parametrize(
    "constraint",
    [constraints.unit_interval, constraints.positive, constraints.simplex, constraints.real_vector],
    ids=["unit_interval", "positive", "simplex", "real_vector"],
)
def test_domain_inputs_stay_strictly_inside_at_large_scales(constraint):
    x = domain_inputs(constraint, (3,), batch_shape=(50,), scale=40.0)
    assert constraint.check(x).all() and torch.isfinite(x).all()
    if constraint is constraints.unit_interval:
        assert ((x > 0) & (x < 1)).all() and (x > 0.999).any()
