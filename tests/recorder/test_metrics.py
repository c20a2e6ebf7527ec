from __future__ import annotations

import httpx

from kalshi_analytics.recorder.metrics import RecorderMetrics, serve_metrics


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
