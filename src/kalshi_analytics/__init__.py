"""Kalshi Analytics: record, serve, backtest and paper-trade Kalshi event contracts."""

__version__ = "0.1.0"
