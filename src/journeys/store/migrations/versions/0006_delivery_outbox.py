"""Real delivery: the outbox records every provider call, and erased addresses stay suppressed.

- ``outbox`` gains ``message_kind`` (marketing | transactional), ``attempts`` (provider calls
  made), ``next_attempt_at`` (a retry waits until then), ``sending_at`` and ``dispatcher``
  (the intent to call the provider, committed before the call), ``provider_status`` and
  ``headers``. New status values: ``sending``, ``logged``, ``unknown``.
- ``suppressed_addresses``: hashed addresses that must never be contacted again (what
  ``journeys customers erase`` keeps of a person).
- ``customers.email_opt_in`` may be NULL: a profile that never said, which
  ``consent: {missing: deny}`` treats as no.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _utc() -> sa.DateTime:
    """What ``tables.UtcDateTime`` stores (a migration must not import today's tables)."""
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("message_kind", sa.String(16), nullable=False, server_default="marketing")
        )
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("next_attempt_at", _utc(), nullable=True))
        batch.add_column(sa.Column("sending_at", _utc(), nullable=True))
        batch.add_column(sa.Column("dispatcher", sa.String(200), nullable=True))
        batch.add_column(sa.Column("provider_status", sa.String(200), nullable=True))
        batch.add_column(sa.Column("headers", _JSON, nullable=True))
    # Rows sent before this revision made one provider call each.
    op.execute("UPDATE outbox SET attempts = 1 WHERE status IN ('sent', 'failed')")
    with op.batch_alter_table("customers") as batch:
        batch.alter_column(
            "email_opt_in", existing_type=sa.Boolean(), nullable=True, server_default=None
        )
    op.create_table(
        "suppressed_addresses",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "address_hash", name="pk_suppressed_addresses"),
    )


def downgrade() -> None:
    op.drop_table("suppressed_addresses")
    op.execute("UPDATE customers SET email_opt_in = true WHERE email_opt_in IS NULL")
    with op.batch_alter_table("customers") as batch:
        batch.alter_column(
            "email_opt_in",
            existing_type=sa.Boolean(),
            nullable=False,
            server_default=sa.true(),
        )
    with op.batch_alter_table("outbox") as batch:
        for column in (
            "headers",
            "provider_status",
            "dispatcher",
            "sending_at",
            "next_attempt_at",
            "attempts",
            "message_kind",
        ):
            batch.drop_column(column)
