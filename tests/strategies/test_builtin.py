"""The built-ins' rules at their edges: "beyond the threshold" means beyond it in prices, not in float noise."""

from __future__ import annotations

import pytest

from kalshi_analytics.backtests.engine import EngineConfig, simulate
from kalshi_analytics.strategies import get_strategy
from tests.backtests.conftest import make_dataset


def _steps(a: float, b: float) -> list[tuple[float, float]]:
    """Quotes whose mid goes from ``a`` to ``b`` in one step (one-cent spread), held before and after."""
    return [(a - 0.005, a + 0.005)] * 5 + [(b - 0.005, b + 0.005)] * 5


@pytest.mark.parametrize("vectorised", [False, True])
@pytest.mark.parametrize("name", ["momentum", "fade_overreaction"])
def test_a_move_equal_to_the_threshold_never_triggers_at_any_price_level(name: str, vectorised: bool) -> None:
    # In floats 0.50 − 0.48 is 0.020000000000000018 (> 0.02) while 0.30 − 0.28 is 0.019999999999999990.
    markets = [(f"EQ{i}", None, _steps(a, a + 0.02)) for i, a in enumerate((0.48, 0.28, 0.70, 0.13))]
    markets += [("BEYOND", None, _steps(0.40, 0.4201))]  # a hundredth of a cent beyond: triggers
    s = get_strategy(name)
    params = s.parse_params({"lookback": 1, "threshold": 0.02, "hold": 0})
    result = simulate(make_dataset(markets), s, params, EngineConfig(vectorised=vectorised))
    assert [e.ticker for e in result.executions] == ["BEYOND"]
