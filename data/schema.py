"""The market-event record and the instrument table: the one data model every layer shares.

Every market event — quote, trade, depth update, snapshot row, bar price, control message — is one
row of :data:`EVENT_DTYPE`, an aligned numpy structured dtype (72 bytes, 8-byte aligned), so arrays
of events pass straight into numba kernels and memory-map from ``.npy`` files.

Fields (units in brackets):

==============  ========  =================================================================
``ts_exch``     int64     exchange timestamp [ns since the Unix epoch, UTC]
``ts_local``    int64     local receive timestamp [ns since the Unix epoch, UTC]; the engine
                          replays events in ``ts_local`` order and a strategy never sees an
                          event before its ``ts_local``. ``ts_local - ts_exch`` is the feed latency.
``instrument``  int32     instrument id, a key into the instrument table
``kind``        uint16    bit flags, see ``KIND_*`` below; several may be set on one row
``side``        int8      ``SIDE_BUY`` (+1) / ``SIDE_SELL`` (-1) / ``SIDE_NONE`` (0). Trades: the
                          aggressor side. Depth updates: the book side (+1 bid, -1 ask).
``level``       uint8     depth level the update refers to (0 = touch), informational only;
                          the book is keyed by price.
``price``       float64   trade price / depth level price / bar price [quote currency per unit]
``size``        float64   trade size / new total size at the depth price (0 deletes the level) /
                          bar volume share [units of the instrument, multiples of its lot size]
``bid_px``      float64   best bid price after this event [quote currency]; NaN if unknown/empty
``bid_sz``      float64   size at the best bid [units]; NaN if unknown
``ask_px``      float64   best ask price after this event [quote currency]; NaN if unknown/empty
``ask_sz``      float64   size at the best ask [units]; NaN if unknown
==============  ========  =================================================================

A row with ``KIND_QUOTE`` set carries a valid top of book in ``bid_*``/``ask_*``. Rows without it
leave those fields NaN, and consumers keep the last known quote.

Bars: an OHLCV bar becomes four events (open, high, low, close), see :mod:`tickguard.data.bars`.

The instrument table (:data:`INSTRUMENT_DTYPE`) lives beside the events: in Parquet file metadata,
in a ``.instruments.json`` sidecar for ``.npy`` files, or passed explicitly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "EVENT_DTYPE",
    "EVENT_FIELDS",
    "INSTRUMENT_DTYPE",
    "KIND_BAR",
    "KIND_CONTROL",
    "KIND_DEPTH",
    "KIND_LAST_IN_BATCH",
    "KIND_NAMES",
    "KIND_QUOTE",
    "KIND_SNAPSHOT",
    "KIND_TRADE",
    "KIND_TYPE_MASK",
    "Instrument",
    "InstrumentTable",
    "SIDE_BUY",
    "SIDE_NONE",
    "SIDE_SELL",
    "empty_events",
    "kind_to_str",
]

# --- event kind bit flags -------------------------------------------------------------------
KIND_QUOTE = np.uint16(1 << 0)  #: top of book (bid/ask price and size) is valid on this row
KIND_TRADE = np.uint16(1 << 1)  #: a trade print: price, size, aggressor side
KIND_DEPTH = np.uint16(1 << 2)  #: a price-level update: side, price, new total size at that price
KIND_SNAPSHOT = np.uint16(1 << 3)  #: part of a full book snapshot (clears the book side first)
KIND_BAR = np.uint16(1 << 4)  #: a price point derived from an OHLCV bar
KIND_CONTROL = np.uint16(1 << 5)  #: control message (trading halt, external kill); see ``side``
KIND_LAST_IN_BATCH = np.uint16(1 << 8)  #: last row of a batch sharing one exchange timestamp
#: Mask of the bits that say what the row *is* (everything but modifiers such as last-in-batch).
KIND_TYPE_MASK = np.uint16(0x00FF)

KIND_NAMES: dict[str, int] = {
    "quote": int(KIND_QUOTE),
    "trade": int(KIND_TRADE),
    "depth": int(KIND_DEPTH),
    "snapshot": int(KIND_SNAPSHOT),
    "bar": int(KIND_BAR),
    "control": int(KIND_CONTROL),
    "last_in_batch": int(KIND_LAST_IN_BATCH),
}

SIDE_BUY = np.int8(1)
SIDE_SELL = np.int8(-1)
SIDE_NONE = np.int8(0)

EVENT_DTYPE = np.dtype(
    [
        ("ts_exch", np.int64),
        ("ts_local", np.int64),
        ("instrument", np.int32),
        ("kind", np.uint16),
        ("side", np.int8),
        ("level", np.uint8),
        ("price", np.float64),
        ("size", np.float64),
        ("bid_px", np.float64),
        ("bid_sz", np.float64),
        ("ask_px", np.float64),
        ("ask_sz", np.float64),
    ],
    align=True,
)
EVENT_FIELDS: tuple[str, ...] = tuple(EVENT_DTYPE.names or ())


def empty_events(n: int) -> np.ndarray:
    """Return ``n`` events with timestamps 0, no kind, and every price/size field NaN."""
    if n < 0:
        raise ValueError(f"empty_events: n must be >= 0, got {n!r}")
    out = np.zeros(n, dtype=EVENT_DTYPE)
    for name in ("price", "size", "bid_px", "bid_sz", "ask_px", "ask_sz"):
        out[name] = np.nan
    return out


def kind_to_str(kind: int) -> str:
    """``KIND_QUOTE | KIND_TRADE`` -> ``"quote|trade"`` (for messages and reports)."""
    names = [name for name, bit in KIND_NAMES.items() if int(kind) & bit]
    unknown = int(kind) & ~sum(KIND_NAMES.values()) & 0xFFFF
    if unknown:
        names.append(f"0x{unknown:04x}")
    return "|".join(names) if names else "none"


# --- instruments ----------------------------------------------------------------------------
INSTRUMENT_DTYPE = np.dtype(
    [
        ("id", np.int32),
        ("symbol", "U32"),
        ("tick_size", np.float64),
        ("lot_size", np.float64),
        ("multiplier", np.float64),
        ("currency", "U8"),
    ],
    align=True,
)


@dataclass(frozen=True)
class Instrument:
    """One tradable instrument.

    ``tick_size`` and ``lot_size`` of 0 mean "not given": prices and sizes are then not checked
    against a grid. ``multiplier`` converts price x size into currency (1 for shares, e.g. 50 for
    an E-mini S&P 500 future).
    """

    id: int
    symbol: str
    tick_size: float = 0.0
    lot_size: float = 0.0
    multiplier: float = 1.0
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not isinstance(self.id, (int, np.integer)) or not (0 <= int(self.id) < 2**31):
            raise ValueError(f"Instrument.id must be an int in [0, 2**31), got {self.id!r}")
        if not self.symbol:
            raise ValueError(f"Instrument {self.id}: symbol must be a non-empty string")
        for name in ("tick_size", "lot_size"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value < 0:
                raise ValueError(
                    f"Instrument {self.symbol!r}: {name} must be finite and >= 0 "
                    f"(0 = not checked), got {value!r}"
                )
        if not np.isfinite(self.multiplier) or self.multiplier <= 0:
            raise ValueError(
                f"Instrument {self.symbol!r}: multiplier must be finite and > 0, "
                f"got {self.multiplier!r}"
            )


class InstrumentTable:
    """An ordered, id-unique collection of :class:`Instrument`, convertible to arrays and JSON."""

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_id: dict[int, Instrument] = {}
        for inst in instruments:
            self.add(inst)

    def add(self, inst: Instrument) -> None:
        if int(inst.id) in self._by_id:
            raise ValueError(f"InstrumentTable: duplicate instrument id {inst.id} ({inst.symbol!r})")
        if any(other.symbol == inst.symbol for other in self._by_id.values()):
            raise ValueError(f"InstrumentTable: duplicate symbol {inst.symbol!r}")
        self._by_id[int(inst.id)] = inst

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self):
        return iter(sorted(self._by_id.values(), key=lambda i: i.id))

    def __contains__(self, instrument_id: object) -> bool:
        return instrument_id in self._by_id

    def __getitem__(self, instrument_id: int) -> Instrument:
        try:
            return self._by_id[int(instrument_id)]
        except KeyError:
            known = sorted(self._by_id)
            raise KeyError(
                f"unknown instrument id {instrument_id!r}; the table holds ids {known}"
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InstrumentTable) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"InstrumentTable({list(self)!r})"

    def by_symbol(self, symbol: str) -> Instrument:
        for inst in self._by_id.values():
            if inst.symbol == symbol:
                return inst
        raise KeyError(f"unknown symbol {symbol!r}; known: {sorted(i.symbol for i in self)}")

    @property
    def ids(self) -> np.ndarray:
        return np.array(sorted(self._by_id), dtype=np.int32)

    def to_array(self) -> np.ndarray:
        """Rows of :data:`INSTRUMENT_DTYPE`, sorted by id."""
        rows = [
            (i.id, i.symbol, i.tick_size, i.lot_size, i.multiplier, i.currency) for i in self
        ]
        return np.array(rows, dtype=INSTRUMENT_DTYPE)

    def dense_arrays(self) -> dict[str, np.ndarray]:
        """Per-id lookup arrays (index = instrument id) for kernels: tick, lot, multiplier.

        Ids not in the table get NaN, so a kernel can tell them apart.
        """
        size = int(self.ids.max()) + 1 if len(self) else 0
        out = {k: np.full(size, np.nan) for k in ("tick_size", "lot_size", "multiplier")}
        for i in self:
            out["tick_size"][i.id] = i.tick_size
            out["lot_size"][i.id] = i.lot_size
            out["multiplier"][i.id] = i.multiplier
        return out

    def to_json(self) -> str:
        return json.dumps([asdict(i) for i in self], sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "InstrumentTable":
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise ValueError(f"instrument table JSON must be a list of objects, got {type(rows).__name__}")
        return cls(Instrument(**row) for row in rows)

    @classmethod
    def single(cls, symbol: str = "SYN", **kwargs: float | str) -> "InstrumentTable":
        """A one-instrument table with id 0."""
        return cls([Instrument(0, symbol, **kwargs)])  # type: ignore[arg-type]

    @classmethod
    def from_symbols(cls, symbols: Sequence[str]) -> "InstrumentTable":
        return cls(Instrument(i, s) for i, s in enumerate(symbols))
