"""How a backtest reports its progress: one callback, ``on_phase(phase, done, total)``.

The service calls it around each phase of a run — ``load``, ``simulate``, ``persist`` — and a sweep around
``load``, ``runs`` and ``persist``; the engine's kernel never does (it stays free of anything but arrays).
Each phase starts with ``done == 0`` (``total`` is ``None`` while its size is unknown) and ends with a call
where ``done == total``; calls in between may advance ``done``. Whoever shows it (a progress bar on a terminal,
a line per phase in a log, nothing) implements :class:`OnPhase`; the callback must be cheap and must not raise.
"""

from __future__ import annotations

from typing import Protocol

#: The unit each phase counts, for whoever shows it.
UNITS = {"load": "snapshots", "simulate": "snapshots", "persist": "executions", "runs": "runs"}


class OnPhase(Protocol):
    def __call__(self, phase: str, done: int, total: int | None) -> None: ...


def no_progress(phase: str, done: int, total: int | None) -> None:
    """The callback of a run nobody watches."""
