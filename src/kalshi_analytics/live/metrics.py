"""Prometheus metrics of the live runner, in a registry of its own (``live runner --metrics-port``)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server

PREFIX = "kalshi_live"
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r, p = self.registry, PREFIX
        ProcessCollector(registry=r)  # process_start_time_seconds etc.: a restart shows as a new start time
        self.leader = Gauge(f"{p}_leader", "1 while this runner leads (0 as standby)", registry=r)
        self.sessions = Gauge(f"{p}_sessions", "Running paper sessions this runner advances", registry=r)
        self.stale_markets = Gauge(f"{p}_stale_markets", "Session markets with an open feed gap", registry=r)
        self.events = Counter(f"{p}_events_applied", "Snapshots applied to a session (one per session)", registry=r)
        self.fills = Counter(f"{p}_fills", "Paper fills committed", registry=r)
        self.commits = Counter(f"{p}_commits", "Runner transactions committed", registry=r)
        self.step_failures = Counter(f"{p}_step_failures", "Runner steps that failed on an error (retried)", registry=r)
        self.outages = Counter(f"{p}_database_outages", "Times the database went away under the runner", registry=r)
        self.lag = Histogram(
            f"{p}_lag_seconds",
            "Exchange time of the newest snapshot applied → the runner's commit of it",
            buckets=LAG_BUCKETS,
            registry=r,
        )

    def value(self, name: str) -> float:
        v = self.registry.get_sample_value(name, {})
        return 0.0 if v is None else v


def serve_metrics(metrics: LiveMetrics, port: int, addr: str = "0.0.0.0") -> Any:  # noqa: S104
    """Serve ``/metrics`` from a daemon thread; returns the server (``.shutdown()`` stops it)."""
    server, _thread = start_http_server(port, addr=addr, registry=metrics.registry)
    return server
