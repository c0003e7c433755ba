"""Drop ``ix_enrollments_waiting``: no query reads it, and every enrollment write paid for it.

Matching finds a customer's enrollments through ``ix_enrollments_customer``; due enrollments
through ``ix_enrollments_due``. The ``(status, waiting_for, customer_id)`` index was updated by
every step of every enrollment (its status or ``waiting_for`` changes) and never used.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_enrollments_waiting", table_name="enrollments")


def downgrade() -> None:
    op.create_index(
        "ix_enrollments_waiting", "enrollments", ["status", "waiting_for", "customer_id"]
    )
