import pytest
import torch

import sandflow
from sandflow import flows
from sandflow.testing import perturb
from tests.builders import FLOWS

BUILDERS = {
    name: FLOWS[name]
    for name in ("realnvp", "nice", "nsf", "maf", "iaf", "glow", "realnvp_context")
}


def _data(flow, n=16):
    return torch.rand(n, *flow.shape) if len(flow.shape) == 3 else torch.randn(n, *flow.shape)


def _context(flow, n=16):
    return torch.randn(n, flow.context_features) if flow.context_features else None


def test_log_prob_equals_eager_without_recompiling_for_new_values():
    flow = perturb(flows.realnvp(3, layers=2, hidden=(8,)))
    fast = sandflow.compile(flow)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):  # new values, same shape: one graph
            x = torch.randn(16, 3)
            torch.testing.assert_close(fast.log_prob(x), flow().log_prob(x))


def test_refuses_what_is_not_a_flow():
    with pytest.raises(TypeError, match="takes a sandflow Flow, got Linear"):
        sandflow.compile(torch.nn.Linear(2, 2))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_compiled_flow_equals_eager(name):
    torch._dynamo.reset()
    flow = BUILDERS[name]()
    x = _data(flow)
    context = _context(flow)
    flow().log_prob(x) if context is None else flow(context).log_prob(x)  # ActNorm init
    flow = perturb(flow, scale=0.1) if name == "glow" else perturb(flow)
    fast = sandflow.compile(flow)
    eager = flow(context).log_prob(x) if context is not None else flow().log_prob(x)
    torch.testing.assert_close(fast.log_prob(x, context), eager, atol=1e-4, rtol=1e-4)

    torch.manual_seed(1)
    sample, log_q = fast.rsample_and_log_prob((16,) if context is None else (), context)
    torch.manual_seed(1)
    d = flow() if context is None else flow(context)
    eager_sample, eager_log_q = d.rsample_and_log_prob((16,) if context is None else ())
    torch.testing.assert_close(sample, eager_sample, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(log_q, eager_log_q, atol=1e-4, rtol=1e-4)

    grads = {}
    for path in ("eager", "compiled"):
        flow.zero_grad()
        log_p = flow(context).log_prob(x) if path == "eager" else fast.log_prob(x, context)
        (-log_p.mean()).backward()
        grads[path] = [p.grad.clone() for p in flow.parameters() if p.grad is not None]
    for a, b in zip(grads["eager"], grads["compiled"], strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compiled_training_step_matches_eager_and_glow_initialises_eagerly():
    torch._dynamo.reset()
    flow = flows.glow((1, 4, 4), levels=2, steps=1, hidden=8)
    twin = flows.glow((1, 4, 4), levels=2, steps=1, hidden=8)
    twin.load_state_dict(flow.state_dict())
    fast = sandflow.compile(flow)
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in (flow, twin)]
    for step in range(3):
        x = torch.rand(32, 1, 4, 4) + step
        losses = [-fast.log_prob(x).mean(), -twin().log_prob(x).mean()]
        for loss, optimizer in zip(losses, optimizers, strict=True):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        torch.testing.assert_close(losses[0], losses[1], atol=1e-4, rtol=1e-4)
    assert bool(flow.bijector[-2].initialized)
