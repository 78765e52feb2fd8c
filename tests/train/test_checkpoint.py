"""Checkpoints: bit-identical resume after SIGKILL, atomic writes, refusal of another run's."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import sandflow
from sandflow.train import checkpoint, fit
from tests.train import jobs

ROOT = Path(__file__).parents[2]


def kill_at(out, stop_at):
    """Run the resume job in a subprocess, SIGKILL it at its ``stop_at``-th loss call."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(
        [sys.executable, "-m", "tests.train.jobs", str(out), str(stop_at)], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 120
    while not (out / "stopped").exists():
        assert job.poll() is None, "the job ended before reaching the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(job.pid, signal.SIGKILL)
    job.wait()


def test_resume_after_sigkill_is_bit_identical_to_an_uninterrupted_run(tmp_path, one_thread):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    killed.mkdir()
    kill_at(killed, stop_at=26)  # step 25: after the checkpoint at 20, before the one at 30
    saved = checkpoint.load(killed / "checkpoint.pt")  # intact, and read with weights_only=True
    assert saved["step"] == 20
    assert saved["data"] == {"step": 20, "epoch": 3, "batch": 2}  # 6 batches of 32 in 200
    assert [p.name for p in killed.iterdir() if p.name.endswith(".tmp")] == []
    resumed = jobs.resume_job(killed)
    reference = jobs.resume_job(whole)
    assert resumed.step == reference.step == 40
    for mine, theirs in ((resumed.module, reference.module), (resumed.ema, reference.ema)):
        for (name, a), b in zip(
            mine.state_dict().items(), theirs.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), name
    rows = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [5, 10, 15, 20, 25, 30, 35, 40]
    whole_rows = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [row["loss"] for row in rows] == [row["loss"] for row in whole_rows]


def test_a_write_interrupted_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save({"step": 1, "weights": torch.ones(3)}, path)

    def crash(obj, file):
        file.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"step": 2, "weights": torch.zeros(3)}, path)
    assert checkpoint.load(path)["step"] == 1


def flow_run(out, **kwargs):
    torch.manual_seed(0)
    flow = sandflow.flows.realnvp(2, layers=2, hidden=kwargs.pop("hidden", (8,)))
    settings = {"steps": 2, "batch_size": 8, "out": out, "progress": False, **kwargs}
    return fit(flow, jobs.nll, torch.randn(16, 2), **settings)


def test_resuming_another_config_or_model_is_refused_naming_the_difference(tmp_path):
    flow_run(tmp_path)
    with pytest.raises(ValueError, match=r"lr is 0\.002 here but 0\.001 in the checkpoint"):
        flow_run(tmp_path, resume=True, lr=2e-3)
    with pytest.raises(ValueError, match=r"bijector\.parts\.0\.\S+ has shape \[\d+(, \d+)?\] here"):
        flow_run(tmp_path, resume=True, hidden=(16,))
    with pytest.raises(FileExistsError, match="resume=True continues that run"):
        flow_run(tmp_path)
    assert flow_run(tmp_path, resume=True).step == 2  # done already: nothing to do
