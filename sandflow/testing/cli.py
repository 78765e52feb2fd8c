"""``sandflow check MODULE:FACTORY``: the kit's report for a transform from the command line.

``FACTORY`` is a zero-argument callable in ``MODULE`` (imported from the
current directory or the path) that returns an unconditional transform, or a
registry :class:`~sandflow.testing.registry.Entry`, which brings its event
shape, perturbation and triangular claim. The exit status is 0 when no check
fails, 1 when one does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sandflow.testing.check import domain_inputs, inspect_bijector, perturb
from sandflow.testing.registry import Entry

__all__ = ["add_parser", "load_factory", "run"]


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--event-shape takes comma-separated sizes like 3,32,32, got {text!r}"
        ) from error


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``check`` subcommand on the ``sandflow`` parser."""
    parser = commands.add_parser(
        "check",
        help="run every property check on a transform and print the report",
        description=__doc__,
    )
    parser.add_argument("target", help="MODULE:FACTORY, e.g. mypackage.flows:make_flow")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--batch", type=int, default=4, help="batch entries (default 4)")
    parser.add_argument(
        "--event-shape", type=_shape, default=None, help="event shape of the inputs, e.g. 3,32,32"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="input scale (default 1)")
    parser.add_argument("--perturb", type=float, default=None, help="perturb parameters by this")
    parser.add_argument("--no-inverse", action="store_true", help="a forward-only transform")
    parser.add_argument("--triangular", action="store_true", help="claim a triangular Jacobian")
    parser.add_argument("--compile", action="store_true", help="also check torch.compile")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def load_factory(target: str) -> Any:
    """``"package.module:name"`` -> the object ``name`` of the imported module."""
    module_name, sep, name = target.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"target must look like MODULE:FACTORY, got {target!r}")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module(module_name)
    try:
        return getattr(module, name)
    except AttributeError as error:
        raise ValueError(f"module {module_name!r} has no attribute {name!r}") from error


def run(args: argparse.Namespace) -> int:
    """Build, check and print; return 0 if no check failed, 1 otherwise."""
    torch.manual_seed(args.seed)
    made = load_factory(args.target)
    if callable(made) and not isinstance(made, (nn.Module, torch.distributions.Transform)):
        made = made()
    event_shape, scale, triangular = args.event_shape, args.perturb, args.triangular
    if isinstance(made, Entry):
        event_shape = made.event_shape if event_shape is None else event_shape
        scale = made.perturbation if scale is None else scale
        triangular = triangular or made.triangular
        made = made.factory()
    if not isinstance(made, (nn.Module, torch.distributions.Transform)):
        raise SystemExit(
            f"{args.target} gave a {type(made).__name__}; expected a torch Transform, "
            "a module returning one, or a registry Entry"
        )
    if scale is not None and isinstance(made, nn.Module):
        perturb(made, scale=scale)
    dtype = getattr(torch, args.dtype)
    if isinstance(made, nn.Module):
        made = made.to(dtype=dtype, device=args.device)
    if event_shape is None:
        if made.domain.event_dim:
            raise SystemExit(
                f"{type(made).__name__} has event_dim={made.domain.event_dim}: "
                "pass --event-shape, e.g. --event-shape 3,32,32"
            )
        event_shape = ()
    x = domain_inputs(
        made,
        event_shape,
        batch_shape=(args.batch,),
        scale=args.scale,
        dtype=dtype,
        device=args.device,
        generator=torch.Generator().manual_seed(args.seed),
    )
    report = inspect_bijector(
        made, x, inverse=not args.no_inverse, triangular=triangular, compile=args.compile
    )
    print(report)
    return 0 if report.passed else 1
