"""What one event does to its customer, at the time it applies: the profile, lifecycle rules,
exits, resumed waits, survey answers, goals and new enrollments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from journeys.expressions import truthy
from journeys.plan import EventTrigger, Plan, SurveyStep, WaitForStep, survey_category
from journeys.runtime import decide
from journeys.runtime.advance import apply_outcome
from journeys.runtime.batch import Batch, CustomerState
from journeys.runtime.context import expression_context
from journeys.runtime.enroll import ended, enroll
from journeys.runtime.lifecycle import STAGE_ENTERED, apply_rules
from journeys.runtime.records import CREATING_EVENTS, RecordError, normalise_customer
from journeys.state import Ending, Enrollment, Event, Suppression, SurveyAnswer

SUPPRESSING_EVENTS = {
    "email.unsubscribed": "unsubscribed",
    "email.bounced": "bounced",
    "email.complained": "complaint",
}
"""Feedback events that stop marketing email to the customer, and the reason they record."""


def match(batch: Batch, state: CustomerState, event: Event, at: datetime) -> list[Event]:
    """Apply ``event`` to its customer at ``at`` (its time, or later for a late event);
    returns the events this emitted (stage changes). Raises :class:`RecordError` or
    :class:`~journeys.expressions.ExpressionError` for an event that cannot be used; the
    caller records that on the event and goes on."""
    if state.customer is None:
        if event.type not in CREATING_EVENTS:
            raise RecordError(
                f"unknown customer {event.customer_id!r}: import it or send customer.updated"
            )
        state.customer = batch.new_customer(event.customer_id, at)
    _apply_profile(batch, state, event, at)
    ev = event.view()
    ctx = expression_context(state.customer.view(), event=ev, answers={}, now=at, journey={})
    emitted: list[Event] = []
    stage_event = apply_rules(batch, state, event, ctx, at)
    if stage_event is not None:
        emitted.append(stage_event)
    answer = _answer(batch, state, event) if event.type == "survey.answered" else None
    resumed = [e for e in list(state.active) if _reach(batch, state, e, event, answer, at)]
    if answer is not None:
        _record_answer(batch, state, event, answer, resumed)
    _goals(batch, state, event, ctx, at)
    _triggers(batch, state, event, ev, ctx, at)
    return emitted


def _apply_profile(batch: Batch, state: CustomerState, event: Event, at: datetime) -> None:
    customer = state.customer
    assert customer is not None
    if event.type in CREATING_EVENTS:
        customer.update_profile(normalise_customer(event.data, partial=True), at)
    elif event.type == "order.placed":
        customer.record_order(event.data["total"], event.occurred_at, at)
    elif event.type in SUPPRESSING_EVENTS:
        reason = SUPPRESSING_EVENTS[event.type]
        if "email" not in state.suppressed:
            state.suppressed["email"] = reason
            batch.changes.suppressions.append(Suppression(customer.id, "email", reason, at))


def _answer(batch: Batch, state: CustomerState, event: Event) -> dict[str, Any]:
    """What a ``survey.answered`` event says, as ``answers.<step>`` shows it (without the
    category, which depends on the survey kind): the score, the comment and its analysis."""
    comment = event.data.get("comment") or None
    answer: dict[str, Any] = {"score": int(event.data["score"]), "comment": comment}
    analyse = batch.rt.analyse
    if comment is not None and analyse is not None:
        locale = state.customer.locale if state.customer else None
        found = analyse(str(comment), locale)
        answer.update(
            sentiment=found.sentiment,
            sentiment_score=found.score,
            keywords=list(found.keywords),
        )
    else:
        answer.update(sentiment="neutral", sentiment_score=0.0, keywords=[])
    return answer


def _reach(
    batch: Batch,
    state: CustomerState,
    enrollment: Enrollment,
    event: Event,
    answer: dict[str, Any] | None,
    at: datetime,
) -> bool:
    """``event`` reaching an active enrollment: an exit, or the event a wait waits for;
    True if it resumed the wait."""
    plan = batch.plan_for(enrollment)
    if plan is None or at < enrollment.entered_at:
        return False  # a late event from before this enrollment began is not about it
    if event.type in plan.exit_on:
        enrollment.finish(Ending.EXIT_EVENT, at, event.type)
        ended(state, enrollment)
        return False
    if enrollment.waiting_for == event.type:
        return _resume(state, plan, enrollment, event, answer, at)
    return False


def _resume(
    state: CustomerState,
    plan: Plan,
    enrollment: Enrollment,
    event: Event,
    answer: dict[str, Any] | None,
    at: datetime,
) -> bool:
    waiting = enrollment.waiting_step
    if not waiting or not plan.has_step(waiting):
        return False
    step = plan.step(waiting)
    vars_ = enrollment.vars
    if isinstance(step, SurveyStep):
        if answer is None or (event.data.get("journey"), event.data.get("step")) != (
            plan.journey,
            step.id,
        ):
            return False
        answers = dict(vars_.get("answers", {}))
        answers[step.id] = {
            **answer,
            "category": survey_category(step.survey, answer["score"]),
        }
        vars_ = {**vars_, "answers": answers}
    elif isinstance(step, WaitForStep):
        if step.when:
            customer = state.customer
            assert customer is not None
            ctx = expression_context(
                customer.view(),
                event=event.view(),
                answers=vars_.get("answers", {}),
                now=at,
                journey={"id": plan.journey, "name": plan.name},
            )
            if not truthy(step.when, ctx):
                return False
    else:
        return False
    apply_outcome(state, enrollment, decide.resume(step, vars_, at), at)
    return True


def _record_answer(
    batch: Batch,
    state: CustomerState,
    event: Event,
    answer: dict[str, Any],
    resumed: list[Enrollment],
) -> None:
    data = event.data
    journey, step_id = str(data.get("journey")), str(data.get("step"))
    plan = batch.plans.current.get(journey)
    kind = "nps"
    if plan and plan.has_step(step_id) and isinstance(plan.step(step_id), SurveyStep):
        kind = plan.step(step_id).survey  # type: ignore[attr-defined]
    score = answer["score"]
    analysed = answer["comment"] is not None and batch.rt.analyse is not None
    holder = next((e for e in resumed + state.active if e.journey == journey), None)
    batch.changes.answers.append(
        SurveyAnswer(
            event_id=event.id,
            customer_id=event.customer_id,
            journey=journey,
            step=step_id,
            kind=kind,
            score=score,
            category=survey_category(kind, score),
            comment=answer["comment"],
            answered_at=event.occurred_at,
            enrollment=holder,
            sentiment=answer["sentiment"] if analysed else None,
            sentiment_score=answer["sentiment_score"] if analysed else None,
            keywords=tuple(answer["keywords"]),
        )
    )


def _goals(
    batch: Batch, state: CustomerState, event: Event, ctx: dict[str, Any], at: datetime
) -> None:
    open_goals = []
    for candidate in state.goals:
        open_goals.append(candidate)
        plan = batch.plans.version(candidate.journey, candidate.version, batch.tx.load_version)
        goal = plan.goal if plan else None
        if goal is None or goal.event != event.type:
            continue
        entered = candidate.entered_at
        if at < entered or (
            goal.within_seconds and at > entered + timedelta(seconds=goal.within_seconds)
        ):
            continue
        if goal.when and not truthy(goal.when, ctx):
            continue
        if candidate.enrollment is not None:
            candidate.enrollment.convert(at)
        elif candidate.id is not None:
            batch.changes.conversions.append((candidate.id, at))
        open_goals.pop()
    state.goals = open_goals


def _triggers(
    batch: Batch,
    state: CustomerState,
    event: Event,
    ev: dict[str, Any],
    ctx: dict[str, Any],
    at: datetime,
) -> None:
    candidates = list(batch.plans.by_event.get(event.type, ()))
    if event.type == STAGE_ENTERED:
        candidates += batch.plans.by_stage.get(str(event.data.get("stage")), ())
    for plan in candidates:
        trigger = plan.trigger
        if isinstance(trigger, EventTrigger) and trigger.when:
            tctx = dict(ctx, journey={"id": plan.journey, "name": plan.name})
            if not truthy(trigger.when, tctx):
                continue
        enroll(batch, state, plan, at, ev)
