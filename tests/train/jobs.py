"""Training jobs that the tests run in other processes (spawned ranks, a run to be killed)."""

import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

import sandflow
from sandflow.bijectors import ActNorm
from sandflow.train import fit


def nll(flow, x):
    return -flow().log_prob(x).mean()


def glow_job(record=None):
    """A small Glow on random images; ``record`` gets its ActNorm parameters at the first step."""
    torch.manual_seed(0)
    flow = sandflow.flows.glow((1, 8, 8), levels=2, steps=1, hidden=8)
    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)) - 0.5

    def loss(model, x):
        if record is not None and torch.is_grad_enabled() and not record:
            for m in flow.modules():
                if isinstance(m, ActNorm):
                    record.append({k: v.clone() for k, v in m.state_dict().items()})
        return nll(model, x)

    return fit(flow, loss, images, steps=3, batch_size=16, progress=False)


def realnvp_job(**kwargs):
    """A RealNVP on a fixed sample of the moons, logging every step."""
    torch.manual_seed(0)
    flow = sandflow.flows.realnvp(2, layers=2, hidden=(16,))
    data = torch.randn(256, 2, generator=torch.Generator().manual_seed(1))
    return fit(flow, nll, data, steps=5, batch_size=32, log_every=1, progress=False, **kwargs)


def distributed_worker(rank, world, out):
    """One of ``world`` ranks: the jobs above under DDP, results saved to ``out/rank{rank}.pt``."""
    actnorm = []
    glow = glow_job(actnorm)
    realnvp = realnvp_job()
    flow = sandflow.flows.realnvp(2, layers=1, hidden=(4,))
    try:
        fit(flow, lambda model, x: nll(flow, x), torch.randn(8, 2), steps=1, batch_size=4)
        refused = ""
    except TypeError as error:
        refused = str(error)
    torch.save(
        {
            "glow": glow.module.state_dict(),
            "actnorm": actnorm,
            "realnvp": realnvp.module.state_dict(),
            "history": realnvp.history,
            "refused": refused,
        },
        Path(out) / f"rank{rank}.pt",
    )
    dist.destroy_process_group()


def resume_job(out, stop_at=None):
    """40 steps with EMA, warm-up, clipping and noise from torch, numpy and random.

    With ``stop_at``, the ``stop_at``-th loss call writes ``out/stopped`` and
    hangs, to be killed.
    """
    torch.manual_seed(0)
    flow = sandflow.flows.realnvp(2, layers=2, hidden=(16,))
    data = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    calls = [0]

    def loss(model, x):
        calls[0] += 1
        if calls[0] == stop_at:
            (Path(out) / "stopped").touch()
            time.sleep(600)
        noise = 0.1 * torch.randn_like(x) + 0.01 * np.random.randn() + 0.01 * random.random()
        return nll(model, x + noise)

    return fit(
        flow,
        loss,
        data,
        steps=40,
        batch_size=32,
        lr=1e-2,
        warmup=3,
        clip=1.0,
        ema=0.9,
        out=out,
        checkpoint_every=10,
        log_every=5,
        resume=True,
        seed=3,
        progress=False,
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    resume_job(sys.argv[1], stop_at=int(sys.argv[2]))
