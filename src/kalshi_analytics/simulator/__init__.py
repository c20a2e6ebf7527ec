"""The offline exchange: Kalshi's REST + WebSocket protocol served from a deterministic, seeded market model.

See :func:`run_simulator` for embedding it, ``kalshi-analytics simulate`` for running it on its own.
"""

from kalshi_analytics.simulator.faults import Faults, LogEntry, MessageLog
from kalshi_analytics.simulator.model import MarketModel
from kalshi_analytics.simulator.server import Simulator, SimulatorConfig, run_simulator

__all__ = ["Faults", "LogEntry", "MarketModel", "MessageLog", "Simulator", "SimulatorConfig", "run_simulator"]
