"""The language's name limits are the sizes of the columns that store those names."""

from __future__ import annotations

from sqlalchemy import String

from journeys.spec import limits
from journeys.store import tables


def _length(column: object) -> int:
    assert isinstance(column.type, String)  # type: ignore[attr-defined]
    return int(column.type.length)  # type: ignore[attr-defined]


def test_limits_equal_the_column_sizes() -> None:
    journey_columns = [t.c.journey for t in tables.metadata.tables.values() if "journey" in t.c]
    assert len(journey_columns) >= 5
    assert {_length(c) for c in journey_columns} == {limits.JOURNEY_ID}
    step_columns = [t.c.step for t in tables.metadata.tables.values() if "step" in t.c]
    assert {_length(c) for c in step_columns} == {limits.STEP_ID}
    assert _length(tables.events.c.type) == limits.EVENT_TYPE
    assert _length(tables.enrollments.c.waiting_for) == limits.EVENT_TYPE
    assert _length(tables.outbox.c.template) == limits.TEMPLATE_NAME
    assert _length(tables.enrollments.c.exit_reason) == limits.EXIT_REASON
    assert _length(tables.customers.c.id) == limits.CUSTOMER_ID
    assert {
        _length(t.c.customer_id) for t in tables.metadata.tables.values() if "customer_id" in t.c
    } == {limits.CUSTOMER_ID}
    assert _length(tables.events.c.id) == limits.EVENT_ID
    # A split records "variant <name>" as the step run's outcome.
    assert len("variant ") + limits.VARIANT <= _length(tables.step_runs.c.outcome)


def test_intake_text_limits_equal_the_customer_columns() -> None:
    from journeys.intake import CUSTOMER_TEXT, EVENT_TEXT

    for name, size in CUSTOMER_TEXT.items():
        assert _length(tables.customers.c[name]) == size, name
    for name, size in EVENT_TEXT.items():
        assert _length(tables.events.c[name]) == size, name
