"""The verdict of the kit: one named result per property, printable as a table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CheckResult", "Report"]

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    """One property of a transform: its verdict, measured error and tolerance.

    Attributes:
        name: short name (``"round_trip_x"``), also the test name in
            :class:`~sandflow.testing.BijectorSuite`.
        description: what was checked, as a formula (``"inverse(forward(x)) == x"``).
        status: ``"passed"``, ``"failed"`` or ``"skipped"``.
        error: the measured error (largest absolute deviation), when one was measured.
        tolerance: the largest error allowed at the worst value, when one applies.
        detail: why it failed or was skipped, or how it was measured.
    """

    name: str
    description: str
    status: Status
    error: float | None = None
    tolerance: float | None = None
    detail: str = ""

    @property
    def message(self) -> str:
        """``name: description: detail (error ..., tolerance ...)`` on one line."""
        numbers = ""
        if self.error is not None:
            numbers = f" (error {self.error:.3g}"
            numbers += f", tolerance {self.tolerance:.3g})" if self.tolerance is not None else ")"
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.name}: {self.description}{detail}{numbers}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2e}"


@dataclass
class Report:
    """Every check of one transform, in order; ``str(report)`` is the table.

    Example:
        >>> from sandflow.testing import inspect_bijector
        >>> report = inspect_bijector(
        ...     torch.distributions.ExpTransform(), torch.randn(4, dtype=torch.float64)
        ... )
        >>> report.passed, report["round_trip_x"].status
        (True, 'passed')
    """

    transform: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r}; checks: {[r.name for r in self.results]}")

    @property
    def passed(self) -> bool:
        """True when no check failed (skipped checks do not fail a report)."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks, in order."""
        return [r for r in self.results if r.status == "failed"]

    def count(self, status: Status) -> int:
        """Number of checks with ``status``."""
        return sum(r.status == status for r in self.results)

    def summary(self) -> str:
        """``"11 passed, 1 failed, 2 skipped"``."""
        return ", ".join(f"{self.count(s)} {s}" for s in ("passed", "failed", "skipped"))

    def table(self) -> str:
        """A fixed-width table: check, status, error, tolerance, detail."""
        header = ("check", "status", "error", "tolerance", "detail")
        rows = [header] + [
            (r.name, r.status, _number(r.error), _number(r.tolerance), r.detail or r.description)
            for r in self.results
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
            + "  "
            + row[4]
            for row in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        title = f"{self.transform}: {self.summary()} in {self.seconds:.2f} s"
        return "\n".join([title, *(line.rstrip() for line in lines)])

    def __str__(self) -> str:
        return self.table()
