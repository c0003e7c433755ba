"""The subscription topic of a message: ``outbox.topic``.

A template's front matter may name a topic of ``journeys.yaml`` (``topic: offers``); the
renderer records it on the outbox row, the unsubscribe link of the message leaves that topic
only, and the dispatcher holds back a message whose customer left its topic meanwhile.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("topic", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("topic")
