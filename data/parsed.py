"""What a reader hands to validation: parsed rows plus the rows that could not be parsed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import Finding
from .schema import EVENT_DTYPE

__all__ = ["ParsedChunk", "Reject"]


@dataclass(frozen=True)
class Reject:
    """A source row that did not become an event, with the raw record for the quarantine file."""

    finding: Finding
    raw: dict[str, str]


@dataclass
class ParsedChunk:
    """One chunk of a source: the rows that parsed, their 1-based source row numbers, the rejects.

    ``len(events) + len(rejects)`` is the number of source rows this chunk covered, so counts are
    conserved from the file to validation.
    """

    events: np.ndarray
    rows: np.ndarray
    rejects: list[Reject] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.events.dtype != EVENT_DTYPE:
            raise TypeError(f"ParsedChunk.events must have EVENT_DTYPE, got {self.events.dtype}")
        self.rows = np.asarray(self.rows, dtype=np.int64)
        if self.rows.shape != (len(self.events),):
            raise ValueError(
                f"ParsedChunk.rows must have one row number per event: "
                f"{self.rows.shape} vs {len(self.events)} events"
            )

    @property
    def rows_in(self) -> int:
        return len(self.events) + len(self.rejects)
