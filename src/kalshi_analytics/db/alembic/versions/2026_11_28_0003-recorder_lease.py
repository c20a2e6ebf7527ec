"""recorder lease: a heartbeat deadline and an epoch next to the advisory lock, so a frozen leader can be deposed
and fenced

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recorder_lease",
        sa.Column("lock_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("backend_pid", sa.Integer(), nullable=True),
        sa.Column("acquired_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("renewed_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("lease_until", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lock_key", name=op.f("pk_recorder_lease")),
    )


def downgrade() -> None:
    op.drop_table("recorder_lease")
