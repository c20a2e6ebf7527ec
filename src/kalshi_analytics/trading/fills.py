"""Fill models: how much of an immediate-or-cancel order the recorded liquidity gives, and at what prices.

Pluggable like the fee model (:class:`FillModel`). The core (:mod:`.core`) hands a model the levels of the book
side the order takes — best first, in the traded contract's dollars — and a function saying how many contracts
of each level earlier fills already took; the model answers with the parts it fills (price, contracts). The core
keeps that consumption and forgets it when the recorded touch moves to another price (a new level is new
liquidity); at an unchanged price, what was taken stays taken, so more becomes available only when the recorded
size grows beyond it.

The default, :class:`DisplayedLiquidity`: take the displayed size at the touch; walk deeper recorded levels
(orderbook rows, when the data have them) while the order is larger and the limit allows; where no size was
recorded, treat each level as holding ``unknown_size_cap`` contracts and flag the fill ``size_unknown``.
``latency_seconds`` delays the fill to the first snapshot at or after the decision plus that delay.
``trade_quotes``: a snapshot that recorded a trade but no quote at all (trade-price candles) is quoted at that
trade, both sides, size unknown — the feeder applies it (the backtest engine: :mod:`~kalshi_analytics.backtests.
trade_quotes`) and the core counts the fills priced that way; off, such snapshots have no quote.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any, NamedTuple, Protocol


class Level(NamedTuple):  # tuples: built per intent on the hot path
    """One price level an order can take: dollars per contract of the traded side; ``size`` None = not recorded."""

    price: Decimal
    size: Decimal | None


class Fill(NamedTuple):
    """What an order got: ``parts`` (price, contracts) best first (empty when nothing could be taken), their
    total ``contracts``, and whether some part was sized by the model's cap rather than a recorded size."""

    parts: tuple[tuple[Decimal, Decimal], ...]
    contracts: Decimal
    size_unknown: bool = False


class FillModel(Protocol):
    """Decides fills; stateless (the core keeps what was consumed)."""

    @property
    def latency_seconds(self) -> float:
        """Decision-to-fill delay: the order fills on the first snapshot at or after decision + this."""
        ...

    @property
    def walks_book(self) -> bool:
        """Whether recorded levels beyond the touch are worth loading for this model."""
        ...

    @property
    def trade_quotes(self) -> bool:
        """Whether a snapshot with a trade price and no recorded quote is quoted at that trade (else: no quote)."""
        ...

    def fill(
        self,
        levels: Sequence[Level],
        count: Decimal,
        *,
        buy: bool,
        limit: Decimal | None,
        step: Decimal,
        taken: Callable[[Decimal], Decimal],
    ) -> Fill:
        """Fill up to ``count`` contracts (multiples of ``step``) from ``levels`` (best first); ``taken(price)``
        is how much of the level at ``price`` earlier fills took since the book last changed."""
        ...

    def describe(self) -> dict[str, Any]:
        """The model's name and parameters, as a result records them (JSON)."""
        ...


def levels_beyond_touch(
    yes_bids: Sequence[tuple[float, float]],
    no_bids: Sequence[tuple[float, float]],
    *,
    side: int,
    buy: bool,
    touch: float,
) -> list[tuple[float, float]]:
    """The levels of a recorded book (Kalshi's bids only, each leg ascending) beyond ``touch`` for one order, best
    first, in the traded contract's dollars: a YES ask is 1 − a NO bid, a NO ask 1 − a YES bid. Empty when the
    book's best level is not at ``touch`` (the book is older than the quote): its depth would describe another
    state of the market."""
    bids = no_bids if (side == 1) == buy else yes_bids  # buy YES / sell NO take the NO bids, the others the YES
    if not bids:
        return []
    # Best first: the highest bid; a buy takes the other leg's bids, so its price is 1 − the bid.
    levels = [((1 - p) if buy else p, s) for p, s in reversed(bids)]
    if abs(levels[0][0] - touch) > 1e-9:
        return []
    return levels[1:]


#: The stated default cap per level where no size was recorded (candle imports, some backfills).
DEFAULT_UNKNOWN_SIZE_CAP = Decimal(100)


@dataclass(frozen=True)
class DisplayedLiquidity:
    """Take what is displayed, level by level, never the same contracts twice (see the module docstring)."""

    unknown_size_cap: Decimal = DEFAULT_UNKNOWN_SIZE_CAP
    latency_seconds: float = 0.0
    walks_book: bool = True
    trade_quotes: bool = True

    name = "displayed_liquidity"

    def fill(
        self,
        levels: Sequence[Level],
        count: Decimal,
        *,
        buy: bool,
        limit: Decimal | None,
        step: Decimal,
        taken: Callable[[Decimal], Decimal],
    ) -> Fill:
        parts: list[tuple[Decimal, Decimal]] = []
        unknown = False
        remaining = count
        for i, level in enumerate(levels):
            if i > 0 and not self.walks_book:
                break
            if limit is not None and (level.price > limit if buy else level.price < limit):
                break
            shown = level.size
            if shown is None:
                shown = self.unknown_size_cap
            available = shown - taken(level.price)
            if available <= 0:
                continue
            take = (remaining if remaining <= available else available).quantize(step, ROUND_DOWN)
            if take <= 0:
                continue
            unknown |= level.size is None
            parts.append((level.price, take))
            remaining -= take
            if remaining <= 0:
                break
        return Fill(tuple(parts), count - remaining, unknown)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unknown_size_cap": str(self.unknown_size_cap),
            "latency_seconds": self.latency_seconds,
            "walks_book": self.walks_book,
            "trade_quotes": self.trade_quotes,
        }
