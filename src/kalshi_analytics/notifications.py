"""The commit notification: what the recorder's sink tells readers (SSE, response cache) when a batch commits.

It travels as ``NOTIFY market_updates, '{"since": ..., "tickers": [...]}'``. The writer renders it with
:func:`render_payloads`, readers parse it with :func:`parse_payload`; neither touches the JSON by hand.
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


def render_payloads(notice: CommitNotice, limit: int = MAX_PAYLOAD_BYTES) -> list[str]:
    """The notice as JSON payloads, each under ``limit`` bytes: the tickers are split across as many as needed
    (each payload repeats ``since``). No tickers, no payload."""
    head = {"since": notice.since.isoformat() if notice.since is not None else None}
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
    if chunk:
        payloads.append(_dump(head, chunk))
    return payloads


def _dump(head: dict[str, Any], tickers: list[str]) -> str:
    return json.dumps({**head, "tickers": tickers}, separators=(",", ":"))


def parse_payload(payload: str) -> CommitNotice:
    """The notice in ``payload``; raises :class:`BadNotificationError` when it is not one.

    Lenient where being wrong is safe: non-string tickers are skipped, and an absent or unreadable ``since``
    becomes :data:`EARLIEST` (the commit may have touched any time).
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
    return CommitNotice(tuple(t for t in tickers if isinstance(t, str)), _since(message.get("since", EARLIEST)))


def _since(value: object) -> datetime | None:
    if value is None or value is EARLIEST:
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return EARLIEST
    return parsed if parsed.tzinfo is not None else EARLIEST
