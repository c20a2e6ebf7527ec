"""The strategy interface: typed parameters, a causal per-event hook, an optional vectorised path.

A strategy is a class with

- ``name`` and ``version`` (the registry key; results record both),
- ``Params``: a pydantic model (its JSON schema drives the dashboard's run form),
- ``on_event(view, position, params) -> Sequence[OrderIntent]``: called once per snapshot of one market, in
  global time order. ``view`` holds that market's arrays **up to and including the current snapshot only**: the
  engine copies each snapshot into the view's buffers as it arrives, so later snapshots do not exist anywhere the
  strategy can reach (not even through ``ndarray.base``). Look-ahead is impossible by construction.
- optionally ``signals(arrays, params) -> Sequence[SignalArrays]``: every intent of one market at once over numpy
  arrays. This path sees the whole market, so it must be causal itself (rolling windows of past values, shifts).
  The engine uses it only once it has checked that on the run's own data (:func:`causal_violation`: signals
  recomputed on prefixes must equal the full run's on those rows) — on every market, or on a few when the class
  declares ``causal_signals`` (the built-ins, which the test suite proves causal); a failed check runs the
  per-event hook instead and says so in the result. Plain Python strategies only write ``on_event``.

Semantics of intents (both paths): ``buy`` opens or adds to a long position in the YES or the NO contract,
``sell`` reduces one (there is no shorting: to bet against YES, buy NO). Orders are immediate-or-cancel takers:
buys fill at the ask, sells at the bid, capped by the displayed size; a limit price that does not cross is
dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

Side = Literal["yes", "no"]
Action = Literal["buy", "sell"]
FloatArray = npt.NDArray[np.float64]

# The per-snapshot columns a strategy can read (floats; NaN = not recorded). ts is Unix seconds (float).
FIELDS: tuple[str, ...] = (
    "ts",
    "yes_bid",
    "yes_ask",
    "no_bid",
    "no_ask",
    "last_price",
    "yes_bid_size",
    "yes_ask_size",
    "volume",
    "close_time",  # the market's close (Unix seconds) as known at that snapshot; it can move (early closes)
)
FIELD_INDEX: dict[str, int] = {f: i for i, f in enumerate(FIELDS)}
_CLOSE = FIELD_INDEX["close_time"]


class StrategyParams(BaseModel):
    """Base of every strategy's parameter model: unknown keys are errors, values are validated (NaN and
    infinities included: ``"Infinity"`` as text would otherwise read as a float)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What a strategy wants done now. ``size`` in contracts (fractional allowed), ``limit`` in dollars."""

    side: Side
    action: Action
    size: Decimal
    limit: Decimal | None = None
    reason: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.side not in ("yes", "no"):
            raise ValueError(f"side must be 'yes' or 'no', not {self.side!r}")
        if self.action not in ("buy", "sell"):
            raise ValueError(f"action must be 'buy' or 'sell', not {self.action!r}")
        if self.size <= 0:
            raise ValueError("size must be positive")


@dataclass(frozen=True, slots=True)
class Position:
    """What the strategy holds in the current market (contracts, average entry price incl. nothing else)."""

    yes: Decimal = Decimal(0)
    no: Decimal = Decimal(0)
    yes_avg_price: Decimal | None = None
    no_avg_price: Decimal | None = None

    def held(self, side: Side) -> Decimal:
        return self.yes if side == "yes" else self.no

    @property
    def flat(self) -> bool:
        return self.yes == 0 and self.no == 0


FLAT = Position()


class MarketView:
    """One market's history up to the current snapshot (inclusive). Arrays are read-only.

    ``len(view)`` is the number of snapshots seen so far, i.e. the current index + 1. The arrays are slices of
    buffers that the engine fills one snapshot at a time, so nothing later than the current snapshot exists.
    ``stale`` is true while the live feed of this market has an open gap (paper trading): the data may be
    missing something, and no order on it fills until the gap is repaired. A backtest's recorded history is
    read as repaired, so it is never stale there.
    """

    __slots__ = ("_buf", "_n", "stale", "ticker")

    def __init__(self, ticker: str, buffer: FloatArray, n: int, *, stale: bool = False) -> None:
        self.ticker = ticker
        self._buf = buffer  # rows × FIELDS; rows ≥ n are not filled yet (NaN)
        self._n = n
        self.stale = stale

    @property
    def close_time(self) -> float | None:
        """The market's close (Unix seconds) as known at the current snapshot, or None when none was known yet;
        ``view["close_time"]`` has it at every snapshot so far."""
        close = self._buf[self._n - 1, _CLOSE]
        return None if math.isnan(close) else float(close)

    def __len__(self) -> int:
        return self._n

    @property
    def index(self) -> int:
        return self._n - 1

    def __getitem__(self, name: str) -> FloatArray:
        arr = self._buf[: self._n, FIELD_INDEX[name]]
        arr.flags.writeable = False
        return arr

    def tail(self, name: str, k: int) -> FloatArray:
        """The last ``k`` values (fewer at the start): O(k), unlike computing on the whole history per event."""
        arr = self._buf[max(0, self._n - k) : self._n, FIELD_INDEX[name]]
        arr.flags.writeable = False
        return arr

    def tail_mid(self, k: int) -> FloatArray:
        return (self.tail("yes_bid", k) + self.tail("yes_ask", k)) / 2

    def last(self, name: str) -> float:
        return float(self._buf[self._n - 1, FIELD_INDEX[name]])

    @property
    def ts(self) -> FloatArray:
        return self["ts"]

    @property
    def yes_bid(self) -> FloatArray:
        return self["yes_bid"]

    @property
    def yes_ask(self) -> FloatArray:
        return self["yes_ask"]

    @property
    def last_price(self) -> FloatArray:
        return self["last_price"]

    @property
    def mid(self) -> FloatArray:
        return (self["yes_bid"] + self["yes_ask"]) / 2


@dataclass(frozen=True)
class MarketArrays:
    """All snapshots of one market as float arrays (the vectorised path's input). Same names as :data:`FIELDS`."""

    ticker: str
    columns: Mapping[str, FloatArray]

    def __len__(self) -> int:
        return len(self.columns["ts"])

    @property
    def close_time(self) -> FloatArray:
        """The close time as known at each snapshot (NaN before one was known): compare it row by row, never
        take its last value as if it had been known all along."""
        close = self.columns.get("close_time")
        return close if close is not None else np.full(len(self), np.nan)

    def __getitem__(self, name: str) -> FloatArray:
        return self.columns[name]

    @property
    def mid(self) -> FloatArray:
        return (self.columns["yes_bid"] + self.columns["yes_ask"]) / 2

    def prefix(self, n: int) -> MarketArrays:
        return MarketArrays(self.ticker, {k: v[:n].copy() for k, v in self.columns.items()})


SIDE_CODES: dict[Side, int] = {"yes": 1, "no": 2}
ACTION_CODES: dict[Action, int] = {"buy": 1, "sell": -1}


@dataclass(frozen=True)
class SignalArrays:
    """Intents of one market, one (optional) intent per snapshot, as arrays aligned with the snapshots.

    ``side``: 0 = nothing, 1 = YES, 2 = NO; ``action``: +1 buy, −1 sell; ``size`` contracts; ``limit`` NaN = none;
    ``reason``: named float arrays recorded with each executed intent (the signal metadata).
    """

    side: npt.NDArray[np.int8]
    action: npt.NDArray[np.int8]
    size: FloatArray
    limit: FloatArray | None = None
    reason: Mapping[str, FloatArray] = field(default_factory=dict)
    reason_name: str = "signal"

    @classmethod
    def where(
        cls,
        mask: npt.NDArray[np.bool_],
        side: Side | npt.NDArray[np.int8],
        action: Action,
        size: float | FloatArray,
        *,
        reason: Mapping[str, FloatArray] | None = None,
        reason_name: str = "signal",
    ) -> SignalArrays:
        n = len(mask)
        side_arr = np.full(n, SIDE_CODES[side], np.int8) if isinstance(side, str) else side.astype(np.int8)
        side_arr = np.where(mask, side_arr, 0).astype(np.int8)
        return cls(
            side=side_arr,
            action=np.full(n, ACTION_CODES[action], np.int8),
            size=np.broadcast_to(np.asarray(size, np.float64), (n,)).copy(),
            reason=dict(reason or {}),
            reason_name=reason_name,
        )


class Strategy:
    """Base class. Subclasses set ``name``, ``version``, ``Params`` and implement ``on_event`` (and maybe
    ``signals``). Instances are stateless: state a strategy needs lives in the view and the position."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams

    def on_event(self, view: MarketView, position: Position, params: Any) -> Sequence[OrderIntent]:
        raise NotImplementedError

    # Optional vectorised path; the engine checks ``has_signals``.
    signals: ClassVar[Any] = None
    #: The author states that ``signals`` is causal (the built-ins do, and the test suite proves it): each run
    #: then only spot-checks it on a few markets. Otherwise every run checks it on all of its markets first.
    causal_signals: ClassVar[bool] = False

    @classmethod
    def has_signals(cls) -> bool:
        return cls.signals is not None

    @classmethod
    def has_on_event(cls) -> bool:
        return cls.on_event is not Strategy.on_event

    @classmethod
    def parse_params(cls, raw: Mapping[str, Any] | None) -> StrategyParams:
        return cls.Params.model_validate(dict(raw or {}))

    @classmethod
    def params_schema(cls) -> dict[str, Any]:
        return cls.Params.model_json_schema()


def causal_violation(
    strategy: Strategy,
    arrays: MarketArrays,
    params: StrategyParams,
    cuts: Sequence[int],
    full: Sequence[SignalArrays] | None = None,
) -> str | None:
    """Where ``strategy.signals`` uses later data: for each cut ``n``, the signals computed on the first ``n`` rows
    alone must equal the full run's on those rows (side, action, size and limit of every intent). ``None`` when
    every cut agrees; otherwise what differed, for a person."""
    if full is None:
        full = strategy.signals(arrays, params)
    for n in cuts:
        part = strategy.signals(arrays.prefix(n), params)
        if len(part) != len(full):
            return f"{arrays.ticker}: {len(full)} signal sets over all rows but {len(part)} over the first {n}"
        for a, b in zip(full, part, strict=True):
            on_a, on_b = a.side[:n] != 0, b.side[:n] != 0
            for name in ("side", "action", "size", "limit"):
                x, y = getattr(a, name), getattr(b, name)
                x = np.full(n, np.nan) if x is None else np.where(on_a, x[:n], 0)
                y = np.full(n, np.nan) if y is None else np.where(on_b, y[:n], 0)
                if not np.array_equal(x, y, equal_nan=True):
                    row = int(np.flatnonzero(~((x == y) | (np.isnan(x) & np.isnan(y))))[0])
                    return (
                        f"{arrays.ticker}: signals' {name} at row {row} changes when rows from {n} on are removed "
                        "(it uses later data)"
                    )
    return None


def check_causal(strategy: Strategy, arrays: MarketArrays, params: StrategyParams, cuts: Sequence[int]) -> None:
    """Raise AssertionError when ``strategy.signals`` on a prefix disagrees with the full run on that prefix."""
    problem = causal_violation(strategy, arrays, params, cuts)
    if problem is not None:
        raise AssertionError(f"{strategy.name}: {problem}")
