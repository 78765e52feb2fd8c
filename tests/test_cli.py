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
