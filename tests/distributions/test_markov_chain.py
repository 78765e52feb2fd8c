import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from sandflow.distributions.markov_chain import MarkovChain

T = 6
COEF = torch.linspace(0.5, 0.9, T + 1)  # indexed by t; COEF[0] unused
SCALE = torch.linspace(0.3, 1.2, T + 1)


def ar1(t, z):
    return dist.Normal(COEF[t] * z, SCALE[t])


def log_normal(x, mean, std):
    return -0.5 * math.log(2 * math.pi) - math.log(std) - 0.5 * ((x - mean) / std) ** 2


def test_shapes_time_is_leftmost_event_axis():
    chain = MarkovChain(dist.Normal(torch.zeros(3), 1.0), ar1, T)
    assert chain.batch_shape == (3,) and chain.event_shape == (T + 1,)
    z = chain.sample((5,))
    assert z.shape == (5, 3, T + 1)
    assert chain.log_prob(z).shape == (5, 3)


def test_vector_states():
    initial = dist.Normal(torch.zeros(4, 2), 1.0).to_event(1)
    chain = MarkovChain(initial, lambda t, z: dist.Normal(z, 1.0).to_event(1), 3)
    assert chain.batch_shape == (4,) and chain.event_shape == (4, 2)
    z = chain.sample((7,))
    assert z.shape == (7, 4, 4, 2)
    assert chain.log_prob(z).shape == (7, 4)


def test_log_prob_is_the_sum_of_transition_log_densities():
    chain = MarkovChain(dist.Normal(0.2, 1.5), ar1, T)
    z = chain.sample((4,))
    expected = []
    for row in z.tolist():
        lp = log_normal(row[0], 0.2, 1.5)
        for t in range(1, T + 1):
            lp += log_normal(row[t], float(COEF[t]) * row[t - 1], float(SCALE[t]))
        expected.append(lp)
    torch.testing.assert_close(chain.log_prob(z), torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_log_prob_calls_the_transition_once_with_all_steps():
    calls = []

    def transition(t, z):
        calls.append(t.clone())
        return ar1(t, z)

    chain = MarkovChain(dist.Normal(0.0, 1.0), transition, T)
    z = chain.sample((5,))
    calls.clear()
    lp = chain.log_prob(z)
    assert len(calls) == 1
    assert calls[0].shape == (T, 5) and calls[0].dtype == torch.long
    assert calls[0][:, 0].tolist() == list(range(1, T + 1))
    looped = MarkovChain(dist.Normal(0.0, 1.0), transition, T, vectorized=False)
    calls.clear()
    torch.testing.assert_close(looped.log_prob(z), lp)
    assert len(calls) == T and all(c.shape == (5,) for c in calls)


def test_sampling_passes_one_step_per_chain():
    seen = []

    def transition(t, z):
        seen.append(t.clone())
        return ar1(t, z)

    MarkovChain(dist.Normal(torch.zeros(2), 1.0), transition, T).sample((3,))
    assert [c.shape for c in seen] == [(3, 2)] * T
    assert [int(c[0, 0]) for c in seen] == list(range(1, T + 1))


def test_marginal_variance_of_ar1_matches_closed_form():
    chain = MarkovChain(dist.Normal(0.0, 1.0), ar1, T)
    z = chain.sample((40_000,))
    var = 1.0
    for t in range(1, T + 1):
        var = float(COEF[t]) ** 2 * var + float(SCALE[t]) ** 2
    assert z[:, -1].var().item() == pytest.approx(var, rel=0.03)


def test_rsample_carries_gradients_and_sample_does_not():
    loc = torch.tensor(0.5, requires_grad=True)
    chain = MarkovChain(dist.Normal(loc, 1.0), lambda t, z: dist.Normal(z + loc, 1.0), 3)
    assert chain.has_rsample
    z = chain.rsample((10,))
    z.sum().backward()
    # z_t depends on loc through z_0 and t additive shifts: d sum / d loc = 10 * (1 + 2 + 3 + 4)
    assert loc.grad.item() == pytest.approx(100.0)
    assert not chain.sample((2,)).requires_grad


def test_pyro_observed_site_and_plate():
    chain = MarkovChain(dist.Normal(0.0, 1.0), ar1, T)
    data = chain.sample((8,))

    def model():
        with pyro.plate("chains", 8):
            pyro.sample("z", chain, obs=data)

    trace = poutine.trace(model).get_trace()
    torch.testing.assert_close(trace.log_prob_sum(), chain.log_prob(data).sum())


def test_transition_that_ignores_the_batch_is_expanded():
    chain = MarkovChain(dist.Normal(0.0, 1.0), lambda t, z: dist.Normal(0.0, 2.0), 3)
    z = chain.sample((5,))
    expected = dist.Normal(0.0, 1.0).log_prob(z[:, 0]) + dist.Normal(0.0, 2.0).log_prob(
        z[:, 1:]
    ).sum(-1)
    torch.testing.assert_close(chain.log_prob(z), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_steps must be an int >= 1"):
        MarkovChain(dist.Normal(0.0, 1.0), ar1, 0)
    with pytest.raises(TypeError, match="initial must be a torch Distribution"):
        MarkovChain(torch.zeros(3), ar1, 2)
    chain = MarkovChain(dist.Normal(0.0, 1.0), ar1, T)
    with pytest.raises(ValueError, match=r"T \+ 1 = 7 states"):
        chain.log_prob(torch.zeros(4, T))
    bad = MarkovChain(dist.Normal(0.0, 1.0), lambda t, z: dist.Normal(torch.zeros(2), 1.0), 2)
    with pytest.raises(ValueError, match="does not expand to the batch shape"):
        bad.sample((3,))
    wrong_event = MarkovChain(
        dist.Normal(0.0, 1.0), lambda t, z: dist.Normal(z[..., None], 1.0).to_event(1), 2
    )
    with pytest.raises(ValueError, match=r"transition returned event_shape \(1,\)"):
        wrong_event.sample()
