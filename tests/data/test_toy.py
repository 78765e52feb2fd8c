import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sandflow
from sandflow.data import TOY_NAMES, ToyDensity, toy

# Boxes holding all but a negligible mass, cut into cells of width STEP; cell
# counts are multiples of 20 so that the chi-square bins (20 x 20) align.
BOXES = {
    "two_gaussians": ((-7.0, 7.0, -5.0, 5.0), 0.05),
    "eight_gaussians": ((-4.0, 4.0, -4.0, 4.0), 0.025),
    "checkerboard": ((-2.5, 2.5, -2.5, 2.5), 0.05),
    "rings": ((-3.0, 3.0, -3.0, 3.0), 0.02),
    "banana": ((-7.0, 7.0, -5.0, 27.0), 0.025),
    "moons": ((-2.5, 2.5, -2.0, 2.0), 0.025),
}


def grid(name):
    """Cell centres (ny, nx, 2) and the cell area of the test box of ``name``."""
    (x_lo, x_hi, y_lo, y_hi), step = BOXES[name]
    xs = x_lo + (torch.arange(round((x_hi - x_lo) / step), dtype=torch.float64) + 0.5) * step
    ys = y_lo + (torch.arange(round((y_hi - y_lo) / step), dtype=torch.float64) + 0.5) * step
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1), step**2


@pytest.mark.parametrize("name", TOY_NAMES)
def test_density_integrates_to_one(name):
    points, area = grid(name)
    mass = toy(name, torch.float64).log_prob(points).exp().sum() * area
    assert abs(float(mass) - 1) < 1e-9


@pytest.mark.parametrize("name", TOY_NAMES)
def test_samples_match_density_chi_square(name):
    torch.manual_seed(1)
    d = toy(name, torch.float64)
    points, area = grid(name)
    ny, nx = points.shape[:2]
    cell_mass = d.log_prob(points).exp() * area
    expected_bins = cell_mass.reshape(20, ny // 20, 20, nx // 20).sum((1, 3)).flatten()

    n = 100_000
    x = d.sample((n,))
    (x_lo, x_hi, y_lo, y_hi), _ = BOXES[name]
    col = ((x[:, 0] - x_lo) / (x_hi - x_lo) * 20).floor().long()
    row = ((x[:, 1] - y_lo) / (y_hi - y_lo) * 20).floor().long()
    inside = (col >= 0) & (col < 20) & (row >= 0) & (row < 20)
    counts = torch.bincount(row[inside] * 20 + col[inside], minlength=400).double()

    expected = n * expected_bins
    big = expected >= 20  # small bins are merged into one, with the outside
    rest_observed = n - counts[big].sum()
    rest_expected = n - expected[big].sum()
    chi2 = ((counts[big] - expected[big]).square() / expected[big]).sum()
    if rest_expected >= 20:
        chi2 = chi2 + (rest_observed - rest_expected) ** 2 / rest_expected
        dof = int(big.sum())
    else:
        assert rest_observed <= 60
        dof = int(big.sum()) - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof), (float(chi2), dof)


@pytest.mark.parametrize("name", TOY_NAMES)
def test_entropy_matches_monte_carlo(name):
    torch.manual_seed(2)
    d = toy(name, torch.float64)
    log_p = d.log_prob(d.sample((100_000,)))
    estimate = -log_p.mean()
    standard_error = log_p.std() / math.sqrt(len(log_p))
    assert abs(float(estimate - d.entropy())) < 5 * float(standard_error) + 1e-12


def test_entropy_closed_forms():
    assert toy("checkerboard", torch.float64).entropy().item() == pytest.approx(math.log(8), 1e-15)
    expected = math.log(math.pi * math.e)  # log(2 pi e * 1 * 0.5)
    assert toy("banana", torch.float64).entropy().item() == pytest.approx(expected, 1e-15)


def test_two_gaussians_entropy_by_one_dimensional_quadrature():
    # p(x, y) = m(x) N(y; 0, 0.5^2): H = H(m) + H(N(0, 0.5^2)), with m a 1-D mixture.
    x = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 0.5)
    log_m = torch.logaddexp(normal.log_prob(x - 2), normal.log_prob(x + 2)) - math.log(2)
    h_x = torch.trapezoid(-log_m.exp() * log_m, x)
    expected = h_x + 0.5 * math.log(2 * math.pi * math.e * 0.25)
    assert toy("two_gaussians", torch.float64).entropy().item() == pytest.approx(
        float(expected), abs=1e-10
    )


def test_rings_entropy_by_radial_quadrature():
    # A radial density: H = -int_0^inf 2 pi r p(r) log p(r) dr.
    d = toy("rings", torch.float64)
    r = torch.linspace(0, 4, 400_001, dtype=torch.float64)
    log_p = d.log_prob(torch.stack([r, torch.zeros_like(r)], dim=-1))
    assert float(torch.trapezoid(2 * math.pi * r * log_p.exp(), r)) == pytest.approx(1, abs=1e-10)
    expected = torch.trapezoid(-2 * math.pi * r * log_p.exp() * log_p, r)
    assert d.entropy().item() == pytest.approx(float(expected), abs=1e-9)


def test_rings_is_radially_symmetric():
    d = toy("rings", torch.float64)
    angle = torch.linspace(0, 2 * math.pi, 7, dtype=torch.float64)
    for radius in (0.0, 0.3, 1.0, 1.77):
        points = radius * torch.stack([angle.cos(), angle.sin()], dim=-1)
        log_p = d.log_prob(points)
        torch.testing.assert_close(log_p, log_p[:1].expand(7))


def test_moons_density_against_brute_force_arc_integral():
    points = torch.tensor(
        [[0.0, 0.0], [-0.5, 0.75], [1.4, -0.6], [-1.6, -0.3], [0.3, 1.2], [2.0, 1.5]],
        dtype=torch.float64,
    )
    t = torch.linspace(0, math.pi, 20_001, dtype=torch.float64)
    simpson = torch.ones_like(t)
    simpson[1:-1:2], simpson[2:-1:2] = 4, 2
    simpson *= (t[1] - t[0]) / 3
    outer = torch.stack([t.cos() - 0.5, t.sin() - 0.25], dim=-1)
    inner = torch.stack([0.5 - t.cos(), 0.25 - t.sin()], dim=-1)
    density = 0
    for arc in (outer, inner):
        kernel = torch.exp(-0.5 * (points[:, None] - arc).square().sum(-1) / 0.01) / (
            2 * math.pi * 0.01
        )
        density = density + (kernel * simpson).sum(-1) / (2 * math.pi)
    torch.testing.assert_close(
        toy("moons", torch.float64).log_prob(points), density.log(), atol=1e-9, rtol=0
    )


def test_banana_log_prob_against_formula():
    x = torch.randn(50, 2, dtype=torch.float64) * torch.tensor([1.5, 2.0], dtype=torch.float64)
    x1, x2 = x[:, 0], x[:, 1]
    expected = (
        -0.5 * x1**2
        - 0.5 * math.log(2 * math.pi)
        - 0.5 * ((x2 - 0.5 * (x1**2 - 1)) / 0.5) ** 2
        - math.log(0.5)
        - 0.5 * math.log(2 * math.pi)
    )
    torch.testing.assert_close(toy("banana", torch.float64).log_prob(x), expected)


def test_checkerboard_support():
    d = toy("checkerboard")
    black = torch.tensor([[-2.0, -2.0], [-0.5, -0.5], [1.99, 1.99], [0.0, 0.0], [-1.0, 1.0]])
    white = torch.tensor([[-1.5, -0.5], [0.5, -0.5], [1.0, -2.0]])
    outside = torch.tensor([[2.0, 0.5], [-2.01, -1.5], [1.5, 2.0], [9.0, -9.0]])
    assert (d.log_prob(black) == -math.log(8)).all()
    assert (d.log_prob(white) == -math.inf).all()
    assert (d.log_prob(outside) == -math.inf).all()


def test_checkerboard_samples_never_round_out_of_their_square(monkeypatch, dtype):
    # the largest uniform draw below 1 puts corner + u on the next integer in floating point
    def largest_uniform(*size, dtype):
        one = torch.tensor(1.0, dtype=dtype)
        return torch.nextafter(one, torch.zeros_like(one)).expand(size)

    monkeypatch.setattr(torch, "rand", largest_uniform)
    d = toy("checkerboard", dtype)
    x = d.sample((1000,))
    assert torch.isfinite(d.log_prob(x)).all()
    assert (x < 2).all()


@pytest.mark.parametrize("name", TOY_NAMES)
def test_dtype_follows_argument(name, dtype):
    d = toy(name, dtype)
    x = d.sample((5,))
    assert x.dtype == dtype
    assert d.log_prob(x).dtype == dtype
    assert d.log_prob(x.double()).dtype == dtype
    assert d.entropy().dtype == dtype and d.entropy().shape == ()


@pytest.mark.parametrize("name", TOY_NAMES)
def test_float32_log_prob_agrees_with_float64(name):
    x = toy(name, torch.float64).sample((1000,))
    torch.testing.assert_close(
        toy(name, torch.float32).log_prob(x).double(),
        toy(name, torch.float64).log_prob(x),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("name", TOY_NAMES)
@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(0, 4), max_size=3))
def test_log_prob_batch_shapes(name, shape):
    d = toy(name, torch.float64)
    x = d.sample(shape)
    assert x.shape == (*shape, 2)
    log_p = d.log_prob(x)
    assert log_p.shape == tuple(shape)
    torch.testing.assert_close(log_p.reshape(-1), d.log_prob(x.reshape(-1, 2)))


@pytest.mark.parametrize("name", ["two_gaussians", "eight_gaussians", "rings", "banana", "moons"])
def test_log_prob_is_differentiable(name):
    d = toy(name, torch.float64)
    x = d.sample((100,)).requires_grad_()
    (grad,) = torch.autograd.grad(d.log_prob(x).sum(), x)
    assert torch.isfinite(grad).all()


def test_works_as_observed_site_in_a_pyro_plate():
    d = toy("moons")
    x = d.sample((7,))

    def model():
        with pyro.plate("data", 7):
            pyro.sample("x", d, obs=x)

    trace = pyro.poutine.trace(model).get_trace()
    torch.testing.assert_close(trace.log_prob_sum(), d.log_prob(x).sum())
    assert isinstance(d, dist.TorchDistribution)
    assert d.expand((3,)).log_prob(x[:3]).shape == (3,)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown toy density 'swiss_roll'.*two_gaussians.*moons"):
        toy("swiss_roll")
    with pytest.raises(ValueError, match="valid names"):
        toy(["moons"])


def test_bad_inputs():
    with pytest.raises(TypeError, match="floating"):
        toy("moons", torch.int64)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\).*\(4, 3\)"):
        toy("banana").log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="support"):
        toy("banana", torch.float64).log_prob(
            torch.tensor([float("nan"), 0.0], dtype=torch.float64)
        )


def test_public_names():
    assert TOY_NAMES == (
        "two_gaussians",
        "eight_gaussians",
        "checkerboard",
        "rings",
        "banana",
        "moons",
    )
    assert all(isinstance(toy(name), ToyDensity) for name in TOY_NAMES)
    assert sandflow.data.toy is toy
