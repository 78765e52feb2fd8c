"""Run every benchmark module present and write ``benchmarks/results.md``.

Each module ``benchmarks.<name>`` exposes ``main()``; it returns its markdown
section (or writes ``benchmarks/results_<name>.md``, which is read back).
Modules that are not present, or whose dependencies are missing, are listed
as skipped. Usage: ``python -m benchmarks.run`` (``make bench``).
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import os
import platform
import time
import traceback
from pathlib import Path

import torch

MODULES = ("flows", "diffusion", "vi", "continuous", "train")
PACKAGES = ("torch", "pyro-ppl", "numpy", "zuko", "nflows", "normflows")
HERE = Path(__file__).parent
_DEFAULT_THREADS = torch.get_num_threads()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment() -> str:
    """A markdown header: machine, core count, threads, library versions and date."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()} logical cores" + (f" ({usable} usable)" if usable else "")
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"* Machine: {_cpu_model()}, {cores}, {platform.system()} {platform.release()}",
            f"* Python {platform.python_version()}; {versions}",
            f"* torch threads: {_DEFAULT_THREADS} by default; each benchmark states what it "
            f"sets. CUDA {'available' if torch.cuda.is_available() else 'not used'}",
            f"* Date: {today}",
        ]
    )


def _run_module(name: str) -> str:
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ImportError as error:
        if error.name == f"benchmarks.{name}":
            return ""
        return f"## {name}\n\nSkipped: cannot import `{error.name}` ({error}).\n"
    start = time.perf_counter()
    try:
        section = module.main()
    except Exception:  # one failing benchmark must not hide the others
        return f"## {name}\n\nFailed:\n\n```\n{traceback.format_exc()}```\n"
    finally:
        torch.set_num_threads(_DEFAULT_THREADS)
    if not isinstance(section, str):
        written = HERE / f"results_{name}.md"
        section = written.read_text() if written.exists() else f"## {name}\n\n(no output)\n"
    print(f"benchmarks.{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return section.strip() + "\n"


def main() -> None:
    """Run the benchmarks present and write ``benchmarks/results.md``."""
    header = environment()
    sections = [s for s in (_run_module(name) for name in MODULES) if s]
    text = "# sandflow benchmarks\n\n" + header + "\n\n" + "\n".join(sections)
    (HERE / "results.md").write_text(text)
    print(f"wrote {HERE / 'results.md'}")


if __name__ == "__main__":
    main()
