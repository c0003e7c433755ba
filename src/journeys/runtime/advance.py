"""Running a due enrollment's step in Python: the decision from :mod:`.decide`, applied to the
enrollment, the customer and the batch's changes."""

from __future__ import annotations

from datetime import datetime

from journeys.plan import END, Plan
from journeys.runtime import decide
from journeys.runtime.batch import Batch, CustomerState, engine_event_id
from journeys.runtime.context import expression_context
from journeys.runtime.enroll import ended
from journeys.runtime.lifecycle import change_stage
from journeys.runtime.messages import draft
from journeys.state import Ending, Enrollment, Event, iso


def apply_outcome(
    state: CustomerState, enrollment: Enrollment, out: decide.Outcome, at: datetime
) -> None:
    """Move ``enrollment`` as ``out`` says, with its history; end it if ``out`` ends it."""
    for step_id, label in out.history:
        enrollment.log(step_id, at, label)
    enrollment.move(
        out.step,
        out.wake_at,
        waiting_for=out.waiting_for,
        waiting_step=out.waiting_step,
        vars_=out.vars,
    )
    if out.status is decide.COMPLETED:
        enrollment.finish(Ending.COMPLETED, at, log=False)
        ended(state, enrollment)
    elif out.status is decide.EXITED:
        ending = Ending.ERROR if (out.exit_reason or "").startswith("error") else Ending.EXIT_STEP
        enrollment.finish(ending, at, out.exit_reason, log=False)
        ended(state, enrollment)


def advance(batch: Batch, state: CustomerState, enrollment: Enrollment) -> list[Event]:
    """Run the step ``enrollment`` is due at, at its wake time; returns the events it emitted
    (stage changes, ``emit`` steps), which the customer's timeline handles next."""
    at = enrollment.wake_at
    assert at is not None
    plan = batch.plan_for(enrollment)
    customer = state.customer
    if plan is None or customer is None:
        fail(state, enrollment, at, "error: plan version or customer missing")
        return []
    if enrollment.waiting_for:
        # A wait_for/survey deadline passed: record the timeout on the waiting step.
        enrollment.log(enrollment.waiting_step or enrollment.step, at, "timed out")
    if enrollment.step == END:
        enrollment.move(END, None)
        enrollment.finish(Ending.COMPLETED, at)
        ended(state, enrollment)
        return []
    if not plan.has_step(enrollment.step):
        fail(state, enrollment, at, f"error: step {enrollment.step!r} not in version")
        return []
    return _run(batch, state, enrollment, plan, at)


def fail(state: CustomerState, enrollment: Enrollment, at: datetime, reason: str) -> None:
    """End ``enrollment`` with an error reason (this customer only, never the batch)."""
    enrollment.finish(Ending.ERROR, at, reason)
    ended(state, enrollment)


def _run(
    batch: Batch, state: CustomerState, enrollment: Enrollment, plan: Plan, at: datetime
) -> list[Event]:
    customer = state.customer
    assert customer is not None
    step = plan.step(enrollment.step)
    vars_ = enrollment.vars
    ctx = expression_context(
        customer.view(),
        event=vars_.get("event"),
        answers=vars_.get("answers", {}),
        now=at,
        journey={"id": plan.journey, "name": plan.name},
    )
    out = decide.run_step(
        plan,
        step,
        customer_id=customer.id,
        vars_=vars_,
        context=ctx,
        at=at,
        customer_tz=customer.timezone or None,
    )
    if out.messages:
        sent = dict(out.vars.get("sent", {}))
        for intent in out.messages:
            sent[intent.step] = sent.get(intent.step, 0) + 1
        out.vars["sent"] = sent
    apply_outcome(state, enrollment, out, at)
    for intent in out.messages:
        draft(batch, state, enrollment, intent, ctx, at, plan)
    if out.set_attributes:
        customer.set_attributes(out.set_attributes, at)
    emitted: list[Event] = []
    if out.stage:
        cause = f"{plan.journey}\x1f{iso(enrollment.entered_at)}\x1f{step.id}"
        reason = f"{plan.journey}.{step.id}"
        stage_event = change_stage(batch, customer, out.stage, at, reason, cause=cause)
        if stage_event is not None:
            emitted.append(stage_event)
    for event_type, data in out.emits:
        event = Event(
            id=engine_event_id(
                "emit",
                customer.id,
                plan.journey,
                iso(enrollment.entered_at) or "",
                step.id,
                iso(at) or "",
            ),
            type=event_type,
            customer_id=customer.id,
            occurred_at=at,
            data=data,
            received_at=batch.now,
            source=f"journey:{plan.journey}",
        )
        batch.changes.emitted.append(event)
        emitted.append(event)
    return emitted
