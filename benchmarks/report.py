"""Shared reporting for the benchmarks: numbers, markdown tables and verdict lines."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["cell", "number", "table", "verdict"]


def number(value: float) -> str:
    """``12,345`` for large values, ``12.3`` below 100."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def cell(value: float | None, ratio: float | None, missing: str = "n/a") -> str:
    """A table cell: the value, and the speed ratio in brackets when there is one."""
    if value is None:
        return missing
    return number(value) if ratio is None else f"{number(value)} ({ratio:.2f}x)"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: bool = True) -> str:
    """A markdown table; every column but the first right-aligned when ``numeric``."""
    align = "---:|" if numeric else "---|"
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|" + align * (len(header) - 1),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def verdict(target: str, misses: Sequence[str], checked: int = 1) -> str:
    """``**Met**: target`` or ``**Missed**: target, on: ...`` (``checked`` = 0: not measured)."""
    if not checked:
        return f"* **Not measured**: {target}."
    if not misses:
        return f"* **Met**: {target}."
    return f"* **Missed**: {target}; short on " + "; ".join(misses) + "."
