"""The ``sandflow`` command: ``sandflow demo`` fits the models and writes figures and a report."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

import torch

from sandflow import __version__
from sandflow._output import OutputFolderError, output_folder
from sandflow.demo.report import REPORT, markdown_table, write_report
from sandflow.testing import cli as check_command
from sandflow.train import command as train_command

__all__ = ["main"]

PARTS = {
    "flows": "sandflow.demo.flows",
    "diffusion": "sandflow.demo.diffusion",
    "kl": "sandflow.demo.kl",
    "continuous": "sandflow.demo.continuous",
}


def _demo(args: argparse.Namespace) -> int:
    """Run ``sandflow demo``; a bad ``--out`` or Ctrl-C ends it with one line on stderr."""
    try:
        out = output_folder(args.out)
    except OutputFolderError as error:
        print(f"sandflow demo: error: {error}", file=sys.stderr)
        return 2
    # a report left by an earlier run would sit beside this run's figures
    (out / REPORT).unlink(missing_ok=True)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    rows: list[dict] = []
    try:
        for part in args.parts:
            print(f"== {part}", flush=True)
            rows += importlib.import_module(PARTS[part]).run(out, quick=args.quick)
    except KeyboardInterrupt:
        print(f"sandflow demo: interrupted; no report written to {str(out)!r}", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - start
    print(markdown_table(rows))
    print(f"\nwrote {write_report(out, rows, seconds)} and {len(list(out.glob('*.png')))} figures")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sandflow`` console script."""
    parser = argparse.ArgumentParser(prog="sandflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sandflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit flows and diffusion; write figures and report.md")
    demo.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    demo.add_argument("--quick", action="store_true", help="a few steps each: a smoke run")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--parts",
        nargs="+",
        choices=sorted(PARTS),
        default=list(PARTS),
        help="which parts to run (default: all)",
    )
    train_command.add_parser(commands)
    check_command.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "check":
        return check_command.run(args)
    if args.command == "train":
        return train_command.run(args)
    return _demo(args)


if __name__ == "__main__":
    raise SystemExit(main())
