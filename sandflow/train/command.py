"""``sandflow train``: train a built-in model on built-in or own data, under torchrun or not.

Writes ``checkpoint.pt``, ``metrics.jsonl`` and ``samples.png`` (from the
EMA weights) to ``--out``; ``--resume`` continues the checkpoint there. The
same command runs in one process and under ``torchrun --nproc_per_node N``
(``--nnodes``/``--rdzv-endpoint`` for several machines); ``--batch-size`` is
the global batch, split between the processes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sandflow import data as datasets
from sandflow import flows
from sandflow.diffusion import GaussianDiffusion, NoiseSchedule
from sandflow.matching import flow_matching_loss
from sandflow.nn.denoisers import MLPDenoiser, UNet
from sandflow.train.loop import Run, fit

__all__ = ["add_parser", "run"]

MODELS = ("realnvp", "nsf", "maf", "glow", "cnf", "diffusion")


class UsageError(Exception):
    """A bad argument, reported in one line before any training."""


@dataclass
class Job:
    """A model, its loss and data, and how to draw and show samples."""

    module: nn.Module
    loss: Callable[[nn.Module, Any], Tensor]
    data: Any
    sample: Callable[[nn.Module, int], Tensor]
    to_unit: Callable[[Tensor], Tensor]  # images to [0, 1] for the figure
    shape: tuple[int, ...]


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register the ``train`` subcommand on the ``sandflow`` parser."""
    parser = commands.add_parser(
        "train",
        help="train a model; runs unchanged under torchrun",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("model", help=f"one of {', '.join(MODELS)}")
    parser.add_argument(
        "--data",
        required=True,
        help=f"a toy density ({', '.join(datasets.TOY_NAMES)}), digits, or a .npy/.pt file of "
        "examples: (N, D) vectors or (N, C, H, W) images",
    )
    parser.add_argument("--out", default="train-output", help="folder for checkpoint and logs")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="the GLOBAL batch: each of N torchrun processes trains on batch-size / N",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay)")
    parser.add_argument("--warmup", type=int, default=0, help="steps of linear warm-up")
    parser.add_argument("--clip", type=float, default=10.0, help="gradient-norm clip")
    parser.add_argument("--ema", type=float, default=0.995, help="EMA decay of the weights")
    parser.add_argument("--precision", default="float32", choices=("float32", "bf16", "fp16"))
    parser.add_argument("--hidden", type=int, default=64, help="network width (UNet: base)")
    parser.add_argument("--layers", type=int, default=None, help="flow layers (glow: steps)")
    parser.add_argument("--timesteps", type=int, default=100, help="diffusion steps T")
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--device",
        default=None,
        help="default: cuda (cuda:LOCAL_RANK under torchrun) if available, else cpu",
    )


def _load(spec: str, batch_size: int) -> tuple[Any, tuple[int, ...], str]:
    """The data of ``--data``: (a tensor or a step -> batch callable, example shape, kind)."""
    if spec in datasets.TOY_NAMES:
        density = datasets.toy(spec)
        return (lambda step: density.sample((batch_size,))), (2,), "toy"
    if spec == "digits":
        return datasets.digits().train, (1, 8, 8), "digits"
    path = Path(spec)
    if path.suffix not in (".npy", ".pt"):
        raise UsageError(
            f"unknown --data {spec!r}: expected a toy density ({', '.join(datasets.TOY_NAMES)}), "
            "digits, or a .npy or .pt file"
        )
    if not path.is_file():
        raise UsageError(f"--data file {spec!r} not found")
    try:
        array = np.load(path) if path.suffix == ".npy" else torch.load(path, weights_only=True)
        tensor = torch.as_tensor(array, dtype=torch.float32)
    except Exception as error:  # any unreadable file is a usage error, reported in one line
        raise UsageError(f"cannot read --data {spec!r}: {error}") from error
    if tensor.dim() not in (2, 4) or len(tensor) < 2:
        raise UsageError(
            f"--data {spec!r} has shape {tuple(tensor.shape)}: expected (N, D) or (N, C, H, W)"
        )
    return tensor, tuple(tensor.shape[1:]), "file"


def _flow(name: str, shape: tuple[int, ...], args: argparse.Namespace) -> nn.Module:
    if name == "glow":
        if len(shape) != 3:
            raise UsageError(f"glow needs (C, H, W) images, got examples of shape {shape}")
        try:
            return flows.glow(shape, steps=args.layers or 4, hidden=args.hidden)
        except ValueError as error:
            raise UsageError(str(error)) from error
    if len(shape) != 1:
        raise UsageError(f"{name} needs (N, D) vectors, got examples of shape {shape}: use glow")
    hidden = (args.hidden, args.hidden)
    if name == "cnf":
        return flows.cnf(shape[0], hidden=hidden)
    layers = {"layers": args.layers} if args.layers else {}
    return getattr(flows, name)(shape[0], hidden=hidden, **layers)


def _job(args: argparse.Namespace) -> Job:
    if args.model not in MODELS:
        raise UsageError(f"unknown model {args.model!r}; choose from {', '.join(MODELS)}")
    source, shape, kind = _load(args.data, args.batch_size)
    # digits are grey levels: flows see them dequantised to [-0.5, 0.5), diffusion on [-1, 1]
    low, high = (source.min().item(), source.max().item()) if kind == "file" else (0.0, 1.0)
    if args.model == "diffusion":
        prepare = (lambda x: x * (2 / 16) - 1) if kind == "digits" else (lambda x: x)
        diffusion = GaussianDiffusion(NoiseSchedule.cosine(args.timesteps), "v", "beta")
        images = len(shape) == 3
        hidden = (args.hidden,) * 3
        net = UNet(shape[0], base=args.hidden) if images else MLPDenoiser(shape[0], hidden=hidden)
        return Job(
            net,
            lambda model, x: diffusion.to(x.device).loss(model, prepare(x)),
            source,
            lambda model, n: diffusion.sample(model, (n, *shape)),
            lambda x: (x + 1) / 2 if kind == "digits" else (x - low) / (high - low),
            shape,
        )
    flow = _flow(args.model, shape, args)

    def prepare(x: Tensor) -> Tensor:
        return datasets.dequantize(x) - 0.5 if kind == "digits" else x

    to_unit = (lambda x: x + 0.5) if kind == "digits" else (lambda x: (x - low) / (high - low))
    if args.model == "cnf":  # flow matching trains the vector field alone, without ODE solves
        field = flow.bijector.vector_field

        def sample(trained: nn.Module, n: int) -> Tensor:
            field.load_state_dict(trained.state_dict())
            return flow().sample((n,))

        return Job(field, lambda v, x: flow_matching_loss(v, x), source, sample, to_unit, shape)
    return Job(
        flow,
        lambda model, x: -model().log_prob(prepare(x)).mean(),
        source,
        lambda model, n: model().sample((n,)),
        to_unit,
        shape,
    )


def _writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise UsageError(f"cannot write to --out {str(out)!r}: {error.strerror}") from error


def _figure(job: Job, run: Run, path: Path) -> None:
    from sandflow import plot  # needs matplotlib, the [plot] extra

    with torch.no_grad():
        model = run.model.eval()
        samples = job.sample(model, 64 if len(job.shape) == 3 else 1000).float().cpu()
    if len(job.shape) == 3:
        figure = plot.image_grid(job.to_unit(samples[:, :1]).clamp(0, 1), title="samples (EMA)")
    else:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(4, 4), layout="constrained")
        ax = figure.subplots()
        ax.scatter(samples[:, 0], samples[:, -1], s=2, alpha=0.5)
        ax.set_title("samples (EMA)")
    figure.savefig(path, dpi=110)


def run(args: argparse.Namespace) -> int:
    """Run ``sandflow train``; bad arguments exit with status 2 and one line on stderr."""
    out = Path(args.out)
    torch.manual_seed(args.seed)  # the model's initial weights
    try:
        job = _job(args)
        _writable(out)
        one_process = int(os.environ.get("WORLD_SIZE", "1")) == 1
        device = args.device or ("cuda" if one_process and torch.cuda.is_available() else None)
        config = {
            "model": args.model,
            "data": args.data,
            "hidden": args.hidden,
            "layers": args.layers,
            "timesteps": args.timesteps,
        }
        result = fit(
            job.module,
            job.loss,
            job.data,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            warmup=args.warmup,
            clip=args.clip,
            ema=args.ema,
            precision=args.precision,
            device=device,
            out=out,
            checkpoint_every=args.checkpoint_every,
            log_every=args.log_every,
            resume=args.resume,
            seed=args.seed,
            config=config,
            progress=f"{args.model} on {args.data}",
        )
    except (UsageError, ValueError, FileExistsError, FloatingPointError) as error:
        print(f"sandflow train: error: {error}", file=sys.stderr)
        return 2
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return 0
    _figure(job, result, out / "samples.png")
    print(f"step {result.step}: wrote {out / 'checkpoint.pt'}, metrics.jsonl and samples.png")
    return 0
