"""Everything the store holds about one person: export it, or erase it (the SQL of
``journeys customers export|erase``).

Erasing deletes the profile, the person's events, their stage history, their rendered
messages and their suppressions, blanks their enrollments' variables and survey comments,
and replaces their id in the rows that stay for the statistics (enrollments, survey scores)
with a random token that leads nowhere. What is kept about them is one hashed entry per
address (and one for the customer id) in ``suppressed_addresses``, so that the same address
imported again is never contacted again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from journeys.store.outbox import ERASED_ID, address_hash
from journeys.store.tables import (
    customers,
    enrollments,
    events,
    outbox,
    stage_history,
    step_runs,
    suppressed_addresses,
    suppressions,
    survey_answers,
)

ERASED = "erased"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _all(conn: Connection, stmt: Any) -> list[dict[str, Any]]:
    return [_plain(dict(r._mapping)) for r in conn.execute(stmt)]


def export_customer(conn: Connection, customer_id: str) -> dict[str, Any] | None:
    """Every row about ``customer_id``, JSON-ready (times as ISO 8601); None if unknown."""
    profile = conn.execute(select(customers).where(customers.c.id == customer_id)).first()
    if profile is None:
        return None
    runs = _all(conn, select(enrollments).where(enrollments.c.customer_id == customer_id))
    run_ids = [r["id"] for r in runs]
    return {
        "customer": _plain(dict(profile._mapping)),
        "events": _all(
            conn, select(events).where(events.c.customer_id == customer_id).order_by(events.c.seq)
        ),
        "enrollments": runs,
        "steps": _all(
            conn,
            select(step_runs)
            .where(step_runs.c.enrollment_id.in_(run_ids))
            .order_by(step_runs.c.id),
        ),
        "messages": _all(
            conn, select(outbox).where(outbox.c.customer_id == customer_id).order_by(outbox.c.id)
        ),
        "survey_answers": _all(
            conn, select(survey_answers).where(survey_answers.c.customer_id == customer_id)
        ),
        "stage_history": _all(
            conn, select(stage_history).where(stage_history.c.customer_id == customer_id)
        ),
        "suppressions": _all(
            conn, select(suppressions).where(suppressions.c.customer_id == customer_id)
        ),
    }


def erase_customer(conn: Connection, customer_id: str, now: datetime) -> dict[str, int] | None:
    """Erase ``customer_id`` (see the module docstring); returns counts per kind of row
    removed or made anonymous, or None when the store does not know the customer."""
    profile = conn.execute(select(customers).where(customers.c.id == customer_id)).first()
    if profile is None:
        return None
    token = f"erased-{uuid.uuid4().hex[:16]}"
    addresses = [(ERASED_ID, customer_id)]
    addresses += [(ch, str(v)) for ch, v in (("email", profile.email), ("sms", profile.phone)) if v]
    for channel, address in addresses:
        digest = address_hash(channel, address)
        exists = conn.execute(
            select(suppressed_addresses.c.address_hash).where(
                suppressed_addresses.c.channel == channel,
                suppressed_addresses.c.address_hash == digest,
            )
        ).first()
        if exists is None:
            conn.execute(
                suppressed_addresses.insert().values(
                    channel=channel, address_hash=digest, reason=ERASED, created_at=now
                )
            )
    counts = {
        "messages": _count(conn.execute(delete(outbox).where(outbox.c.customer_id == customer_id))),
        "events": _count(conn.execute(delete(events).where(events.c.customer_id == customer_id))),
        "stage_history": _count(
            conn.execute(delete(stage_history).where(stage_history.c.customer_id == customer_id))
        ),
        "suppressions": _count(
            conn.execute(delete(suppressions).where(suppressions.c.customer_id == customer_id))
        ),
    }
    ended = conn.execute(
        update(enrollments)
        .where(enrollments.c.customer_id == customer_id, enrollments.c.status == "active")
        .values(status="exited", exit_reason=ERASED, ended_at=now, wake_at=None, waiting_for=None)
    )
    counts["enrollments_ended"] = _count(ended)
    counts["enrollments"] = _count(
        conn.execute(
            update(enrollments)
            .where(enrollments.c.customer_id == customer_id)
            .values(customer_id=token, vars={})
        )
    )
    counts["survey_answers"] = _count(
        conn.execute(
            update(survey_answers)
            .where(survey_answers.c.customer_id == customer_id)
            .values(customer_id=token, comment=None)
        )
    )
    conn.execute(delete(customers).where(customers.c.id == customer_id))
    counts["customer"] = 1
    return counts


def _count(result: Any) -> int:
    return int(result.rowcount or 0)
