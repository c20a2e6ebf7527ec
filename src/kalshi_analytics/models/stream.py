"""The live stream's journal: committed changes with database-wide, commit-ordered ids (see ``events.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, SmallInteger, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.orm import Mapped, mapped_column

from kalshi_analytics.models.base import Base


class StreamBatch(Base):
    """The events one transaction committed, ids ``first_id`` … ``last_id``: when (about), and per event its kind,
    its market, and either the key of the stored row it stands for (rendered when read) or its JSON payload.
    (The view ``stream_events``, made by the migration, shows them one per row.)"""

    __tablename__ = "stream_batches"

    last_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_id: Mapped[int] = mapped_column(BigInteger)
    committed_at: Mapped[datetime] = mapped_column(server_default=text("clock_timestamp()"))
    kinds: Mapped[list[str]] = mapped_column(ARRAY(Text))
    tickers: Mapped[list[str | None]] = mapped_column(ARRAY(Text))
    ts: Mapped[list[datetime | None]] = mapped_column(ARRAY(TIMESTAMP(timezone=True)))  # a snapshot's/book's key
    sources: Mapped[list[str | None]] = mapped_column(ARRAY(Text))
    refs: Mapped[list[str | None]] = mapped_column(ARRAY(Text))  # a trade's id
    payloads: Mapped[list[str | None]] = mapped_column(ARRAY(Text))  # JSON text, never parsed by the database


class StreamHead(Base):
    """The one row holding the last event id handed out; writers update it to take ids."""

    __tablename__ = "stream_head"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False, server_default=text("1"))
    last_id: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
