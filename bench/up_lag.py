"""`kalshi-analytics up` as a user runs it (embedded PostgreSQL, simulator, recorder, API), for a while: how far the
exchange clock is from wall time, and the commit lag (exchange time → commit) as the log, ``/metrics`` and
``/api/v1/recorder/status`` each report it.

    python -m bench.up_lag --seconds 600
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import free_port

CLI = [sys.executable, "-m", "kalshi_analytics"]


def _metric_quantiles(body: str, q: float) -> float | None:
    """PromQL's histogram_quantile over every kind of ``kalshi_recorder_commit_lag_seconds`` in a /metrics body."""
    counts: dict[float, float] = {}
    for line in body.splitlines():
        if line.startswith("kalshi_recorder_commit_lag_seconds_bucket{"):
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            counts[float(le)] = counts.get(float(le), 0.0) + float(value)
    ordered = sorted(counts.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank, lower, below = q * ordered[-1][1], 0.0, 0.0
    for le, cumulative in ordered:
        if cumulative >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - below) / max(cumulative - below, 1e-12)
        lower, below = le, cumulative
    return lower


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ka-up-lag-"))
    root.chmod(0o755)
    api, sim, metrics = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "KALSHI_", "LOG_", "API_", "SIM_"))}
    env.update(KALSHI_ANALYTICS_DATA_DIR=str(root), API_PORT=str(api), SIM_PORT=str(sim), LOG_FORMAT="json")
    log_path = root / "up.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*CLI, "up", "--metrics-port", str(metrics)], stdout=log, stderr=log, env=env)
    try:
        time.sleep(args.seconds)
        state = httpx.get(f"http://127.0.0.1:{sim}/_sim/state", timeout=10).json()
        clock_behind = time.time() - float(state.get("now_ts") or state.get("clock", {}).get("now_ts"))
        body = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=10).text
        status = httpx.get(f"http://127.0.0.1:{api}/api/v1/recorder/status", timeout=10).json()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    summaries = [
        json.loads(line)
        for line in log_path.read_text(errors="replace").splitlines()
        if '"recorder_summary"' in line and line.startswith("{")
    ]
    last = summaries[-1] if summaries else {}
    out = {
        "seconds": args.seconds,
        "exchange_clock_behind_wall_s": round(clock_behind, 3),
        "log_commit_lag_p50_s": last.get("commit_lag_p50_s"),
        "log_commit_lag_p99_s": last.get("commit_lag_p99_s"),
        "metrics_commit_lag_p50_s": round(_metric_quantiles(body, 0.5) or float("nan"), 3),
        "metrics_commit_lag_p99_s": round(_metric_quantiles(body, 0.99) or float("nan"), 3),
        "status_commit_lag_p50_s": status.get("commit_lag_p50_seconds"),
        "status_commit_lag_p99_s": status.get("commit_lag_p99_seconds"),
        "messages": last.get("messages"),
    }
    print(json.dumps(out, indent=2))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
