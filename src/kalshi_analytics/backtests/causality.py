"""Whether a run may use a strategy's vectorised ``signals``: checked on that run's own data first.

``signals`` sees a market's whole history at once, so nothing but the code stops it from reading later rows. Before
the engine uses it, the signals of markets of the run are recomputed on prefixes of their rows and must equal the
full run's on those rows (:func:`~kalshi_analytics.strategies.base.causal_violation`). The cuts: just after each
row where the full run emits an intent (an intent that only later data produced changes there), up to
``SIGNAL_CUTS`` of them spread over the market, plus ``RANDOM_CUTS`` seeded random rows (an intent later data
suppressed appears there). A strategy that declares ``causal_signals`` (the built-ins, proven by the test suite)
is spot-checked on ``SPOT_MARKETS`` markets; any other on every market. A failed check sends the run down the
per-event path (``on_event`` cannot look ahead) and the result says why; a strategy without ``on_event`` is
refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.strategies.base import MarketArrays, SignalArrays, Strategy, StrategyParams, causal_violation

SIGNAL_CUTS = 32
RANDOM_CUTS = 8
SPOT_MARKETS = 3
SPOT_SIGNAL_CUTS = 4
SPOT_RANDOM_CUTS = 4


class NotCausalError(InvalidInputError):
    """The strategy's ``signals`` use later data and it has no ``on_event`` to run instead."""


@dataclass(frozen=True)
class CausalCheck:
    """What the check did: ``verdict`` is ``checked`` (every market), ``spot_checked`` (declared causal; a few
    markets) or ``not_causal`` (then ``problem`` says where)."""

    verdict: str
    markets: int
    cuts: int
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict != "not_causal"

    def describe(self) -> dict[str, Any]:
        # No time taken: a result's metrics are a function of its data (the check's time is simulate time).
        out: dict[str, Any] = {"verdict": self.verdict, "markets": self.markets, "cuts": self.cuts}
        if self.problem is not None:
            out["problem"] = self.problem
        return out


def cuts_for(sets: Sequence[SignalArrays], n: int, seed: int, signal_cuts: int, random_cuts: int) -> list[int]:
    """Prefix lengths to recompute: after intents of the full run (evenly chosen), and seeded random ones."""
    rows = np.unique(np.concatenate([np.flatnonzero(s.side) for s in sets])) if sets else np.zeros(0, np.int64)
    if len(rows) > signal_cuts:
        rows = rows[np.linspace(0, len(rows) - 1, signal_cuts).round().astype(np.int64)]
    rng = np.random.default_rng(seed)
    random_rows = rng.integers(1, n + 1, size=min(random_cuts, n)) if n else np.zeros(0, np.int64)
    cuts = {int(r) + 1 for r in rows} | {int(r) for r in random_rows}
    return sorted(c for c in cuts if 0 < c < n)


class CausalChecker:
    """Fed each market's full signals as the engine computes them; decides which to check and checks them."""

    def __init__(self, strategy: Strategy, params: StrategyParams, markets: int) -> None:
        self.strategy, self.params = strategy, params
        self.declared = type(strategy).causal_signals
        # Spot checks take markets spread over the run (seeded), not only its first ones.
        chosen = np.random.default_rng(markets).permutation(markets)[:SPOT_MARKETS] if self.declared else None
        self._chosen = None if chosen is None else {int(k) for k in chosen}
        self.markets = self.cuts = 0
        self.problem: str | None = None

    def feed(self, k: int, arrays: MarketArrays, full: Sequence[SignalArrays]) -> None:
        if self.problem is not None or (self._chosen is not None and k not in self._chosen):
            return
        signal_cuts, random_cuts = (SPOT_SIGNAL_CUTS, SPOT_RANDOM_CUTS) if self.declared else (SIGNAL_CUTS, RANDOM_CUTS)
        cuts = cuts_for(full, len(arrays), k, signal_cuts, random_cuts)
        self.problem = causal_violation(self.strategy, arrays, self.params, cuts, full)
        self.markets += 1
        self.cuts += len(cuts)

    def result(self) -> CausalCheck:
        verdict = "not_causal" if self.problem is not None else "spot_checked" if self.declared else "checked"
        return CausalCheck(verdict, self.markets, self.cuts, self.problem)

    def refusal(self) -> NotCausalError:
        return NotCausalError(
            f"strategy {self.strategy.name!r}: its vectorised signals use later data ({self.problem}) and it has "
            "no on_event to run instead",
            field="strategy",
        )
