"""Drop ``claimed_until``/``claimed_by``: nothing reads or writes them.

Workers never lease rows: they lock them for one transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the write lock on SQLite), and a dead worker's transaction rolls back, which frees
them. The columns promised leases that do not exist.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[object]:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): none of them is indexed or constrained.
    op.drop_column("enrollments", "claimed_until")
    op.drop_column("enrollments", "claimed_by")
    op.drop_column("outbox", "claimed_until")


def downgrade() -> None:
    op.add_column("outbox", sa.Column("claimed_until", _utc(), nullable=True))
    op.add_column("enrollments", sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.add_column("enrollments", sa.Column("claimed_until", _utc(), nullable=True))
