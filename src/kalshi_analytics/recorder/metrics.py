"""Prometheus metrics of the recorder, in a registry of their own.

Not the global registry: tests, and several recorders in one process, each get a :class:`RecorderMetrics`
and never clash. ``serve_metrics`` exposes one over HTTP for the recorder process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    start_http_server,
)

from kalshi_analytics.kalshi import validation

PREFIX = "kalshi_recorder"
DATABASE_REFUSED = "database_refused"  # the rejection reason of a row PostgreSQL would not store
# Exchange → commit lag: 10 ms .. 60 s.
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class RecorderMetrics:
    """Every recorder metric; the loops and the sink share one instance."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        p = PREFIX
        # process_start_time_seconds, CPU, memory, open fds (Linux): a restart shows as a new start time.
        ProcessCollector(registry=r)
        # Exchange side (the poll and stream loops).
        self.messages = Counter(f"{p}_messages", "WebSocket/REST messages received, by type", ["type"], registry=r)
        # One counter for everything refused (a frame at the edge, a row by the database), every reason shown
        # from the start: a labelled counter has no sample until its label is first used.
        self.rejected = Counter(
            f"{p}_rejected", "Frames and rows refused (kept in rejected_frames.jsonl)", ["reason"], registry=r
        )
        for reason in (*validation.reasons(), DATABASE_REFUSED):
            self.rejected.labels(reason)
        self.gaps = Counter(f"{p}_gaps", "Feed gaps detected, by cause", ["cause"], registry=r)
        self.gaps_repaired = Counter(f"{p}_gaps_repaired", "Feed gaps repaired, by method", ["method"], registry=r)
        self.reconnects = Counter(f"{p}_reconnects", "WebSocket reconnects", registry=r)
        self.ws_connected = Gauge(
            f"{p}_ws_connected", "1 while the stream loop's WebSocket is connected (0 otherwise)", registry=r
        )
        self.poll_duration = Histogram(
            f"{p}_poll_duration_seconds", "Duration of one poll of all markets", buckets=POLL_BUCKETS, registry=r
        )
        self.poll_overruns = Counter(f"{p}_poll_overruns", "Polls that took longer than the interval", registry=r)
        # The sink.
        self.batch_rows = Histogram(f"{p}_batch_rows", "Items per written batch", buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram(
            f"{p}_batch_write_seconds", "Duration of one batch's unit of work", buckets=LAG_BUCKETS, registry=r
        )
        self.rows_written = Counter(f"{p}_rows_written", "New rows committed, by table", ["table"], registry=r)
        self.rows_duplicate = Counter(
            f"{p}_rows_duplicate", "Rows skipped as already stored, by table", ["table"], registry=r
        )
        self.rows_rejected = Counter(
            f"{p}_rows_rejected", "Rows refused by the database (bad data), by table", ["table"], registry=r
        )
        self.queue_depth = Gauge(f"{p}_queue_depth", "Items waiting in the sink's queue", registry=r)
        self.backpressure_waits = Counter(
            f"{p}_backpressure_waits", "put() calls that found the queue full (and waited or failed)", registry=r
        )
        self.db_outages = Counter(f"{p}_db_outages", "Times the database became unreachable", registry=r)
        self.db_retries = Counter(f"{p}_db_retries", "Batch write attempts retried after a transient error", registry=r)
        self.held_rows = Gauge(
            f"{p}_held_rows", "Rows accepted and not written yet (queue, batch in flight, spill file)", registry=r
        )
        self.spilled_rows = Counter(
            f"{p}_spilled_rows", "Rows sent to the spill file while the database was away", registry=r
        )
        self.rows_discarded = Counter(
            f"{p}_rows_discarded",
            "Rows a sink closed without writing (a deposed leader's, or a timed-out flush)",
            registry=r,
        )
        self.fenced_batches = Counter(
            f"{p}_fenced_batches", "Batches refused because this instance no longer holds the lease", registry=r
        )
        self.commit_lag = Histogram(
            f"{p}_commit_lag_seconds",
            "Exchange timestamp of a snapshot/trade the live feed delivered to the commit of its row",
            ["kind"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.snapshots_held_back = Counter(
            f"{p}_snapshots_held_back",
            "Snapshot rows (or markets fields) not written by the as-of rule, by reason",
            ["reason"],
            registry=r,
        )
        self.notifications = Counter(f"{p}_notifications", "NOTIFY market_updates sent", registry=r)
        self.partition_checks = Counter(
            f"{p}_partition_checks", "Checks that the months ahead have their partitions (created if not)", registry=r
        )
        self.partition_failures = Counter(
            f"{p}_partition_failures", "Partition checks that failed (tried again a minute later)", registry=r
        )
        # Leadership.
        self.leader = Gauge(f"{p}_leader", "1 while this instance holds the recorder lock", registry=r)
        self.heartbeat_failures = Counter(f"{p}_heartbeat_failures", "Heartbeat writes that failed", registry=r)
        self.takeovers = Counter(
            f"{p}_takeovers", "Expired leases this instance took over (ending the old holder's session)", registry=r
        )
        self.lease_outages = Counter(
            f"{p}_lease_outages", "Times the leader lost its database connection and held on", registry=r
        )

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of a sample (``*_total`` for counters), 0 when never observed; for tests and info."""
        v = self.registry.get_sample_value(name, labels or {})
        return 0.0 if v is None else v

    def render(self) -> bytes:
        """The text exposition format (for an HTTP handler of one's own)."""
        return generate_latest(self.registry)


def serve_metrics(metrics: RecorderMetrics, port: int, addr: str = "0.0.0.0") -> Any:  # noqa: S104
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns the server (``.shutdown()`` stops it)."""
    server, _thread = start_http_server(port, addr=addr, registry=metrics.registry)
    return server


def histogram_quantile(
    metrics: RecorderMetrics, name: str, q: float, labels: Mapping[str, str] | None = None
) -> float | None:
    """The ``q`` quantile of a histogram (summed over label sets matching ``labels``), interpolated linearly
    inside its bucket exactly as PromQL's ``histogram_quantile`` does; None when it holds no observation."""
    counts: dict[float, float] = {}
    for fam in metrics.registry.collect():
        for sample in fam.samples:
            if sample.name != f"{name}_bucket":
                continue
            if labels and any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            le = float(sample.labels["le"])
            counts[le] = counts.get(le, 0.0) + sample.value
    ordered = sorted(counts.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for le, cumulative in ordered:
        if cumulative >= rank:
            if math.isinf(le):  # past the last finite bucket: PromQL answers that bucket's bound
                return lower
            return lower + (le - lower) * (rank - below) / max(cumulative - below, 1e-12)
        lower, below = le, cumulative
    return lower


def commit_lag_quantiles(metrics: RecorderMetrics) -> dict[str, float | None]:
    """p50 and p99 of exchange time → commit (s, to the millisecond), over every kind of row."""
    out: dict[str, float | None] = {}
    for label, q in (("commit_lag_p50_s", 0.5), ("commit_lag_p99_s", 0.99)):
        value = histogram_quantile(metrics, f"{PREFIX}_commit_lag_seconds", q)
        out[label] = None if value is None else round(value, 3)
    return out
