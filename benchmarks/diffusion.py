"""Diffusion speed: the exact all-T ELBO and 1,000-step sampling against plain torch and diffusers.

* **ELBO.** ``GaussianDiffusion.elbo`` computes every one of the T terms. Its
  cost floor is the T network evaluations on the batch; the reference runs
  exactly those (same network, same stacked inputs, same call sizes) and
  nothing else. Target: sandflow at >= 0.9x the speed of the bare calls.
* **Sampling.** ``GaussianDiffusion.sample`` (ancestral, T = 1000) against
  the textbook loop of Ho et al.'s algorithm 2 in plain torch, and against
  diffusers' ``DDPMScheduler`` step loop when ``import diffusers`` works,
  all with the same network. Target: >= 1.0x the plain loop.

One thread, one process; the candidates of a case run interleaved
round-robin (the order rotates every round) after a warm-up, and the median
over rounds is reported (:mod:`benchmarks.timing`). ``python -m benchmarks.diffusion`` writes
``benchmarks/results_diffusion.md``; ``python -m benchmarks.run`` includes it.
Environment knob: ``SANDFLOW_BENCH_ROUNDS`` (default 9).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from benchmarks import timing
from benchmarks.report import table
from benchmarks.timing import Timings
from sandflow.diffusion import GaussianDiffusion, NoiseSchedule
from sandflow.nn.denoisers import MLPDenoiser, UNet

THREADS = 1
ROUNDS = int(os.environ.get("SANDFLOW_BENCH_ROUNDS", "9"))
RESULTS = Path(__file__).with_name("results_diffusion.md")

try:
    import diffusers
except ImportError:
    diffusers = None


def interleaved(candidates: dict[str, Callable[[], object]]) -> Timings:
    """``candidates`` timed one call per round, interleaved (:mod:`benchmarks.timing`)."""
    return timing.interleaved({"run": candidates}, ROUNDS, 0.0, warmup=1, min_calls=1)


def elbo_case(diffusion: GaussianDiffusion, net: nn.Module, x0: torch.Tensor) -> Timings:
    """The exact ELBO against the bare network calls it needs."""
    n, T = x0.shape[0], diffusion.num_steps
    per_call = max(1, 4096 // n)  # the ELBO's default stacking
    inputs = []
    for start in range(1, T + 1, per_call):
        k = min(per_call, T + 1 - start)
        t = torch.arange(start, start + k).repeat_interleave(n)
        inputs.append((torch.randn(k * n, *x0.shape[1:]), t))

    @torch.no_grad()
    def bare() -> None:
        for xt, t in inputs:
            net(xt, t)

    @torch.no_grad()
    def elbo() -> None:
        diffusion.elbo(net, x0)

    return interleaved({"sandflow": elbo, "reference": bare})


def plain_ddpm(net: nn.Module, n: int, T: int) -> Callable[[], torch.Tensor]:
    """Algorithm 2 of Ho et al. (2020), linear betas, variance beta-tilde, in plain torch."""
    betas = torch.linspace(1e-4, 0.02, T)
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([torch.ones(1), abar[:-1]])
    sigma = (betas * (1 - abar_prev) / (1 - abar)).sqrt()

    @torch.no_grad()
    def sample() -> torch.Tensor:
        x = torch.randn(n, 2)
        for i in reversed(range(T)):
            eps = net(x, torch.full((n,), i + 1, dtype=torch.long))
            x = (x - betas[i] / (1 - abar[i]).sqrt() * eps) / alphas[i].sqrt()
            if i > 0:
                x = x + sigma[i] * torch.randn_like(x)
        return x

    return sample


def diffusers_ddpm(net: nn.Module, n: int, T: int) -> Callable[[], torch.Tensor]:
    """diffusers' ``DDPMScheduler`` loop; its timesteps are 0-based, the network's 1-based."""
    scheduler = diffusers.DDPMScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        beta_start=1e-4,
        beta_end=0.02,
        variance_type="fixed_small",
        clip_sample=False,
    )
    scheduler.set_timesteps(T)

    @torch.no_grad()
    def sample() -> torch.Tensor:
        x = torch.randn(n, 2)
        for t in scheduler.timesteps:
            eps = net(x, torch.full((n,), int(t) + 1, dtype=torch.long))
            x = scheduler.step(eps, t, x).prev_sample
        return x

    return sample


def sampling_case(n: int = 500, T: int = 1000) -> tuple[Timings, Timings | None]:
    net = MLPDenoiser(2, hidden=(128, 128, 128))
    diffusion = GaussianDiffusion(NoiseSchedule.linear(T))
    ours = torch.no_grad()(lambda: diffusion.sample(net, (n, 2)))
    plain = interleaved({"sandflow": ours, "reference": plain_ddpm(net, n, T)})
    if diffusers is None:
        return plain, None
    return plain, interleaved({"sandflow": ours, "reference": diffusers_ddpm(net, n, T)})


def _row(name: str, result: Timings, target: str) -> list[str]:
    ratio = result.ratio("sandflow", "reference", "run")
    seconds = (f"{result.median(n, 'run'):.3f}" for n in ("sandflow", "reference"))
    return [name, *seconds, f"**{ratio:.2f}x**", target, f"{result.load():.2f}"]


def main() -> str:
    """Run the diffusion benchmark; write and return its markdown section."""
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    mlp = MLPDenoiser(2, hidden=(256, 256, 256))
    toy = elbo_case(GaussianDiffusion(NoiseSchedule.linear(1000)), mlp, torch.randn(256, 2))
    unet = UNet(1, base=16, out_channels=2)
    learned = GaussianDiffusion(
        NoiseSchedule.linear(100, 3.6e-3, 0.2),
        "v",
        "learned",
        decoder="discretized",
        grid_points=17,
    )
    digits = elbo_case(learned, unet, torch.randint(17, (64, 1, 8, 8)) / 8 - 1)
    plain, hub = sampling_case()
    rows = [
        _row(
            "exact ELBO, MLP 3x256 on 2-D, T=1000, batch 256, vs the bare T network calls",
            toy,
            ">= 0.9x",
        ),
        _row(
            "exact ELBO, UNet (base 16) on 1x8x8, T=100, learned variance, discretised decoder, "
            "batch 64, vs the bare T network calls",
            digits,
            ">= 0.9x",
        ),
        _row(
            "sampling, 1,000 ancestral steps, MLP 3x128, 500 points, vs a plain-torch loop",
            plain,
            ">= 1.0x",
        ),
    ]
    if hub is not None:
        rows.append(
            _row(
                f"sampling, same, vs diffusers {diffusers.__version__} DDPMScheduler step loop",
                hub,
                "-",
            )
        )
    versions = f"torch {torch.__version__}, Python {platform.python_version()}" + (
        f", diffusers {diffusers.__version__}" if diffusers is not None else ""
    )
    text = "\n".join(
        [
            "## Diffusion",
            "",
            f"* Machine: {platform.machine()}, {os.cpu_count()} logical cores, "
            f"{platform.system()} {platform.release()}; {versions}",
            f"* {THREADS} torch thread; candidates interleaved round-robin (rotating order) "
            f"after a warm-up, one call each per round, {ROUNDS} rounds (`benchmarks/timing.py`). "
            "Times: median over rounds of the process's CPU seconds per call. Ratio: median over "
            "rounds of reference time / sandflow time in the same round (above 1: sandflow "
            "faster). Wall/CPU near 1 means the machine was not contended.",
            *(
                []
                if diffusers is not None
                else ["* diffusers: not installed (`import diffusers` failed), row skipped."]
            ),
            "",
            table(
                ["benchmark", "sandflow (s)", "reference (s)", "ratio", "target", "wall/CPU"], rows
            ),
            "",
        ]
    )
    RESULTS.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
