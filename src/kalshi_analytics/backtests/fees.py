"""Kalshi trading fees (KALSHI_API.md §7), pluggable through the :class:`FeeModel` protocol.

General (quadratic) fee per fill: ``ceil_to_cent(rate × C × P × (1 − P))`` with C contracts at P dollars;
taker rate 0.07, maker rate 0.0175 on ``quadratic_with_maker_fees`` series (makers pay nothing elsewhere).
Worked: 10 @ $0.50 taker → 0.175 → $0.18; 1 @ $0.50 → $0.02; any fill at $0.01 or $0.99 costs at least $0.01.

``fee_multiplier`` of a series scales the rate. How Kalshi composes it with 0.07 is documented as uncertain
(§7); a missing multiplier means 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

CENT = Decimal("0.01")
TAKER_RATE = Decimal("0.07")
MAKER_RATE = Decimal("0.0175")
MAKER_FEE_TYPES = frozenset({"quadratic_with_maker_fees", "quadratic_with_combo_maker_fees"})


@dataclass(frozen=True, slots=True)
class SeriesFees:
    """A series' fee settings as stored in ``series`` (``fee_type``, ``fee_multiplier``)."""

    fee_type: str | None = None
    fee_multiplier: Decimal | None = None


DEFAULT_SERIES_FEES = SeriesFees()


class FeeModel(Protocol):
    def fee(self, price: Decimal, count: Decimal, *, maker: bool = False, series: SeriesFees = ...) -> Decimal:
        """Fee in dollars for one fill of ``count`` contracts at ``price`` (dollars)."""
        ...


def ceil_to_cent(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_CEILING)


@dataclass(frozen=True)
class KalshiFeeModel:
    """Kalshi's quadratic fee, rounded up to the cent per fill (the legacy, pre-subpenny rounding)."""

    taker_rate: Decimal = TAKER_RATE
    maker_rate: Decimal = MAKER_RATE

    def fee(
        self, price: Decimal, count: Decimal, *, maker: bool = False, series: SeriesFees = DEFAULT_SERIES_FEES
    ) -> Decimal:
        if count <= 0:
            return Decimal("0.00")
        if series.fee_type == "flat":
            rate = self.taker_rate  # no flat schedule is published in KALSHI_API.md; quadratic is the safe bound
        elif maker:
            if series.fee_type not in MAKER_FEE_TYPES:
                return Decimal("0.00")
            rate = self.maker_rate
        else:
            rate = self.taker_rate
        if series.fee_multiplier is not None:
            rate *= series.fee_multiplier
        return ceil_to_cent(rate * count * price * (1 - price))


@dataclass(frozen=True)
class NoFees:
    """For comparisons: a frictionless exchange."""

    def fee(
        self, price: Decimal, count: Decimal, *, maker: bool = False, series: SeriesFees = DEFAULT_SERIES_FEES
    ) -> Decimal:
        return Decimal("0.00")
