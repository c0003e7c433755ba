"""Event time: the step an enrollment waits at gets a column, late events are marked, and
pending events are indexed by customer.

- ``enrollments.waiting_step``: the ``wait_for``/``survey`` step an enrollment waits at (it
  used to hide in ``vars.waiting_step``; the data moves here).
- ``events.applied_at``: when the engine applied an event that arrived after the engine had
  passed its time (a late event); NULL for every event applied at its own time.
- ``uq_enrollments_active`` is keyed ``(customer_id, journey)``: customer first, so it also
  finds a customer's other active enrollments (set-based steps run only for enrollments whose
  customer has nothing else due).
- ``ix_events_pending`` becomes ``(occurred_at) WHERE processed_at IS NULL`` and
  ``ix_events_pending_customer`` ``(customer_id, occurred_at) WHERE processed_at IS NULL``:
  a pass reads the pending events of a batch of customers; both indexes hold pending events
  only, so they stay small however many events were processed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from journeys.store.tables import UtcDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("processed_at IS NULL")
ACTIVE = sa.text("status = 'active'")


def _active_unique(columns: list[str]) -> None:
    op.drop_index("uq_enrollments_active", table_name="enrollments")
    op.create_index(
        "uq_enrollments_active",
        "enrollments",
        columns,
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("waiting_step", sa.String(100), nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("applied_at", UtcDateTime(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE enrollments SET waiting_step = vars->>'waiting_step', "
            "vars = vars - 'waiting_step' WHERE vars ? 'waiting_step'"
        )
    else:
        op.execute(
            "UPDATE enrollments SET waiting_step = json_extract(vars, '$.waiting_step'), "
            "vars = json_remove(vars, '$.waiting_step') "
            "WHERE json_type(vars, '$.waiting_step') IS NOT NULL"
        )
    _active_unique(["customer_id", "journey"])
    op.drop_index("ix_events_pending", table_name="events")
    op.create_index(
        "ix_events_pending",
        "events",
        ["occurred_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_events_pending_customer",
        "events",
        ["customer_id", "occurred_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    _active_unique(["journey", "customer_id"])
    op.drop_index("ix_events_pending_customer", table_name="events")
    op.drop_index("ix_events_pending", table_name="events")
    op.create_index("ix_events_pending", "events", ["processed_at", "occurred_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE enrollments SET vars = vars || jsonb_build_object('waiting_step', "
            "waiting_step) WHERE waiting_step IS NOT NULL"
        )
    else:
        op.execute(
            "UPDATE enrollments SET vars = json_set(vars, '$.waiting_step', waiting_step) "
            "WHERE waiting_step IS NOT NULL"
        )
    with op.batch_alter_table("events") as batch:
        batch.drop_column("applied_at")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("waiting_step")
