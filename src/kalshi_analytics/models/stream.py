"""The live stream's journal: committed changes with database-wide, commit-ordered ids (see ``events.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, SmallInteger, text
from sqlalchemy.orm import Mapped, mapped_column

from kalshi_analytics.models.base import Base


class StreamEvent(Base):
    """One event of the stream: its id, when it was committed (about), its kind and market, and either the key
    of the stored row it stands for (rendered when read) or its JSON payload."""

    __tablename__ = "stream_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    committed_at: Mapped[datetime] = mapped_column(server_default=text("clock_timestamp()"))
    kind: Mapped[str]
    ticker: Mapped[str | None]
    ts: Mapped[datetime | None]  # with ticker and source: a snapshot's or a book's key
    source: Mapped[str | None]
    ref: Mapped[str | None]  # a trade's id
    payload: Mapped[str | None]  # the JSON text sent as the event's data, never parsed by the database


class StreamHead(Base):
    """The one row holding the last event id handed out; writers update it to take ids."""

    __tablename__ = "stream_head"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False, server_default=text("1"))
    last_id: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
