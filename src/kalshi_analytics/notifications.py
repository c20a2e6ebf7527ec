"""The commit notification: what the recorder's sink tells readers (SSE, response cache) when a batch commits.

It travels as ``NOTIFY market_updates, '{"since": ..., "tickers": [...], "last_event_id": ...}'``. The writer
renders it with :func:`render_payloads`, readers parse it with :func:`parse_payload`; neither touches the JSON by
hand. ``last_event_id`` (absent when the commit journaled nothing) is the highest id the commit wrote to the
event journal (:mod:`kalshi_analytics.events`): the live stream reads the journal up to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kalshi_analytics.errors import InvalidInputError

CHANNEL = "market_updates"
# PostgreSQL refuses payloads of 8000 bytes or more; the margin leaves room for a reader's own quoting.
MAX_PAYLOAD_BYTES = 7900
# A notice whose ``since`` is absent or unreadable may have touched any time: readers treat it as the earliest.
EARLIEST = datetime.min.replace(tzinfo=UTC)


class BadNotificationError(InvalidInputError):
    """A payload on the channel is not a commit notification (a foreign ``NOTIFY`` or a corrupted one)."""


@dataclass(frozen=True, slots=True)
class CommitNotice:
    """One commit's news: the markets it touched and where in time its rows start.

    ``since`` is the earliest minute (exchange time) of the time-series rows (snapshots, trades, books) the commit
    wrote, or None when it wrote only catalogue rows (``markets``): an answer about a window ending at or before
    ``since`` is unaffected by this commit, which is what lets the API's response cache keep it.
    """

    tickers: tuple[str, ...]
    since: datetime | None = None
    last_event_id: int | None = None


def render_payloads(notice: CommitNotice, limit: int = MAX_PAYLOAD_BYTES) -> list[str]:
    """The notice as JSON payloads, each under ``limit`` bytes: the tickers are split across as many as needed
    (each payload repeats ``since`` and ``last_event_id``). No tickers and no events, no payload."""
    head: dict[str, Any] = {"since": notice.since.isoformat() if notice.since is not None else None}
    if notice.last_event_id is not None:
        head["last_event_id"] = notice.last_event_id
    empty = len(_dump(head, []).encode())
    payloads: list[str] = []
    chunk: list[str] = []
    size = empty
    for t in notice.tickers:
        item = len(json.dumps(t).encode()) + 1  # the quoted ticker and its comma
        if chunk and size + item > limit:
            payloads.append(_dump(head, chunk))
            chunk, size = [], empty
        chunk.append(t)
        size += item
    if chunk or (not payloads and notice.last_event_id is not None):
        payloads.append(_dump(head, chunk))
    return payloads


def _dump(head: dict[str, Any], tickers: list[str]) -> str:
    return json.dumps({**head, "tickers": tickers}, separators=(",", ":"))


def parse_payload(payload: str) -> CommitNotice:
    """The notice in ``payload``; raises :class:`BadNotificationError` when it is not one.

    Lenient where being wrong is safe: non-string tickers are skipped, an absent or unreadable ``since``
    becomes :data:`EARLIEST` (the commit may have touched any time), and an unreadable ``last_event_id`` None
    (a reader then reads the journal to its end).
    """
    try:
        message = json.loads(payload)
    except ValueError as exc:
        raise BadNotificationError(f"commit notification is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise BadNotificationError(f"commit notification is a JSON {type(message).__name__}, not an object")
    tickers = message.get("tickers")
    if not isinstance(tickers, list):
        raise BadNotificationError("commit notification has no list of tickers")
    last = message.get("last_event_id")
    return CommitNotice(
        tuple(t for t in tickers if isinstance(t, str)),
        _since(message.get("since", EARLIEST)),
        last if isinstance(last, int) and not isinstance(last, bool) else None,
    )


def _since(value: object) -> datetime | None:
    if value is None or value is EARLIEST:
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return EARLIEST
    return parsed if parsed.tzinfo is not None else EARLIEST
