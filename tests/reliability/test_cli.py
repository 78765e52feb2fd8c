"""``sandflow demo`` with a bad ``--out`` or Ctrl-C: one line, non-zero status, no stale report."""

import errno
import os
import re
import subprocess
import sys
import types

import pytest

from sandflow import _output, cli
from sandflow.demo.report import write_report


@pytest.fixture
def fake_part(monkeypatch):
    """A demo part that records its calls, writes a figure and then does what ``action`` says."""
    calls = []
    module = types.ModuleType("fake_demo_part")

    def run(out, quick=False):
        calls.append(out)
        (out / "new_figure.png").write_bytes(b"png")
        if module.action == "interrupt":
            raise KeyboardInterrupt
        return [{"model": "m", "data": "d", "metric": "x", "value": 1.0}]

    module.run, module.action, module.calls = run, "finish", calls
    monkeypatch.setitem(sys.modules, "fake_demo_part", module)
    monkeypatch.setitem(cli.PARTS, "kl", "fake_demo_part")
    return module


def _demo(out, capsys):
    status = cli.main(["demo", "--quick", "--parts", "kl", "--out", out])
    return status, capsys.readouterr()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("FILE", r"--out 'FILE' is a file, not a folder"),
        ("FILE/sub", r"--out 'FILE/sub' lies under 'FILE', which is a file, not a folder"),
        ("", r"--out is empty: name a folder \(--out \. for this one\)"),
        ("  ", r"--out is empty"),
    ],
)
def test_an_unusable_out_is_one_line_before_any_training(
    tmp_path, monkeypatch, capsys, fake_part, out, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("not a folder")
    status, printed = _demo(out, capsys)
    assert status == 2 and not fake_part.calls
    assert printed.err.count("\n") == 1 and "Traceback" not in printed.err
    assert printed.err.startswith("sandflow demo: error: ")
    assert re.search(message, printed.err)
    assert sorted(os.listdir(tmp_path)) == ["FILE"]  # nothing written into the current folder


def test_an_unwritable_out_is_noticed_before_training(tmp_path, monkeypatch, capsys, fake_part):
    def refuse(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(_output.tempfile, "TemporaryFile", refuse)
    status, printed = _demo(str(tmp_path / "out"), capsys)
    assert status == 2 and not fake_part.calls
    assert f"cannot write to --out '{tmp_path / 'out'}': Permission denied" in printed.err


def test_a_folder_that_cannot_be_created_is_named(tmp_path, capsys, fake_part):
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    status, printed = _demo("/proc/sandflow-demo/out", capsys)
    assert status == 2 and not fake_part.calls
    assert "cannot write to --out '/proc/sandflow-demo/out': " in printed.err


def test_ctrl_c_is_one_line_and_leaves_no_stale_report(tmp_path, capsys, fake_part):
    (tmp_path / "report.md").write_text("# an old run")
    fake_part.action = "interrupt"
    status, printed = _demo(str(tmp_path), capsys)
    assert status == 130
    assert printed.err == f"sandflow demo: interrupted; no report written to '{tmp_path}'\n"
    assert not (tmp_path / "report.md").exists()  # no old report beside the new figure
    assert (tmp_path / "new_figure.png").exists()


def test_a_finished_run_writes_its_report_and_no_temporary_file(tmp_path, capsys, fake_part):
    (tmp_path / "report.md").write_text("# an old run")
    status, printed = _demo(str(tmp_path), capsys)
    assert status == 0 and printed.err == ""
    assert sorted(os.listdir(tmp_path)) == ["new_figure.png", "report.md"]
    report = (tmp_path / "report.md").read_text()
    assert "| m | d | x | 1.0000 |" in report and "![new_figure.png](new_figure.png)" in report


def test_a_failed_report_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    write_report(tmp_path, [{"model": "old"}], 1.0)
    before = (tmp_path / "report.md").read_text()

    def fail(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_output.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        write_report(tmp_path, [{"model": "new"}], 1.0)
    assert (tmp_path / "report.md").read_text() == before
    assert os.listdir(tmp_path) == ["report.md"]


def test_the_console_script_prints_no_traceback(tmp_path):
    (tmp_path / "FILE").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "sandflow.cli", "demo", "--out", "FILE/sub"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "sandflow demo: error: --out 'FILE/sub' lies under 'FILE', which is a file, not a folder"
    ]
