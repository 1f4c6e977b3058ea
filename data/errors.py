"""Findings about bad input, and the error that carries them.

A :class:`Finding` names the file, row, field, the value received, what is wrong and the fix.
Row numbers are 1-based data rows of the source (the header is not counted), so "row 3" is the
third record a user sees below the header in a spreadsheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

__all__ = ["DataError", "Finding", "TickguardWarning"]


class TickguardWarning(UserWarning):
    """Base class of every warning tickguard emits (tests turn these into errors)."""


@dataclass(frozen=True)
class Finding:
    """One problem in the input.

    ``code`` is a stable machine-readable id (e.g. ``"crossed_quote"``); ``row`` is ``None`` for
    findings about the whole file (missing file, missing column).
    """

    code: str
    file: str
    row: int | None
    field: str | None
    value: object
    message: str
    fix: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.field is not None:
            where += f", field {self.field!r}"
        return f"{where}: {self.message} (got {self.value!r}). Fix: {self.fix} [{self.code}]"

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "file": self.file,
            "row": self.row,
            "field": self.field,
            "value": repr(self.value) if not isinstance(self.value, (int, float, str)) else self.value,
            "message": self.message,
            "fix": self.fix,
        }


class DataError(ValueError):
    """Bad input data. ``findings`` holds every problem collected before raising (at least one);
    ``more`` counts findings beyond those listed (strict mode stops collecting after N)."""

    def __init__(self, findings: Iterable[Finding] | Finding, more: int = 0) -> None:
        self.findings = [findings] if isinstance(findings, Finding) else list(findings)
        if not self.findings:
            raise ValueError("DataError needs at least one Finding")
        self.more = more
        super().__init__(self._text())

    def __reduce__(self):  # picklable across Dask workers
        return (type(self), (self.findings, self.more))

    def _text(self) -> str:
        lines = [str(f) for f in self.findings]
        if len(lines) == 1 and not self.more:
            return lines[0]
        head = f"{len(self.findings) + self.more} problem(s) in input data"
        tail = [f"... and {self.more} more"] if self.more else []
        return "\n  ".join([head + ":", *lines, *tail])

    def __str__(self) -> str:
        return self._text()
