"""Pure decisions: what one step does to one enrollment at one instant.

Nothing here touches the database, a channel or the clock. :func:`run_step` takes the plan,
the enrollment's state, the expression context and the logical time, and returns an
:class:`Outcome` that the engine applies in bulk. Like a Temporal workflow, the same inputs
always give the same decision, which is what makes virtual time and replays exact.

Waiting is encoded without a separate phase: a ``wait`` moves the enrollment to the following
step with a future ``wake_at``; a ``wait_for``/``survey`` moves it to its timeout target with
``wake_at`` = the deadline, ``waiting_for`` = the event type and ``waiting_step`` = itself, and
an arriving event moves it to ``on_event``/``on_answer`` instead (:func:`resume`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from journeys.expressions import ExpressionError, template_value, truthy
from journeys.plan import (
    END,
    BranchStep,
    EmitStep,
    ExitStep,
    GotoStep,
    NotifyStep,
    Plan,
    SendStep,
    SplitStep,
    Step,
    SurveyStep,
    UpdateStep,
    WaitForStep,
    WaitStep,
)
from journeys.runtime.records import RecordError, event_data
from journeys.runtime.timecalc import next_local_time, quiet_until, zone
from journeys.state import Status

ACTIVE, COMPLETED, EXITED = Status.ACTIVE, Status.COMPLETED, Status.EXITED


@dataclass(frozen=True)
class MessageIntent:
    """A message a step wants sent; the engine renders it into the outbox."""

    step: str
    kind: str  # send | survey | notify
    template: str
    channel: str
    subject: str | None = None
    team: str | None = None


@dataclass
class Outcome:
    """The new state of an enrollment after one step, plus the side effects to apply."""

    step: str
    wake_at: datetime | None
    status: Status = ACTIVE
    waiting_for: str | None = None
    waiting_step: str | None = None
    exit_reason: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)
    messages: list[MessageIntent] = field(default_factory=list)
    set_attributes: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None
    emits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """Whether the enrollment is over."""
        return self.status != ACTIVE


def split_bucket(customer_id: str, journey: str, step: str) -> int:
    """A stable bucket 0-99 from hash(customer, journey, step): the same customer always lands
    in the same variant of the same split, on every machine and every run."""
    digest = hashlib.sha256(f"{customer_id}\x1f{journey}\x1f{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _goto(outcome_step: str, at: datetime, vars_: dict[str, Any]) -> Outcome:
    if outcome_step == END:
        return Outcome(step=END, wake_at=None, status=COMPLETED, vars=vars_)
    return Outcome(step=outcome_step, wake_at=at, vars=vars_)


def run_step(
    plan: Plan,
    step: Step,
    *,
    customer_id: str,
    vars_: dict[str, Any],
    context: dict[str, Any],
    at: datetime,
    customer_tz: str | None,
) -> Outcome:
    """Execute ``step`` for one enrollment at logical time ``at``.

    ``context`` is the expression context (customer, event, answers, now, journey). An
    expression that fails, or an ``emit`` whose data an event of that type cannot have, ends
    the enrollment with exit reason ``error: …``; it never raises.
    """
    tz = zone(customer_tz, plan.timezone)
    vars_ = dict(vars_)
    try:
        return _run(plan, step, customer_id, vars_, context, at, tz)
    except (ExpressionError, RecordError) as exc:
        out = Outcome(step=step.id, wake_at=None, status=EXITED, vars=vars_)
        out.exit_reason = f"error: {step.id}: {exc}"[:200]
        out.history.append((step.id, "error"))
        return out


@dataclass(slots=True)
class _Turn:
    """Everything one step may read about this enrollment at this instant."""

    plan: Plan
    customer_id: str
    vars: dict[str, Any]
    context: dict[str, Any]
    at: datetime
    tz: Any


def _run(
    plan: Plan,
    step: Step,
    customer_id: str,
    vars_: dict[str, Any],
    context: dict[str, Any],
    at: datetime,
    tz: Any,
) -> Outcome:
    # One dict lookup instead of an isinstance chain: this runs for every step of every run.
    handler = _HANDLERS.get(type(step)) or _handler_by_base(step)
    return handler(step, _Turn(plan, customer_id, vars_, context, at, tz))


def _handler_by_base(step: Step) -> Callable[[Any, _Turn], Outcome]:
    """The handler of the nearest step kind ``step``'s class derives from."""
    for cls in type(step).__mro__:
        if cls in _HANDLERS:
            return _HANDLERS[cls]
    raise ExpressionError(f"step type {step.kind!r} is not supported by this engine")


def _wait(step: WaitStep, turn: _Turn) -> Outcome:
    if step.until_minutes is not None:
        wake = next_local_time(turn.at, step.until_minutes, turn.tz)
    else:
        wake = turn.at + timedelta(seconds=step.seconds or 0)
    # Even a trailing wait holds the enrollment: it completes at END when it wakes.
    out = Outcome(step=step.next, wake_at=wake, vars=turn.vars)
    out.history.append((step.id, "waited"))
    return out


def _wait_for(step: WaitForStep, turn: _Turn) -> Outcome:
    return _waiting(step, step.event, None, turn)


def _survey(step: SurveyStep, turn: _Turn) -> Outcome:
    deferred = _quiet_hours(turn.plan, step, turn.at, turn.tz, turn.vars)
    if deferred is not None:
        return deferred
    intent = MessageIntent(step.id, "survey", step.template, step.channel)
    return _waiting(step, "survey.answered", intent, turn)


def _waiting(
    step: WaitForStep | SurveyStep, event: str, intent: MessageIntent | None, turn: _Turn
) -> Outcome:
    """Park the enrollment on its timeout target until the deadline, waiting for ``event``."""
    out = Outcome(
        step=step.on_timeout,
        wake_at=turn.at + timedelta(seconds=step.within_seconds),
        waiting_for=event,
        waiting_step=step.id,
        vars=turn.vars,
    )
    if intent:
        out.messages.append(intent)
    out.history.append((step.id, f"waiting for {event}"))
    return out


def _send(step: SendStep, turn: _Turn) -> Outcome:
    deferred = _quiet_hours(turn.plan, step, turn.at, turn.tz, turn.vars)
    if deferred is not None:
        return deferred
    intent = MessageIntent(step.id, "send", step.template, step.channel, step.subject)
    return _message(step, intent, turn)


def _notify(step: NotifyStep, turn: _Turn) -> Outcome:
    intent = MessageIntent(step.id, "notify", step.template, "team", team=step.to)
    return _message(step, intent, turn)


def _message(step: SendStep | NotifyStep, intent: MessageIntent, turn: _Turn) -> Outcome:
    """Queue ``intent`` and go on to the step's next."""
    out = _goto(step.next, turn.at, turn.vars)
    out.messages.append(intent)
    out.history.append((step.id, f"{intent.kind} {step.template}"))
    return out


def _branch(step: BranchStep, turn: _Turn) -> Outcome:
    target = step.next
    label = "no case matched"
    for index, case in enumerate(step.cases):
        if truthy(case.when, turn.context):
            target = case.goto
            label = f"case {index + 1}" if case.when else "else"
            break
    out = _goto(target, turn.at, turn.vars)
    out.history.append((step.id, f"{label} → {target}"))
    return out


def _split(step: SplitStep, turn: _Turn) -> Outcome:
    bucket = split_bucket(turn.customer_id, turn.plan.journey, step.id)
    cumulative = 0
    chosen = step.variants[-1]
    for variant in step.variants:
        cumulative += variant.weight
        if bucket < cumulative:
            chosen = variant
            break
    vars_ = turn.vars
    variants = dict(vars_.get("variants", {}))
    variants[step.id] = chosen.variant
    vars_["variants"] = variants
    out = _goto(chosen.goto, turn.at, vars_)
    out.history.append((step.id, f"variant {chosen.variant}"))
    return out


def _update(step: UpdateStep, turn: _Turn) -> Outcome:
    out = _goto(step.next, turn.at, turn.vars)
    out.stage = step.stage
    out.set_attributes = {k: template_value(v, turn.context) for k, v in step.set.items()}
    out.history.append((step.id, "updated"))
    return out


def _emit(step: EmitStep, turn: _Turn) -> Outcome:
    out = _goto(step.next, turn.at, turn.vars)
    data = {k: template_value(v, turn.context) for k, v in step.data.items()}
    # The same checks as an ingested event: an emitted order.placed needs its total.
    out.emits.append((step.event, event_data(step.event, data)))
    out.history.append((step.id, f"emitted {step.event}"))
    return out


def _exit(step: ExitStep, turn: _Turn) -> Outcome:
    out = Outcome(step=step.id, wake_at=None, status=EXITED, vars=turn.vars)
    out.exit_reason = step.reason
    out.history.append((step.id, f"exit {step.reason}"))
    return out


def _goto_step(step: GotoStep, turn: _Turn) -> Outcome:
    out = _goto(step.next, turn.at, turn.vars)
    out.history.append((step.id, f"goto {step.next}"))
    return out


_HANDLERS: dict[type[Step], Callable[[Any, _Turn], Outcome]] = {
    WaitStep: _wait,
    WaitForStep: _wait_for,
    SurveyStep: _survey,
    SendStep: _send,
    NotifyStep: _notify,
    BranchStep: _branch,
    SplitStep: _split,
    UpdateStep: _update,
    EmitStep: _emit,
    ExitStep: _exit,
    GotoStep: _goto_step,
}


def _quiet_hours(
    plan: Plan, step: Step, at: datetime, tz: Any, vars_: dict[str, Any]
) -> Outcome | None:
    """A customer message due inside the journey's quiet hours waits, at this same step, for
    their end (customer-local); None when it may go now."""
    until = quiet_until(at, plan.quiet_hours, tz)
    if until is None:
        return None
    out = Outcome(step=step.id, wake_at=until, vars=vars_)
    out.history.append((step.id, "deferred: quiet hours"))
    return out


def resume(step: WaitForStep | SurveyStep, vars_: dict[str, Any], at: datetime) -> Outcome:
    """The event a ``wait_for``/``survey`` waited for arrived at ``at``: go on_event/on_answer."""
    target = step.on_event if isinstance(step, WaitForStep) else step.on_answer
    out = _goto(target, at, dict(vars_))
    out.history.append((step.id, "answered" if isinstance(step, SurveyStep) else "event arrived"))
    return out
