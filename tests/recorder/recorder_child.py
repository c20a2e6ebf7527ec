"""A recorder in a process of its own, for tests that kill it with SIGKILL (a crash no ``finally`` sees).

    python -m tests.recorder.recorder_child DB_URL API_BASE WS_URL LOCK_KEY INSTANCE_ID TMP_DIR

Creates ``TMP_DIR/ready`` once it records (its stdout is its log), then records until killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from kalshi_analytics.config import load_settings
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.service import RecorderService
from tests.recorder.conftest import fast_config


async def main(db_url: str, api_base: str, ws_url: str, lock_key: str, instance_id: str, tmp: str) -> None:
    settings = load_settings(kalshi_api_base=api_base, kalshi_ws_url=ws_url, kalshi_rate_limit_rps=2000)
    cfg = fast_config(Path(tmp), lock_key=int(lock_key), instance_id=instance_id)
    service = RecorderService(create_engine(db_url), settings, cfg)
    task = asyncio.create_task(service.run(asyncio.Event()))
    await asyncio.wait_for(service.ready.wait(), 60)
    (Path(tmp) / "ready").touch()
    await task


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
