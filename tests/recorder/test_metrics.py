from __future__ import annotations

import httpx
import pytest

from kalshi_analytics.recorder.metrics import RecorderMetrics, commit_lag_quantiles, histogram_quantile, serve_metrics


def test_each_recorder_has_its_own_registry() -> None:
    a, b = RecorderMetrics(), RecorderMetrics()  # the global registry would refuse the second
    a.gaps.labels("seq_jump").inc(2)
    a.commit_lag.labels("snapshot").observe(0.02)
    assert a.value("kalshi_recorder_gaps_total", {"cause": "seq_jump"}) == 2
    assert b.value("kalshi_recorder_gaps_total", {"cause": "seq_jump"}) == 0
    assert a.value("kalshi_recorder_commit_lag_seconds_bucket", {"kind": "snapshot", "le": "0.025"}) == 1
    assert a.value("kalshi_recorder_commit_lag_seconds_bucket", {"kind": "snapshot", "le": "0.01"}) == 0


def test_metrics_are_served_over_http() -> None:
    m = RecorderMetrics()
    m.queue_depth.set(17)
    m.leader.set(1)
    server = serve_metrics(m, 0, addr="127.0.0.1")
    try:
        body = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).text
    finally:
        server.shutdown()
    assert "kalshi_recorder_queue_depth 17.0" in body
    assert "kalshi_recorder_leader 1.0" in body
    assert "# TYPE kalshi_recorder_rows_written_total counter" in body


def test_commit_lag_quantiles_interpolate_as_promql_does() -> None:
    m = RecorderMetrics()
    assert commit_lag_quantiles(m) == {"commit_lag_p50_s": None, "commit_lag_p99_s": None}
    for lag in [0.03] * 90 + [0.3] * 10:  # 90 in the (0.025, 0.05] bucket, 10 in (0.25, 0.5]
        m.commit_lag.labels("trade").observe(lag)
    # PromQL: rank 50 of 90 in (0.025, 0.05] → 0.025 + 0.025 · 50/90; rank 99 is the 9th of 10 in (0.25, 0.5].
    assert histogram_quantile(m, "kalshi_recorder_commit_lag_seconds", 0.5) == pytest.approx(0.025 + 0.025 * 50 / 90)
    assert histogram_quantile(m, "kalshi_recorder_commit_lag_seconds", 0.99) == pytest.approx(0.25 + 0.25 * 9 / 10)
    assert commit_lag_quantiles(m) == {"commit_lag_p50_s": 0.039, "commit_lag_p99_s": 0.475}
    m.commit_lag.labels("trade").observe(1000.0)  # past the last bucket: its bound, as PromQL answers
    assert histogram_quantile(m, "kalshi_recorder_commit_lag_seconds", 1.0) == 60.0
