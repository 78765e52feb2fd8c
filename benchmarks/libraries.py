"""The flows of the benchmark in each library, behind one interface (:class:`Model`).

Every builder takes the architecture's sizes and a ``device`` keyword and
returns a :class:`Model` whose module holds the parameters. sandflow and
plain torch also come compiled (``sandflow.compile`` and ``torch.compile``
with ``fullgraph=True``); every other library is called eagerly, the way its
documentation does it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from benchmarks import plain


@dataclass
class Model:
    """One library's flow, behind the calls the benchmark times.

    ``eager_log_prob`` is the uncompiled density, run once before timing (it
    initialises ActNorm layers from data); ``loss`` is the training loss and
    ``latency`` the batch-1 density (both default to ``log_prob``'s).
    """

    module: nn.Module
    log_prob: Callable[[Tensor], Tensor]
    sample: Callable[[int], Tensor]
    loss: Callable[[Tensor], Tensor] | None = None
    latency: Callable[[Tensor], Tensor] | None = None
    eager_log_prob: Callable[[Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        log_prob = self.log_prob
        if self.loss is None:
            self.loss = lambda x: -log_prob(x).mean()
        self.latency = self.latency or log_prob
        self.eager_log_prob = self.eager_log_prob or log_prob


def _zero_last(linear: nn.Module) -> None:
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)


# -- sandflow and plain torch, eager and compiled ---------------------------------------


def sandflow_model(name: str, *args: object, device: torch.device, **sizes: object) -> Model:
    """``sandflow.flows.<name>(*args, **sizes)``, called as ``flow().log_prob(x)``."""
    import sandflow.flows

    flow = getattr(sandflow.flows, name)(*args, **sizes).to(device)
    return Model(flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,)))


def realnvp_sandflow(features: int, hidden: tuple[int, ...], layers: int, *, device) -> Model:
    return sandflow_model("realnvp", features, layers=layers, hidden=hidden, device=device)


def glow_sandflow(shape: tuple[int, int, int], levels: int, steps: int, hidden: int, *, device):
    return sandflow_model("glow", shape, levels=levels, steps=steps, hidden=hidden, device=device)


def realnvp_plain(features: int, hidden: tuple[int, ...], layers: int, *, device) -> Model:
    flow = plain.RealNVP(features, layers, hidden).to(device)
    return Model(flow, flow.log_prob, flow.sample)


def glow_plain(shape: tuple[int, int, int], levels: int, steps: int, hidden: int, *, device):
    flow = plain.Glow(shape, levels, steps, hidden).to(device)
    return Model(flow, flow.log_prob, flow.sample)


def compiled_sandflow(model: Model, device: torch.device) -> Model:
    """``sandflow.compile(flow)``; batch-1 latency with ``mode="reduce-overhead"`` on CUDA."""
    import sandflow

    fast = small = sandflow.compile(model.module)
    if device.type == "cuda":
        small = sandflow.compile(model.module, mode="reduce-overhead")
    return Model(
        model.module,
        fast.log_prob,
        lambda n: fast.sample((n,)),
        latency=small.log_prob,
        eager_log_prob=model.log_prob,
    )


def compiled_plain(model: Model, device: torch.device) -> Model:
    """``torch.compile(..., fullgraph=True)`` of plain torch's log_prob, sample and loss."""
    flow = model.module
    log_prob = torch.compile(flow.log_prob, fullgraph=True)
    latency = (
        torch.compile(flow.log_prob, fullgraph=True, mode="reduce-overhead")
        if device.type == "cuda"
        else log_prob
    )
    return Model(
        flow,
        log_prob,
        torch.compile(flow.sample, fullgraph=True),
        loss=torch.compile(lambda x: -flow.log_prob(x).mean(), fullgraph=True),
        latency=latency,
        eager_log_prob=model.log_prob,
    )


def compiled(
    builder: Callable[..., Model], wrap: Callable[[Model, torch.device], Model]
) -> Callable[..., Model]:
    """The builder of ``builder``'s flow, compiled by ``wrap``."""

    def build(*args: object, device: torch.device) -> Model:
        return wrap(builder(*args, device=device), device)

    return build


# -- RealNVP in the other libraries -----------------------------------------------------


def realnvp_pyro(features: int, hidden: tuple[int, ...], layers: int, *, device) -> Model:
    import pyro.distributions as dist
    import pyro.distributions.transforms as T
    from pyro.nn import DenseNN

    half = features // 2
    swap = torch.roll(torch.arange(features, device=device), features - half)
    parts: list[T.TransformModule] = []
    for i in range(layers):
        if i:
            parts.append(T.Permute(swap))
        net = DenseNN(half, list(hidden), param_dims=[features - half, features - half])
        _zero_last(net.layers[-1])
        parts.append(T.AffineCoupling(half, net.to(device)))
    zeros = torch.zeros(features, device=device)
    flow = dist.TransformedDistribution(dist.Normal(zeros, 1.0).to_event(1), parts)
    modules = nn.ModuleList(p for p in parts if isinstance(p, nn.Module))
    return Model(modules, flow.log_prob, lambda n: flow.sample((n,)))


def realnvp_zuko(features: int, hidden: tuple[int, ...], layers: int, *, device) -> Model:
    from zuko.distributions import DiagNormal
    from zuko.flows.coupling import GeneralCouplingTransform
    from zuko.lazy import Flow, UnconditionalDistribution

    first = torch.arange(features) < features // 2
    transforms = []
    for i in range(layers):
        mask = first if i % 2 == 0 else ~first
        transform = GeneralCouplingTransform(features, mask=mask, hidden_features=hidden)
        _zero_last(transform.hyper[-1])
        transforms.append(transform)
    zeros, ones = torch.zeros(features), torch.ones(features)
    flow = Flow(transforms, UnconditionalDistribution(DiagNormal, zeros, ones, buffer=True))
    flow = flow.to(device)
    return Model(flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,)))


class _NflowsNet(nn.Sequential):
    """An nn.Sequential accepting the ``context`` argument nflows passes to its nets."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return super().forward(x)


def _nflows_net(make: Callable[..., nn.Sequential], *sizes: object) -> Callable:
    def create(n_in: int, n_out: int) -> nn.Module:
        return _NflowsNet(*make(n_in, n_out, *sizes))

    return create


def realnvp_nflows(features: int, hidden: tuple[int, ...], layers: int, *, device) -> Model:
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import AffineCouplingTransform, CompositeTransform

    second = (torch.arange(features) >= features // 2).int()
    net = _nflows_net(plain.mlp, hidden)
    transforms = [
        AffineCouplingTransform(second if i % 2 == 0 else 1 - second, net) for i in range(layers)
    ]
    flow = Flow(CompositeTransform(transforms), StandardNormal([features])).to(device)
    return Model(flow, flow.log_prob, flow.sample)


def realnvp_normflows(features: int, hidden: tuple[int, ...], layers: int, *, device) -> Model:
    import normflows as nf

    half = features // 2
    flows = [
        nf.flows.AffineCouplingBlock(
            nf.nets.MLP([half, *hidden, 2 * (features - half)], init_zeros=True),
            scale=True,
            scale_map="exp",
            split_mode="channel" if i % 2 == 0 else "channel_inv",
        )
        for i in range(layers)
    ]
    base = nf.distributions.DiagGaussian(features, trainable=False)
    flow = nf.NormalizingFlow(base, flows).to(device)
    return Model(flow, flow.log_prob, lambda n: flow.sample(n)[0])


# -- Glow in the other libraries --------------------------------------------------------


def glow_normflows(shape: tuple[int, int, int], levels: int, steps: int, hidden: int, *, device):
    import normflows as nf

    c, h, w = shape
    q0, flows, merges = [], [], []
    for i in range(levels):
        blocks = [
            nf.flows.GlowBlock(c * 2 ** (levels + 1 - i), hidden, split_mode="channel")
            for _ in range(steps)
        ]
        flows.append([*blocks, nf.flows.Squeeze()])
        if i > 0:
            merges.append(nf.flows.Merge())
            scale = 2 ** (levels - i)
            latent = (c * scale, h // scale, w // scale)
        else:
            latent = (c * 2 ** (levels + 1), h // 2**levels, w // 2**levels)
        q0.append(nf.distributions.GlowBase(latent))
    flow = nf.MultiscaleFlow(q0, flows, merges, class_cond=False).to(device)
    return Model(flow, lambda x: flow.log_prob(x, None), lambda n: flow.sample(n)[0])


def glow_nflows(shape: tuple[int, int, int], levels: int, steps: int, hidden: int, *, device):
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import (
        ActNorm,
        AffineCouplingTransform,
        CompositeTransform,
        MultiscaleCompositeTransform,
        OneByOneConvolution,
        SqueezeTransform,
    )

    multiscale = MultiscaleCompositeTransform(levels)
    c, h, w = shape
    for _ in range(levels):
        c, h, w = 4 * c, h // 2, w // 2
        mask = (torch.arange(c) >= c // 2).int()
        parts: list[nn.Module] = [SqueezeTransform()]
        for _ in range(steps):
            coupling = AffineCouplingTransform(mask, _nflows_net(plain.convnet, hidden))
            parts += [ActNorm(c), OneByOneConvolution(c), coupling]
        kept = multiscale.add_transform(CompositeTransform(parts), (c, h, w))
        if kept is not None:
            c, h, w = kept
    flow = Flow(multiscale, StandardNormal([math.prod(shape)])).to(device)
    return Model(flow, flow.log_prob, flow.sample)
