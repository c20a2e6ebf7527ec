"""The PostgreSQL advisory lock keys of the product, in one place so that no two uses share one.

Advisory locks are per database; a key taken for one purpose blocks every other purpose with the same key (the
live runner's leadership once held the backtest queue's key, and every backtest create waited for the runner).
"""

from __future__ import annotations

#: The recorder's leadership (session lock, held while leading).
RECORDER_LEADER = 0x4B414C5348490001
#: Admission to the backtest queue (transaction lock: concurrent creates take turns so the bound holds exactly).
BACKTEST_QUEUE = 0x4B414C5348490002
#: The live (paper-trading) runner's leadership (session lock, held while leading).
LIVE_RUNNER_LEADER = 0x4B414C5348490003

ALL = {"recorder leader": RECORDER_LEADER, "backtest queue": BACKTEST_QUEUE, "live runner leader": LIVE_RUNNER_LEADER}
