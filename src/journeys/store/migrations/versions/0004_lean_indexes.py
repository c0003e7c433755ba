"""Leaner indexes on the two tables every step writes.

- ``ix_enrollments_due`` becomes ``(wake_at) WHERE status = 'active'``: due lookups only ever
  read active rows, and an enrollment that ends now leaves the index instead of moving to a
  ``(completed, NULL)`` entry nothing reads.
- ``ix_step_runs_enrollment`` is dropped: no query looks step runs up by enrollment.
- ``ix_step_runs_journey_step`` gains ``enrollment_id`` and so covers the report's funnel
  (distinct enrollments per journey and step) without reading the table.

Figure 2 of the benchmark (1M due waits) ran about 10 % faster with these alone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.drop_index("ix_enrollments_due", table_name="enrollments")
    op.create_index(
        "ix_enrollments_due",
        "enrollments",
        ["wake_at"],
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.drop_index("ix_step_runs_enrollment", table_name="step_runs")
    op.drop_index("ix_step_runs_journey_step", table_name="step_runs")
    op.create_index("ix_step_runs_journey_step", "step_runs", ["journey", "step", "enrollment_id"])


def downgrade() -> None:
    op.drop_index("ix_step_runs_journey_step", table_name="step_runs")
    op.create_index("ix_step_runs_journey_step", "step_runs", ["journey", "step"])
    op.create_index("ix_step_runs_enrollment", "step_runs", ["enrollment_id"])
    op.drop_index("ix_enrollments_due", table_name="enrollments")
    op.create_index("ix_enrollments_due", "enrollments", ["status", "wake_at"])
