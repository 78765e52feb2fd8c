"""``make gpu-check``: the property harness and the kit on GPU tensors, in one short run.

Runs, on ``--device`` (default ``cuda``), the whole property harness
(``tests/bijectors/test_properties.py``, every registry entry, float32 and
float64) and ``tests/testing``, then the kit on a perturbed 3x32x32 Glow
(exact 3072x3072 Jacobians), and prints a summary. ``--device cpu`` is a dry
run of the same script on a machine without a GPU.

Usage: ``python -m benchmarks.gpu_check [--device cuda] [--glow-batch 2]``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

import torch

from sandflow import flows
from sandflow.testing import domain_inputs, inspect_bijector, perturb


def _pytest(device: str, dtype: str) -> tuple[str, float]:
    start = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/bijectors/test_properties.py",
        "tests/testing",
        f"--device={device}",
        f"--dtype={dtype}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return (lines[-1] if lines else done.stderr.strip()[-300:]), time.perf_counter() - start


def _glow(device: str, batch: int) -> str:
    torch.manual_seed(0)
    bijector = perturb(flows.glow((3, 32, 32), levels=2, steps=4, hidden=128).bijector, 0.01)
    dtype = torch.float64 if device.startswith("cuda") else torch.float32  # CPU: a dry run
    bijector = bijector.to(device=device, dtype=dtype)
    x = domain_inputs(bijector, (3, 32, 32), batch_shape=(batch,), dtype=dtype)
    report = inspect_bijector(
        bijector,
        x.to(device),
        checks=[
            "shapes",
            "round_trip_x",
            "log_det",
            "inverse_log_det",
            "batch_independence",
            "gradients",
            "device",
        ],
    )
    print(report, flush=True)
    return f"{report.summary()} in {report.seconds:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--glow-batch", type=int, default=None, help="default: 2 on CUDA, 1 on CPU")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu for a dry run", file=sys.stderr)
        return 2
    start = time.perf_counter()
    summary = []
    for dtype in ("float32", "float64"):
        line, seconds = _pytest(args.device, dtype)
        print(f"harness {dtype}: {line} ({seconds:.0f} s)", flush=True)
        summary.append((f"harness {dtype} on {args.device}", line, seconds))
    glow_start = time.perf_counter()
    batch = args.glow_batch or (2 if args.device.startswith("cuda") else 1)
    line = _glow(args.device, batch)
    summary.append(
        (f"kit on glow 3x32x32 (batch {args.glow_batch})", line, time.perf_counter() - glow_start)
    )
    print(f"\n== gpu-check summary ({time.perf_counter() - start:.0f} s, device {args.device})")
    if args.device.startswith("cuda"):
        print(torch.cuda.get_device_name())
    for name, line, seconds in summary:
        print(f"{name:42s} {line}  [{seconds:.0f} s]")
    failed = any(re.search(r"\b[1-9]\d* (failed|error)", line) for _, line, _ in summary)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
