"""Kalshi trading fees (KALSHI_API.md §7), pluggable through the :class:`FeeModel` protocol.

General (quadratic) fee per fill: ``ceil_to_cent(rate × C × P × (1 − P))`` with C contracts at P dollars.
Takers pay the taker rate 0.07. Makers pay a share of it, and only on series with maker fees: the document gives
the maker fee as a *multiplier of the taker rate* — "0.25" as standard (0.25 × 0.07 = 0.0175) and "0.5 maker
multiplier instead of 0.25" on ``quadratic_with_combo_maker_fees`` series — so a combo series' maker rate is
0.5 × 0.07 = 0.035, not 0.0175. Makers pay nothing on other series.
Worked: 10 @ $0.50 taker → 0.175 → $0.18; 1 @ $0.50 → $0.02; any fill at $0.01 or $0.99 costs at least $0.01;
10 @ $0.50 maker → 0.04375 → $0.05 (maker-fee series), 0.0875 → $0.09 (combo series).

A series' ``fee_multiplier`` scales whichever rate applies (taker, or taker × maker share). How Kalshi composes
it with 0.07 is documented as uncertain (§7); multiplying is the reading the document's "multiplier" words
suggest, and a missing multiplier means 1.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any, Protocol

CENT = Decimal("0.01")
TAKER_RATE = Decimal("0.07")
#: The maker fee as a share of the taker rate, per series fee type (KALSHI_API.md §7).
MAKER_SHARE = Decimal("0.25")
COMBO_MAKER_SHARE = Decimal("0.5")
MAKER_RATE = TAKER_RATE * MAKER_SHARE  # 0.0175
MAKER_FEE_TYPES = frozenset({"quadratic_with_maker_fees", "quadratic_with_combo_maker_fees"})


@dataclass(frozen=True, slots=True)
class SeriesFees:
    """A series' fee settings as stored in ``series`` (``fee_type``, ``fee_multiplier``)."""

    fee_type: str | None = None
    fee_multiplier: Decimal | None = None


DEFAULT_SERIES_FEES = SeriesFees()


class FeeModel(Protocol):
    def fee(self, price: Decimal, count: Decimal, *, maker: bool = False, series: SeriesFees = ...) -> Decimal:
        """Fee in dollars for one fill of ``count`` contracts at ``price`` (dollars); a pure function of its
        arguments (the trading core remembers the fees it has asked for)."""
        ...


def ceil_to_cent(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_CEILING)


def describe_fee_model(model: FeeModel) -> dict[str, Any]:
    """What a result records about its fee model: the class and its parameters."""
    params: dict[str, str] = {}
    if is_dataclass(model):
        params = {f.name: str(getattr(model, f.name)) for f in fields(model)}
    return {"name": type(model).__name__, **params}


@dataclass(frozen=True)
class KalshiFeeModel:
    """Kalshi's quadratic fee, rounded up to the cent per fill (the legacy, pre-subpenny rounding)."""

    taker_rate: Decimal = TAKER_RATE
    maker_share: Decimal = MAKER_SHARE
    combo_maker_share: Decimal = COMBO_MAKER_SHARE

    def rate(self, *, maker: bool = False, series: SeriesFees = DEFAULT_SERIES_FEES) -> Decimal:
        """The rate of ``rate × C × P × (1 − P)`` for one fill (0 when this fill pays nothing)."""
        if series.fee_type == "flat":
            rate = self.taker_rate  # no flat schedule is published in KALSHI_API.md; quadratic is the safe bound
        elif maker:
            if series.fee_type == "quadratic_with_combo_maker_fees":
                rate = self.taker_rate * self.combo_maker_share
            elif series.fee_type == "quadratic_with_maker_fees":
                rate = self.taker_rate * self.maker_share
            else:
                return Decimal(0)
        else:
            rate = self.taker_rate
        if series.fee_multiplier is not None:
            rate *= series.fee_multiplier
        return rate

    def fee(
        self, price: Decimal, count: Decimal, *, maker: bool = False, series: SeriesFees = DEFAULT_SERIES_FEES
    ) -> Decimal:
        if count <= 0:
            return Decimal("0.00")
        rate = self.rate(maker=maker, series=series)
        if not rate:
            return Decimal("0.00")
        return ceil_to_cent(rate * count * price * (1 - price))


@dataclass(frozen=True)
class NoFees:
    """For comparisons: a frictionless exchange."""

    def fee(
        self, price: Decimal, count: Decimal, *, maker: bool = False, series: SeriesFees = DEFAULT_SERIES_FEES
    ) -> Decimal:
        return Decimal("0.00")
