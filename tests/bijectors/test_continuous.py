"""ContinuousFlow: closed forms of a linear field, Hutchinson's estimate, the harness, Pyro."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from torch import nn

from sandflow import flows
from sandflow.bijectors import ContinuousFlow, ShapeError
from sandflow.nn import MLPVectorField
from sandflow.testing import CHECKS, check_bijector, perturb

F64 = torch.float64


class Linear(nn.Module):
    """v(x, t) = A x: x(1) = expm(A) x(0), log|det J| = tr(A)."""

    def __init__(self, matrix):
        super().__init__()
        self.matrix = nn.Parameter(matrix)

    def forward(self, x, t):
        return x @ self.matrix.T


def _matrix(d=3):
    return 0.5 * torch.randn(d, d, dtype=F64)


def _field(features=3, context=0, dtype=F64):
    return perturb(MLPVectorField(features, hidden=(16, 16), context=context), 0.3).to(dtype)


def test_linear_field_matches_the_matrix_exponential_and_the_trace():
    a = _matrix()
    flow = ContinuousFlow(Linear(a), event_shape=(3,), atol=1e-10, rtol=1e-10)
    x = torch.randn(4, 2, 3, dtype=F64)
    with torch.no_grad():
        y, log_det = flow.forward_and_log_det(x)
        back, inverse_log_det = flow.inverse_and_log_det(y)
    torch.testing.assert_close(y, x @ torch.linalg.matrix_exp(a).T, rtol=0, atol=1e-8)
    torch.testing.assert_close(log_det, torch.trace(a).expand(4, 2), rtol=0, atol=1e-8)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-8)
    torch.testing.assert_close(inverse_log_det, -log_det, rtol=0, atol=1e-8)


def test_t_span_scales_time_and_may_run_backwards():
    a = _matrix()
    x = torch.randn(5, 3, dtype=F64)
    flow = ContinuousFlow(Linear(a), event_shape=(3,), t_span=(2.0, 0.5), atol=1e-10, rtol=1e-10)
    with torch.no_grad():
        y, log_det = flow.forward_and_log_det(x)
    torch.testing.assert_close(y, x @ torch.linalg.matrix_exp(-1.5 * a).T, rtol=0, atol=1e-8)
    torch.testing.assert_close(log_det, (-1.5 * torch.trace(a)).expand(5), rtol=0, atol=1e-8)


def test_hutchinson_is_unbiased():
    """Every row draws its own Rademacher vector: the mean over rows estimates the exact trace."""
    field = _field()
    x = torch.randn(1, 3, dtype=F64).expand(4000, 3)
    options = {"event_shape": (3,), "atol": 1e-7, "rtol": 1e-7}
    with torch.no_grad():
        exact = ContinuousFlow(field, **options).forward_and_log_det(x[:1])[1]
        estimate = ContinuousFlow(field, trace="hutchinson", **options).forward_and_log_det(x)
    assert estimate[0].shape == x.shape
    error = estimate[1].std() / len(x) ** 0.5
    assert error > 0  # the draws differ
    assert abs(estimate[1].mean() - exact[0]) < 4 * error


def test_hutchinson_gives_the_exact_trace_of_a_diagonal_field():
    """Rademacher noise: eps^T diag(a) eps = sum(a), whatever the draw."""
    a = torch.diag(torch.tensor([0.3, -0.2, 0.5], dtype=F64))
    flow = ContinuousFlow(Linear(a), event_shape=(3,), trace="hutchinson", atol=1e-9, rtol=1e-9)
    log_det = flow.forward_and_log_det(torch.randn(6, 3, dtype=F64))[1]
    torch.testing.assert_close(log_det, torch.full((6,), 0.6, dtype=F64))


def test_cnf_passes_check_bijector_with_the_exact_trace(dtype):  # dtype: both, conftest
    tol = 1e-8 if dtype == F64 else 1e-6
    flow = perturb(flows.cnf(3, hidden=(16,), atol=tol, rtol=tol).bijector, 0.1).to(dtype)
    checks = [name for name in CHECKS if name != "pyro_module"]  # SVI: see the registry
    check_bijector(flow, torch.randn(4, 3, dtype=dtype), checks=checks)


def test_check_bijector_fixed_steps_with_context():
    """A fixed grid makes every entry independent of the others, exactly."""
    field = _field(context=2)
    flow = ContinuousFlow(field, event_shape=(3,), solver="rk4", options={"step_size": 0.05})
    context = torch.randn(4, 2, dtype=F64)
    check_bijector(flow, torch.randn(4, 3, dtype=F64), context=context, rtol=1e-5, atol=1e-5)


def test_context_changes_the_map_per_row():
    flow = ContinuousFlow(_field(context=2), event_shape=(3,), atol=1e-9, rtol=1e-9)
    x, c = torch.randn(3, 3, dtype=F64), torch.randn(3, 2, dtype=F64)
    with torch.no_grad():
        y, log_det = flow.forward_and_log_det(x, c)
        for i in range(3):
            yi, li = flow.forward_and_log_det(x[i], c[i])
            torch.testing.assert_close(yi, y[i], atol=1e-7, rtol=1e-7)
            torch.testing.assert_close(li, log_det[i], atol=1e-7, rtol=1e-7)
    with pytest.raises(ValueError, match="conditional"):
        flow.forward_and_log_det(x)


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_log_prob_trains_the_field_and_adjoint_gradients_agree(trace):
    torch.manual_seed(1)
    x = torch.randn(8, 2, dtype=F64)
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(3)
        flow = flows.cnf(2, hidden=(8,), trace=trace, adjoint=adjoint, atol=1e-8, rtol=1e-8)
        perturb(flow, 0.3).double()
        torch.manual_seed(2)  # the same Hutchinson draw for both
        flow().log_prob(x).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in flow.parameters()]))
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)


def test_bad_settings_name_the_argument():
    field = _field()
    with pytest.raises(ValueError, match="trace must be"):
        ContinuousFlow(field, event_shape=(3,), trace="diagonal")
    with pytest.raises(ValueError, match="solver must be"):
        ContinuousFlow(field, event_shape=(3,), solver="lsoda")
    with pytest.raises(ValueError, match="step_size"):
        ContinuousFlow(field, event_shape=(3,), solver="euler")
    with pytest.raises(ValueError, match="t_span"):
        ContinuousFlow(field, event_shape=(3,), t_span=(1.0, 1.0))
    with pytest.raises(ValueError, match="atol"):
        ContinuousFlow(field, event_shape=(3,), atol=0.0)
    with pytest.raises(ShapeError, match="events of shape"):
        ContinuousFlow(field, event_shape=(3,)).forward_and_log_det(torch.randn(2, 4, dtype=F64))


def test_empty_batch():
    y, log_det = ContinuousFlow(_field(), event_shape=(3,)).forward_and_log_det(
        torch.randn(0, 3, dtype=F64)
    )
    assert y.shape == (0, 3) and log_det.shape == (0,)


# -- inside Pyro ------------------------------------------------------------------------------


@pytest.fixture
def clean_param_store():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def test_cnf_scores_observations_in_a_pyro_model(clean_param_store):
    flow = perturb(flows.cnf(2, hidden=(8,)), 0.3)
    x = torch.randn(5, 2)

    def model(data):
        pyro.module("flow", flow)
        with pyro.plate("data", len(data)):
            pyro.sample("x", flow(), obs=data)

    trace = pyro.poutine.trace(model).get_trace(x)
    with torch.no_grad():
        expected = flow().log_prob(x).sum()
    torch.testing.assert_close(trace.log_prob_sum(), expected, rtol=1e-4, atol=1e-4)


def test_cnf_as_an_svi_guide(clean_param_store):
    """q(z) = cnf fits the posterior N(m, 0.5^2 I) of a conjugate model: the ELBO rises."""
    torch.manual_seed(0)
    flow = flows.cnf(2, hidden=(16,), atol=1e-4, rtol=1e-4)
    data = torch.tensor([1.0, -0.5])

    def model():
        z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(z, 1.0).to_event(1), obs=data)

    def guide():
        pyro.module("flow", flow)
        pyro.sample("z", flow())

    elbo = Trace_ELBO(num_particles=16, vectorize_particles=True)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), elbo)
    losses = [svi.step() for _ in range(20)]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert any(p.abs().sum() > 0 for p in flow.parameters())
