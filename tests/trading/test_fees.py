from __future__ import annotations

from decimal import Decimal as D

import pytest

from kalshi_analytics.trading.fees import KalshiFeeModel, NoFees, SeriesFees

FEES = KalshiFeeModel()


@pytest.mark.parametrize(
    ("count", "price", "fee"),
    [
        ("10", "0.50", "0.18"),  # 0.175 rounds up
        ("1", "0.50", "0.02"),  # 0.0175: the max per contract
        ("100", "0.50", "1.75"),
        ("1", "0.01", "0.01"),  # 0.000693 → a cent minimum, since ceil
        ("1", "0.99", "0.01"),
        ("1000", "0.01", "0.70"),  # 0.693
        ("1000", "0.99", "0.70"),
        ("2.5", "0.50", "0.05"),  # fractional contracts: 0.04375
        ("0.01", "0.50", "0.01"),
        ("10", "0.625", "0.17"),  # 0.1640625 (half-cent prices of the candle import)
    ],
)
def test_taker_fee_is_rounded_up_to_the_cent(count: str, price: str, fee: str) -> None:
    assert FEES.fee(D(price), D(count)) == D(fee)


def test_maker_fee_only_on_maker_fee_series() -> None:
    maker_series = SeriesFees(fee_type="quadratic_with_maker_fees")
    assert FEES.fee(D("0.50"), D(10), maker=True, series=maker_series) == D("0.05")  # 0.04375
    assert FEES.fee(D("0.50"), D(10), maker=True, series=SeriesFees("quadratic")) == D("0.00")
    assert FEES.fee(D("0.50"), D(10), series=maker_series) == D("0.18")  # takers pay the taker rate


def test_fee_multiplier_scales_the_rate_and_zero_count_is_free() -> None:
    assert FEES.fee(D("0.50"), D(100), series=SeriesFees("quadratic", D("0.5"))) == D("0.88")  # 0.875
    assert FEES.fee(D("0.50"), D(0)) == D("0.00")
    assert NoFees().fee(D("0.50"), D(10)) == D("0.00")


def test_maker_fee_is_a_share_of_the_taker_rate_half_on_combo_series() -> None:
    """KALSHI_API.md §7: the maker fee uses a multiplier of the taker rate — 0.25 (0.0175) as standard, 0.5 on
    ``quadratic_with_combo_maker_fees`` series — and the series' fee multiplier scales it like the taker's."""
    combo = SeriesFees("quadratic_with_combo_maker_fees")
    assert FEES.rate(maker=True, series=combo) == D("0.035")
    assert FEES.fee(D("0.50"), D(10), maker=True, series=combo) == D("0.09")  # 0.0875
    assert FEES.fee(D("0.50"), D(100), maker=True, series=combo) == D("0.88")  # 0.875 (0.0175 would be 0.44)
    assert FEES.fee(D("0.50"), D(100), series=combo) == D("1.75")  # takers: 0.07 as everywhere
    half = SeriesFees("quadratic_with_combo_maker_fees", D("0.5"))
    assert FEES.fee(D("0.50"), D(100), maker=True, series=half) == D("0.44")  # 0.035 × 0.5 × 25 = 0.4375
    assert FEES.rate(maker=True, series=SeriesFees("quadratic_with_maker_fees", D("2"))) == D("0.035")
