"""The in-memory store's indexes (active enrollments by customer and by step, pending events
by customer) follow every write and every rollback; long replays can forget what nobody
reads back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journeys.state import Ending, Enrollment, Event, Processed
from journeys.store.memory import MemoryStore, MemoryTx

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def enrollment(cid: str, step: str = "wait", hours: float = 1) -> Enrollment:
    return Enrollment("cart", "v1", cid, T0, step, T0 + timedelta(hours=hours))


def view(store: MemoryStore) -> tuple[list[tuple[str, str]], list[str], list[int | None]]:
    """What is due by T0 + 1 day: steps, customers, and c-1's active enrollment ids."""
    horizon = T0 + timedelta(days=1)
    return store.transaction(
        lambda tx: (
            tx.due_steps(horizon),
            tx.claim_customers_due(horizon, 10, ("cart", "wait")),
            [e.id for e in tx.active_enrollments(["c-1"])],
        )
    )


def test_an_enrollment_that_moves_on_and_ends_leaves_the_indexes() -> None:
    store = MemoryStore()
    first, second = enrollment("c-1"), enrollment("c-2", hours=2)
    store.transaction(lambda tx: tx.insert_enrollments([first, second]))
    assert view(store) == ([("cart", "wait")], ["c-1", "c-2"], [1])
    first.move("remind", T0 + timedelta(hours=3))
    store.transaction(lambda tx: tx.update_enrollments([first]))
    assert view(store) == ([("cart", "remind"), ("cart", "wait")], ["c-2"], [1])
    first.finish(Ending.COMPLETED, T0)
    store.transaction(lambda tx: tx.update_enrollments([first]))
    assert view(store) == ([("cart", "wait")], ["c-2"], [])


def test_a_rolled_back_transaction_leaves_the_indexes_as_they_were() -> None:
    store = MemoryStore()
    kept = enrollment("c-1")
    store.transaction(lambda tx: tx.insert_enrollments([kept]))
    before = view(store)

    def fail(tx: MemoryTx) -> None:
        tx.insert_enrollments([enrollment("c-2")])
        kept.move("remind", T0)
        tx.update_enrollments([kept])
        tx.insert_events([Event("e1", "cart.updated", "c-1", T0)])
        raise RuntimeError("conflict")

    with pytest.raises(RuntimeError):
        store.transaction(fail)
    assert view(store) == before
    assert store.transaction(lambda tx: tx.pending_events(["c-1"], T0)) == []
    assert store.pending_of == {"c-1": set()} and store.at_step["cart", "remind"] == set()


def test_pending_events_come_by_customer_in_arrival_order_up_to_the_horizon() -> None:
    store = MemoryStore()
    events = [
        Event("b", "x", "c-1", T0 + timedelta(hours=2)),
        Event("a", "x", "c-1", T0 + timedelta(hours=1)),
        Event("c", "x", "c-2", T0),
        Event("d", "x", "c-1", T0 + timedelta(hours=9)),
    ]
    store.transaction(lambda tx: tx.insert_events(events))
    found = store.transaction(lambda tx: tx.pending_events(["c-1"], T0 + timedelta(hours=5)))
    assert [e.id for e in found] == ["b", "a"]  # by arrival (seq), as the SQL store
    store.transaction(
        lambda tx: tx.mark_events_processed([Processed(found[0].seq or 0, None, None)], T0)
    )
    again = store.transaction(lambda tx: tx.pending_events(["c-1", "c-2"], T0 + timedelta(days=1)))
    assert [e.id for e in again] == ["a", "c", "d"]


def test_a_long_replay_forgets_processed_events_and_takes_the_step_runs() -> None:
    store = MemoryStore()
    events = [Event(f"e{i}", "x", "c-1", T0) for i in range(3)]
    store.transaction(lambda tx: tx.insert_events(events))
    store.transaction(lambda tx: tx.add_step_runs([{"journey": "cart", "step": "wait"}]))
    done = [Processed(seq, None, None) for seq in (1, 2)]
    store.transaction(lambda tx: tx.mark_events_processed(done, T0))
    assert store.forget_processed_events() == 2
    assert list(store.events) == [3] and list(store.event_ids) == ["e2"]
    assert [e.id for e in store.transaction(lambda tx: tx.pending_events(["c-1"], T0))] == ["e2"]
    assert store.take_step_runs() == [{"journey": "cart", "step": "wait"}]
    assert store.take_step_runs() == []
