"""``sandflow train``: smoke runs for a flow and for diffusion; one-line errors for bad input."""

import json

import numpy as np
import pytest
import torch

from sandflow.cli import main


def train(*args):
    return main(["train", *args, "--log-every", "2"])


def check_outputs(out, steps):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == steps and all(np.isfinite(row["loss"]) for row in rows)
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == steps and checkpoint["ema"] is not None
    assert (out / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_a_flow_trains_on_a_toy_density_and_resumes(tmp_path, capsys, one_thread):
    args = [
        "realnvp",
        "--data",
        "moons",
        "--steps",
        "6",
        "--batch-size",
        "64",
        "--hidden",
        "8",
        "--layers",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert train(*args) == 0
    check_outputs(tmp_path, 6)
    assert "step 6: wrote" in capsys.readouterr().out
    assert train(*args, "--resume") == 0  # finished already
    capsys.readouterr()
    assert train(*args, "--resume", "--lr", "0.01") == 2
    error = capsys.readouterr().err.strip()
    assert "lr is 0.01 here but 0.001 in the checkpoint" in error and "\n" not in error


@pytest.mark.parametrize(
    "args",
    [
        ["diffusion", "--data", "digits", "--batch-size", "16", "--timesteps", "5"],
        ["cnf", "--data", "eight_gaussians", "--batch-size", "32"],
        ["maf", "--data", "{tmp}/points.npy", "--batch-size", "32", "--layers", "1"],
    ],
    ids=["diffusion_on_digits", "continuous_flow_by_flow_matching", "flow_on_a_user_file"],
)
def test_a_model_trains_for_two_steps(tmp_path, one_thread, args):
    np.save(tmp_path / "points.npy", np.random.default_rng(0).normal(size=(64, 3)))
    argv = [arg.format(tmp=tmp_path) for arg in args]
    assert train(*argv, "--steps", "2", "--hidden", "8", "--out", str(tmp_path / "out")) == 0
    check_outputs(tmp_path / "out", 2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "pixelcnn"}, "unknown model 'pixelcnn'; choose from realnvp, nsf, maf, glow"),
        ({"--data": "missing.npy"}, "--data file 'missing.npy' not found"),
        ({"--data": "mnist"}, "unknown --data 'mnist': expected a toy density"),
        ({"--out": "{tmp}/file.txt/out"}, "cannot write to --out"),
        ({"model": "glow"}, "glow needs (C, H, W) images, got examples of shape (2,)"),
        ({"model": "glow", "--data": "digits", "--batch-size": "0"}, "batch_size must be in 1.."),
    ],
)
def test_bad_arguments_exit_with_one_clear_line_before_training(tmp_path, capsys, change, message):
    (tmp_path / "file.txt").write_text("")
    args = {"model": "realnvp", "--data": "moons", "--out": str(tmp_path / "out"), **change}
    argv = [args.pop("model")] + [str(v).format(tmp=tmp_path) for kv in args.items() for v in kv]
    assert train(*argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().count("\n") == 0
    assert captured.err.startswith("sandflow train: error: ") and message in captured.err
    assert not (tmp_path / "out" / "checkpoint.pt").exists()
