"""Insight: survey comment analysis columns and the indexes of the dashboard's customer page.

- ``survey_answers`` gains ``sentiment`` (negative | neutral | positive), ``sentiment_score``
  (-1..1) and ``keywords`` (a JSON list), filled by :mod:`journeys.insight.voc`;
- ``ix_outbox_customer`` (customer_id, created_at): a customer's messages, and the latest email
  before an email event that carries no message id;
- ``ix_survey_answers_customer``: a customer's answers;
- ``ix_events_type_time`` (type, occurred_at, customer_id): the report's orders and email
  events of a period without reading every event (retention from the index alone);
- ``ix_enrollments_entered`` (entered_at): the report's cohort of a period (only inserts pay
  for it: ``entered_at`` never changes).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("survey_answers") as batch:
        batch.add_column(sa.Column("sentiment", sa.String(8), nullable=True))
        batch.add_column(sa.Column("sentiment_score", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("keywords", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True)
        )
        batch.create_index("ix_survey_answers_customer", ["customer_id"])
    op.create_index("ix_outbox_customer", "outbox", ["customer_id", "created_at"])
    op.create_index("ix_events_type_time", "events", ["type", "occurred_at", "customer_id"])
    op.create_index("ix_enrollments_entered", "enrollments", ["entered_at"])


def downgrade() -> None:
    op.drop_index("ix_enrollments_entered", table_name="enrollments")
    op.drop_index("ix_events_type_time", table_name="events")
    op.drop_index("ix_outbox_customer", table_name="outbox")
    with op.batch_alter_table("survey_answers") as batch:
        batch.drop_index("ix_survey_answers_customer")
        batch.drop_column("keywords")
        batch.drop_column("sentiment_score")
        batch.drop_column("sentiment")
