"""Every example script runs to the end in its quick mode."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


def test_examples_are_found():
    assert {p.name for p in EXAMPLES} >= {"flow_guides.py", "flow_prior.py"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_quickly(script):
    env = {**os.environ, "SANDFLOW_QUICK": "1", "PYTHONWARNINGS": "error"}
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gap" in result.stdout
