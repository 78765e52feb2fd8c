"""The loop in one process: EMA, schedule, non-finite losses, every kind of data."""

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import sandflow
from sandflow.train import fit
from sandflow.train.data import EpochBatches
from tests.train.jobs import nll


def small_flow():
    torch.manual_seed(0)
    return sandflow.flows.realnvp(2, layers=2, hidden=(8,))


def test_ema_equals_a_hand_computed_exponential_average():
    flow, seen = small_flow(), []

    def loss(model, x):
        seen.append([p.detach().clone() for p in flow.parameters()])
        return nll(model, x)

    decay = 0.8
    run = fit(
        flow, loss, torch.randn(64, 2), steps=6, batch_size=16, lr=1e-2, ema=decay, progress=False
    )
    after = seen[1:] + [list(flow.parameters())]  # the weights after each step
    expected = after[0]
    for weights in after[1:]:
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights, strict=True)]
    for average, hand in zip(run.ema.module.parameters(), expected, strict=True):
        torch.testing.assert_close(average, hand, rtol=1e-6, atol=1e-7)
    assert run.model is run.ema.module


def test_learning_rate_warms_up_then_decays_as_a_cosine():
    run = fit(
        small_flow(),
        nll,
        torch.randn(64, 2),
        steps=8,
        batch_size=8,
        lr=0.1,
        warmup=4,
        log_every=1,
        progress=False,
    )
    lrs = [row["lr"] for row in run.history]  # after each step
    expected = [
        0.1 * min(1, (s + 1) / 4) * (1 + math.cos(math.pi * s / 8)) / 2 for s in range(1, 9)
    ]
    assert lrs == pytest.approx(expected)


def test_a_non_finite_loss_stops_naming_the_step():
    calls = [0]

    def loss(model, x):
        calls[0] += 1
        return nll(model, x) * (math.nan if calls[0] == 3 else 1.0)

    with pytest.raises(FloatingPointError, match=r"nan at step 2: lower the learning rate"):
        fit(small_flow(), loss, torch.randn(32, 2), steps=5, batch_size=8, progress=False)


@pytest.mark.parametrize("kind", ["tensor", "dataset", "loader", "callable"])
def test_every_kind_of_data_gives_the_same_batches(kind):
    data = torch.randn(40, 2)
    order = torch.cat(
        [torch.randperm(40, generator=torch.Generator().manual_seed(e)) for e in (0, 1)]
    )  # the epochs of seed 0: 5 batches of 8 each
    given = {
        "tensor": data,
        "dataset": TensorDataset(data),
        "loader": DataLoader(TensorDataset(data), batch_size=8),
        "callable": lambda step: data[order[step * 8 : (step + 1) * 8]],
    }[kind]
    seen = []

    def loss(model, batch):
        batch = batch[0] if isinstance(batch, list) else batch
        seen.append(batch)
        return nll(model, batch)

    fit(
        small_flow(),
        loss,
        given,
        steps=7,
        batch_size=None if kind == "loader" else 8,
        seed=0,
        progress=False,
    )
    for step, batch in enumerate(seen):
        torch.testing.assert_close(batch, data[order[step * 8 : (step + 1) * 8]])


def test_a_loss_without_data_gets_none():
    target = torch.distributions.Normal(torch.zeros(2), 1.0)

    def reverse_kl(model, batch):
        assert batch is None
        z, log_q = model().rsample_and_log_prob((16,))
        return (log_q - target.log_prob(z).sum(-1)).mean()

    assert fit(small_flow(), reverse_kl, None, steps=3, progress=False).step == 3


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="batch_size is the global batch and must be a multiple"):
        EpochBatches(10, 3, seed=0, rank=0, world=2, start=0, stop=1)
    with pytest.raises(ValueError, match="ema is a decay in"):
        fit(small_flow(), nll, torch.randn(8, 2), steps=1, batch_size=4, ema=1.5)
    with pytest.raises(ValueError, match="schedule must be"):
        fit(small_flow(), nll, torch.randn(8, 2), steps=1, batch_size=4, schedule="linear")
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        fit(
            small_flow(),
            nll,
            torch.randn(8, 2),
            steps=1,
            batch_size=4,
            precision="fp16",
            device="cpu",
        )


def test_a_diverged_model_refused_by_validation_still_names_the_step():
    flow = small_flow()
    with torch.no_grad():
        next(flow.parameters()).fill_(math.nan)  # a diverged step before this run
    with pytest.raises(FloatingPointError, match=r"parameters are NaN or infinite at step 0"):
        fit(flow, nll, torch.randn(32, 2), steps=5, batch_size=8, progress=False)
