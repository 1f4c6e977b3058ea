"""Validation of parsed event chunks: strict (stop with a precise error) or quarantine (set aside).

Why: a backtest on bad ticks gives confident wrong answers. Every source row either reaches the
engine or is reported with its row number, field, value and a fix — never dropped silently — and
the counts add up: ``rows_in == rows_accepted + rows_quarantined`` (rows are *source* rows; a bar
row is four events but one row).

:class:`Validator` is fed :class:`~tickguard.data.parsed.ParsedChunk` objects in file order and
keeps the state that spans chunks (running maximum of ``ts_local``, the previous accepted row), so
a file validates the same whatever the chunk size. The checks themselves live in
:mod:`tickguard.data.checks`.

Modes:

* ``"strict"`` — raise :class:`DataError` once ``max_findings`` findings are collected (default 1:
  the first). Reading stops there, so the error says "at least" N problems. Parse rejects from the
  reader count as findings. If the whole input has fewer, :meth:`Validator.finish` raises with all.
* ``"quarantine"`` — bad rows go to a CSV file as they arrive (bounded memory) and the run goes on.
  A row with several problems is written **once**: ``code`` holds all its codes joined by ``";"``
  (first appearance order), ``field``/``value``/``message``/``fix`` describe the first one.
  ``counts_by_code`` counts findings, so it may sum to more than ``rows_quarantined``.

``duplicates="flag"`` (default) quarantines a row identical in every field to the previous accepted
row; ``"allow"`` keeps it — real feeds can print two identical trades in the same nanosecond
(two fills of one order at one price), so identity is suspicious, not proof.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import (
    CODES,
    HITS_DTYPE,
    TIME_UNITS,
    describe,
    duplicate_groups,
    group_starts,
    out_of_order,
    plausible_window,
    stateless_checks,
)
from .errors import DataError, Finding
from .parsed import ParsedChunk
from .schema import EVENT_DTYPE, EVENT_FIELDS, InstrumentTable, kind_to_str

__all__ = [
    "DUPLICATES",
    "MODES",
    "QUARANTINE_COLUMNS",
    "ValidationReport",
    "Validator",
]

MODES = ("strict", "quarantine")
DUPLICATES = ("flag", "allow")
#: Columns of the quarantine CSV: what is wrong, then the row as received. ``raw`` holds the
#: reader's raw record (JSON) for rows that did not parse, or every event of a multi-event row.
QUARANTINE_COLUMNS: tuple[str, ...] = ("row", "code", "field", "value", "message", "fix", *EVENT_FIELDS, "raw")


class _StoppedEarly(DataError):
    """Strict mode stopped reading at ``max_findings``: the true count is only a lower bound."""

    def _text(self) -> str:
        hint = "mode='quarantine' sets bad rows aside and reports them all"
        if len(self.findings) == 1 and not self.more:
            return f"{self.findings[0]} (stopped at the first problem; {hint})"
        head = (f"at least {len(self.findings) + self.more} problem(s) in input data "
                f"(stopped after {len(self.findings)}; {hint}):")
        tail = [f"... and at least {self.more} more"] if self.more else []
        return "\n  ".join([head, *map(str, self.findings), *tail])


@dataclass(frozen=True)
class ValidationReport:
    """What validation saw. ``findings`` holds the first findings (capped); counts are complete."""

    file: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    counts_by_code: dict[str, int]
    findings: list[Finding] = field(default_factory=list)
    locked_quotes: int = 0
    quarantine_path: str | None = None
    mode: str = "strict"

    @property
    def ok(self) -> bool:
        return self.rows_quarantined == 0 and not self.counts_by_code

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "mode": self.mode,
            "ok": self.ok,
            "rows_in": self.rows_in,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "counts_by_code": dict(sorted(self.counts_by_code.items())),
            "locked_quotes": self.locked_quotes,
            "quarantine_path": self.quarantine_path,
            "findings": [_json_safe(f.as_dict()) for f in self.findings],
        }

    def __str__(self) -> str:
        status = "OK" if self.ok else f"{self.rows_quarantined} row(s) with problems"
        lines = [
            f"Validation of {self.file} ({self.mode}): {status}",
            f"  {'rows in':<18}{self.rows_in:>12}",
            f"  {'rows accepted':<18}{self.rows_accepted:>12}",
            f"  {'rows quarantined':<18}{self.rows_quarantined:>12}",
            f"  {'locked quotes':<18}{self.locked_quotes:>12}",
        ]
        if self.quarantine_path:
            lines.append(f"  quarantine file: {self.quarantine_path}")
        if self.counts_by_code:
            lines.append(f"  {'code':<24}{'findings':>8}")
            lines += [f"  {c:<24}{n:>8}" for c, n in sorted(self.counts_by_code.items())]
        if self.findings:
            lines.append(f"  first {len(self.findings)} finding(s):")
            lines += [f"    {f}" for f in self.findings]
        return "\n".join(lines)


def _json_safe(d: dict[str, object]) -> dict[str, object]:
    """Non-finite float values as text ("nan", "inf"): strict JSON has no NaN."""
    v = d.get("value")
    return {**d, "value": repr(v)} if isinstance(v, float) and not np.isfinite(v) else d


def _cell(value: object) -> object:
    if isinstance(value, float) and np.isnan(value):
        return ""
    return value


def _event_dict(ev: np.void) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in EVENT_FIELDS:
        v = ev[name].item()
        out[name] = kind_to_str(v) if name == "kind" else v
    return out


class Validator:
    """Stateful validation of one source, chunk by chunk; see the module docstring for modes.

    ``time_unit`` is the unit the reader was told (default ``"ns"``); it makes unit-mix-up hints
    exact. ``keep_findings`` caps the findings kept for the report (counts are never capped).
    """

    def __init__(
        self,
        file: str | os.PathLike[str],
        instruments: InstrumentTable | None,
        *,
        mode: str = "strict",
        max_findings: int = 1,
        duplicates: str = "flag",
        now_ns: int | None = None,
        quarantine_path: str | os.PathLike[str] | None = None,
        time_unit: str | None = None,
        keep_findings: int = 100,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if duplicates not in DUPLICATES:
            raise ValueError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
        if not isinstance(max_findings, int) or max_findings < 1:
            raise ValueError(f"max_findings must be an int >= 1, got {max_findings!r}")
        unit = time_unit or "ns"
        if unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {tuple(TIME_UNITS)}, got {time_unit!r}")
        self.file = str(file)
        self.mode, self.max_findings, self.duplicates = mode, max_findings, duplicates
        self._unit, self._unit_ns = unit, TIME_UNITS[unit]
        self._lo, self._hi = plausible_window(time.time_ns() if now_ns is None else now_ns)
        self._table = instruments
        if instruments is not None:
            dense = instruments.dense_arrays()
            self._known, self._tick, self._lot = instruments.ids, dense["tick_size"], dense["lot_size"]
        else:
            self._known = self._tick = self._lot = None
        self.quarantine_path = None
        if mode == "quarantine":
            self.quarantine_path = Path(quarantine_path or f"{self.file}.quarantine.csv")
        self._keep = keep_findings
        # Cross-chunk state: running max of accepted ts_local, previous accepted row (group).
        self._prev_max = np.iinfo(np.int64).min
        self._prev_group = np.empty(0, dtype=EVENT_DTYPE)
        self._prev_row = 0
        self._last_row: int | None = None
        self._counts = np.zeros(len(CODES), dtype=np.int64)
        self._reject_counts: dict[str, int] = {}
        self._kept: list[Finding] = []
        self._n_findings = 0
        self.rows_in = self.rows_accepted = self.rows_quarantined = self.locked_quotes = 0
        self._fh = None
        self._writer = None
        self._done = False

    # --- messages ----------------------------------------------------------------------------
    def _finding(self, ev: np.void, row: int, code: int, fld: int, aux: int) -> Finding:
        code, fld, aux = int(code), int(fld), int(aux)
        name = EVENT_FIELDS[fld] if fld >= 0 else None
        value = ev[name].item() if name else aux
        msg, fix = describe(CODES[code], name, value, ev, aux, table=self._table,
                            window=(self._lo, self._hi), time_unit=self._unit)
        return Finding(CODES[code], self.file, int(row), name, value, msg, fix)

    # --- checking ----------------------------------------------------------------------------
    def check(self, chunk: ParsedChunk) -> np.ndarray:
        """Validate one chunk; return its accepted events in order (may raise in strict mode)."""
        if self._done:
            raise RuntimeError("Validator.check after finish() or an error; make a new Validator")
        ev, rows = chunk.events, chunk.rows
        starts = group_starts(rows)
        if len(rows) and self._last_row is not None and rows[0] <= self._last_row:
            self._done = True
            raise ValueError(f"{self.file}: chunk starts at row {rows[0]} but row {self._last_row} was "
                             "already seen; readers must give rows in order and never split a row across chunks")
        n, ng = len(ev), len(starts)
        gid = np.repeat(np.arange(ng), np.diff(np.r_[starts, n]))
        hits, locked = stateless_checks(ev, lo_ns=self._lo, hi_ns=self._hi, unit_ns=self._unit_ns,
                                        known_ids=self._known, tick=self._tick, lot=self._lot)
        bad_group = np.zeros(ng, dtype=bool)
        bad_group[gid[hits["idx"]]] = True
        extra = [hits]
        ci = np.flatnonzero(~bad_group[gid])  # events of rows that passed the row checks
        if len(ci):
            cstarts = group_starts(rows[ci])
            grow = rows[ci][cstarts]
            cgid = np.repeat(np.arange(len(cstarts)), np.diff(np.r_[cstarts, len(ci)]))
            ooo, before = out_of_order(ev["ts_local"][ci], cstarts, self._prev_max)
            ooo_g = np.zeros(len(cstarts), dtype=bool)
            ooo_g[cgid[ooo]] = True
            dup = np.zeros(len(cstarts), dtype=bool)
            if self.duplicates == "flag":
                # A row identical to the previous accepted row is a duplicate even when it is also
                # out of order (a repeated bar starts before the bar it repeats ends).
                dup, _ = duplicate_groups(ev[ci], cstarts, self._prev_group, ~ooo_g)
            ooo &= ~dup[cgid]
            ooo_g &= ~dup
            if ooo.any():
                extra.append(self._hit_array(ci[ooo], "out_of_order", "ts_local", before[ooo]))
            keep = ~(dup | ooo_g)
            if dup.any():
                # The row each duplicate repeats: the last accepted row before it.
                last = np.maximum.accumulate(np.where(keep, np.arange(len(keep)), -1))
                prev_keep = np.r_[-1, last[:-1]]
                earlier = np.where(prev_keep >= 0, grow[np.maximum(prev_keep, 0)], self._prev_row)
                extra.append(self._hit_array(ci[cstarts[dup]], "duplicate_row", None, earlier[dup]))
            bad_group[gid[ci[~keep[cgid]]]] = True
            kept = np.flatnonzero(keep)
            if len(kept):
                g = kept[-1]
                end = cstarts[g + 1] if g + 1 < len(cstarts) else len(ci)
                self._prev_group = ev[ci[cstarts[g]:end]].copy()
                self._prev_row = int(grow[g])
                self._prev_max = max(self._prev_max, int(ev["ts_local"][ci[keep[cgid]]].max()))
        if len(extra) > 1:
            hits = np.concatenate(extra)
            hits = hits[np.lexsort((hits["field"], hits["code"], hits["idx"]))]
        accepted = ~bad_group[gid]
        if len(rows):
            self._last_row = int(rows[-1])
        self._account(chunk, hits, bad_group, gid, int((locked & accepted).sum()))
        return ev[accepted]

    @staticmethod
    def _hit_array(idx: np.ndarray, code: str, name: str | None, aux: np.ndarray) -> np.ndarray:
        out = np.empty(len(idx), dtype=HITS_DTYPE)
        out["idx"], out["code"], out["aux"] = idx, CODES.index(code), aux
        out["field"] = -1 if name is None else EVENT_FIELDS.index(name)
        return out

    def _account(self, chunk: ParsedChunk, hits: np.ndarray, bad_group: np.ndarray,
                 gid: np.ndarray, locked: int) -> None:
        rejects = sorted(chunk.rejects, key=lambda r: (r.finding.row is None, r.finding.row or 0))
        n_bad = int(bad_group.sum())
        self.rows_in += len(bad_group) + len(rejects)
        self.rows_accepted += len(bad_group) - n_bad
        self.rows_quarantined += n_bad + len(rejects)
        self.locked_quotes += locked
        self._counts += np.bincount(hits["code"], minlength=len(CODES))
        for r in rejects:
            self._reject_counts[r.finding.code] = self._reject_counts.get(r.finding.code, 0) + 1
        total = len(hits) + len(rejects)
        if total == 0:
            return
        # Merge event findings and rejects in source-row order (rejects first on a tie: a row
        # cannot be both, so ties only happen with malformed reader output).
        rows = chunk.rows
        hit_rows = rows[hits["idx"]]
        rej_rows = np.array([r.finding.row or 0 for r in rejects], dtype=np.int64)
        is_hit = np.r_[np.zeros(len(rejects), dtype=bool), np.ones(len(hits), dtype=bool)]
        pos = np.r_[np.arange(len(rejects)), np.arange(len(hits))]
        order = np.lexsort((pos, is_hit, np.r_[rej_rows, hit_rows]))

        def make(k: int) -> Finding:
            j = int(pos[order[k]])
            if not is_hit[order[k]]:
                return rejects[j].finding
            h = hits[j]
            return self._finding(chunk.events[h["idx"]], hit_rows[j], h["code"], h["field"], h["aux"])

        want = max(self._keep - len(self._kept), 0)
        if self.mode == "strict":
            want = max(want, self.max_findings - self._n_findings)
        new = [make(k) for k in range(min(want, total))]
        if self.mode == "strict":
            self._kept.extend(new)
            self._n_findings += total
            if self._n_findings >= self.max_findings:
                self._done = True
                kept = self._kept[: self.max_findings]
                raise _StoppedEarly(kept, more=self._n_findings - len(kept))
            return
        self._kept.extend(new[: max(self._keep - len(self._kept), 0)])
        self._n_findings += total
        self._quarantine(chunk, hits, hit_rows, gid, rejects)

    def _quarantine(self, chunk: ParsedChunk, hits: np.ndarray, hit_rows: np.ndarray,
                    gid: np.ndarray, rejects: list) -> None:
        """Write this chunk's bad rows and rejects, one line per source row, in row order."""
        ends = np.r_[np.flatnonzero(np.diff(gid)) + 1, len(gid)]  # end of each group
        lines: list[tuple[int, int, list]] = []
        for k, r in enumerate(rejects):
            f = r.finding
            cells = [r.raw.get(name, "") for name in EVENT_FIELDS]
            lines.append((f.row or 0, k, [f.row, f.code, f.field or "", f.value, f.message, f.fix,
                                          *cells, json.dumps(r.raw)]))
        hg = gid[hits["idx"]]
        bounds = np.flatnonzero(np.r_[True, hg[1:] != hg[:-1]]) if len(hg) else np.empty(0, int)
        for b, e in zip(bounds, np.r_[bounds[1:], len(hg)]):
            codes = list(dict.fromkeys(CODES[c] for c in hits["code"][b:e]))
            h = hits[b]
            ev = chunk.events[h["idx"]]
            f = self._finding(ev, hit_rows[b], h["code"], h["field"], h["aux"])
            g_end = int(ends[hg[b]])
            g_start = int(ends[hg[b] - 1]) if hg[b] > 0 else 0
            group = chunk.events[g_start:g_end]
            raw = json.dumps([_event_dict(x) for x in group]) if len(group) > 1 else ""
            cells = [_cell(v) for v in _event_dict(ev).values()]
            lines.append((f.row, len(rejects) + int(b), [f.row, ";".join(codes), f.field or "",
                                                         _cell(f.value), f.message, f.fix, *cells, raw]))
        lines.sort(key=lambda t: (t[0], t[1]))
        writer = self._open_writer()
        writer.writerows(line for _, _, line in lines)

    def _open_writer(self):
        if self._writer is None:
            assert self.quarantine_path is not None
            tmp = self.quarantine_path.with_name(self.quarantine_path.name + ".partial")
            self._fh = open(tmp, "w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._fh)
            self._writer.writerow(QUARANTINE_COLUMNS)
        return self._writer

    # --- end of stream -----------------------------------------------------------------------
    def finish(self) -> ValidationReport:
        """End of input: raise in strict mode if anything was found, else return the report.

        In quarantine mode the quarantine file (header only when nothing was bad) appears under
        its name only now, so an interrupted run never leaves a file that looks complete.
        """
        if self._done:
            raise RuntimeError("Validator.finish called twice or after an error")
        self._done = True
        if self.mode == "strict" and self._n_findings:
            raise DataError(self._kept, more=self._n_findings - len(self._kept))
        qpath = None
        if self.mode == "quarantine":
            self._open_writer()
            self._fh.close()
            os.replace(self._fh.name, self.quarantine_path)
            qpath = str(self.quarantine_path)
        counts = {CODES[i]: int(c) for i, c in enumerate(self._counts) if c}
        for code, c in self._reject_counts.items():
            counts[code] = counts.get(code, 0) + c
        return ValidationReport(self.file, self.rows_in, self.rows_accepted, self.rows_quarantined,
                                counts, list(self._kept), self.locked_quotes, qpath, self.mode)

    def abort(self) -> None:
        """Stop without a report; remove a half-written quarantine file."""
        self._done = True
        if self._fh is not None and not self._fh.closed:
            self._fh.close()
            Path(self._fh.name).unlink(missing_ok=True)

    def __enter__(self) -> "Validator":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._done:
            self.abort()
