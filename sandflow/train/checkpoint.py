"""Checkpoints: written atomically, read with ``weights_only=True``, checked before a resume.

A checkpoint is one ``torch.save`` dict: ``step``, ``settings`` (the run's
hyperparameters and the caller's ``config``), ``model``, ``ema``,
``optimizer``, ``scheduler``, ``scaler`` (state dicts), ``rng`` (one entry
per rank: torch, CUDA, numpy and Python generators) and ``data`` (the data
position, epoch and batch, which the loop derives from the step). It holds
only tensors and plain Python values, so ``torch.load(path,
weights_only=True)`` reads it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["check_resumable", "load", "restore_rng", "rng_state", "save"]


def save(state: Mapping[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file, flushed, then ``os.replace``.

    A process killed at any moment leaves either the previous file or the new
    one, never a partial file, under ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as file:
        torch.save(dict(state), file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU with ``torch.load(weights_only=True)``."""
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state() -> dict[str, Any]:
    """This process's generator states: torch (CPU and CUDA), numpy and Python's ``random``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }


def restore_rng(state: Mapping[str, Any]) -> None:
    """Set the generators to a state saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _shapes(state_dict: Mapping[str, Any]) -> dict[str, list[int]]:
    return {name: list(value.shape) for name, value in state_dict.items()}


def _names(names: set[str]) -> str:
    listed = ", ".join(sorted(names)[:3])
    return listed + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_resumable(
    checkpoint: Mapping[str, Any], settings: Mapping[str, Any], module: nn.Module, path: Path
) -> None:
    """Raise ``ValueError`` naming each difference between the checkpoint's run and this one."""
    differences = []
    saved = checkpoint["settings"]
    for key in sorted(set(saved) | set(settings)):
        there, here = saved.get(key, "unset"), settings.get(key, "unset")
        if there != here:
            differences.append(f"{key} is {here!r} here but {there!r} in the checkpoint")
    there, here = _shapes(checkpoint["model"]), _shapes(module.state_dict())
    if set(there) - set(here):
        differences.append(f"the checkpoint's model has {_names(set(there) - set(here))}")
    if set(here) - set(there):
        differences.append(f"this model has {_names(set(here) - set(there))}, the checkpoint not")
    differences += [
        f"{name} has shape {here[name]} here but {there[name]} in the checkpoint"
        for name in sorted(set(there) & set(here))
        if there[name] != here[name]
    ]
    if differences:
        raise ValueError(
            f"cannot resume from {path}: a different model or config: " + "; ".join(differences)
        )
