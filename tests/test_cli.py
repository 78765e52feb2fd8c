import subprocess
import sys

import sandflow
from sandflow.cli import main


def test_quick_flow_demo_writes_table_figures_and_report(tmp_path, capsys):
    assert main(["demo", "--quick", "--parts", "flows", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| realnvp | eight_gaussians | KL gap (nats) |" in printed
    assert "| glow | digits | test bits/dim |" in printed
    names = {p.name for p in tmp_path.glob("*.png")}
    assert {"flow_eight_gaussians.png", "flow_moons.png", "glow_digits_samples.png"} <= names
    report = (tmp_path / "report.md").read_text()
    assert "![flow_moons.png](flow_moons.png)" in report


def test_check_prints_the_report_and_exits_by_verdict(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_transforms.py").write_text(
        "import torch\n"
        "from sandflow.testing.registry import REGISTRY\n"
        "def good():\n    return REGISTRY['affine_coupling']\n"
        "class Wrong(torch.distributions.ExpTransform):\n"
        "    def log_abs_det_jacobian(self, x, y):\n        return -x\n"
        "def bad():\n    return Wrong()\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["check", "my_transforms:good", "--batch", "3"]) == 0
    printed = capsys.readouterr().out
    assert "AffineCoupling: 13 passed, 0 failed, 1 skipped" in printed
    assert "triangular          passed" in printed
    assert main(["check", "my_transforms:bad", "--dtype", "float32"]) == 1
    assert "log_det             failed" in capsys.readouterr().out


def test_python_dash_m_sandflow_runs_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "sandflow", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"sandflow {sandflow.__version__}"
