"""The demo's results table, printed and written as ``report.md``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sandflow._output import write_atomically

__all__ = ["REPORT", "markdown_table", "write_report"]

COLUMNS = ("model", "data", "metric", "value", "reference")
REPORT = "report.md"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def markdown_table(rows: Sequence[dict]) -> str:
    """Rows ``{"model", "data", "metric", "value", "reference"?}`` as a markdown table.

    Example:
        >>> print(markdown_table([{"model": "m", "data": "d", "metric": "x", "value": 1.0}]))
        | model | data | metric | value | reference |
        |---|---|---|---|---|
        | m | d | x | 1.0000 |  |
    """
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines)


def write_report(out: Path, rows: Sequence[dict], seconds: float) -> Path:
    """Write ``out/report.md``: the table and every PNG in ``out``; return its path.

    The file is replaced atomically (a temporary file, then ``os.replace``), so
    an interrupted run never leaves half a report.
    """
    figures = sorted(p.name for p in out.glob("*.png"))
    text = [
        "# sandflow demo",
        "",
        f"Run time: {seconds:.0f} s on the CPU. KL gap = test NLL - true entropy = KL(p || q);",
        "bits/dim are for the 17-level digits dequantised to [0, 1).",
        "",
        markdown_table(rows),
        "",
    ]
    text += [f"![{name}]({name})\n" for name in figures]
    return write_atomically(out / REPORT, "\n".join(text))
