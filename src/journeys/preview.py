"""``journeys preview``: a template rendered exactly as one customer would get it.

The message goes through the runtime's own renderer (:class:`journeys.runtime.render.Renderer`)
with the context a step would give it: the customer (from the database, or a sample customer
of :mod:`journeys.sampledata`), the event the journey was entered with (the customer's latest
stored event of the trigger's type, else a sample one), ``now``, the journey, and the
unsubscribe and survey links. Consent is applied too, so a customer without ``email_opt_in``
shows as suppressed, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from journeys.clock import Clock, iso
from journeys.plan import EventTrigger, NotifyStep, Plan, SendStep, StageTrigger, Step, SurveyStep
from journeys.runtime.context import customer_view, event_view, expression_context
from journeys.runtime.decide import MessageIntent
from journeys.runtime.messages import new_draft
from journeys.runtime.records import normalise_customer
from journeys.runtime.render import Renderer
from journeys.sampledata import generate_customers, generate_events
from journeys.spec import Project
from journeys.state import COLUMNS_OF, Customer, Enrollment

_SAMPLE_VALUES: dict[str, Any] = {
    "string": "example",
    "number": 42.5,
    "integer": 3,
    "boolean": True,
    "datetime": "2026-03-01T10:00:00Z",
    "list": [],
    "object": {},
    "any": "example",
}


class PreviewError(ValueError):
    """The template or customer to preview does not exist; the message says what does."""


@dataclass
class Preview:
    """A rendered message and where its parts came from."""

    template: str
    customer_id: str
    status: str
    """``pending`` (it would be sent), ``suppressed`` or ``failed``."""
    reason: str | None
    subject: str
    html: str
    text: str
    locale: str
    """The locale of the template file used (``""``: the file without a locale)."""
    journey: str | None = None
    step: str | None = None
    event: dict[str, Any] | None = None
    event_source: str = "none"
    """``stored`` (the customer's latest event of that type), ``sample`` or ``none``."""
    notes: list[str] = field(default_factory=list)


def template_uses(project: Project, template: str) -> list[tuple[Plan, Step]]:
    """The (journey, step) pairs that send ``template``, journeys by id."""
    plans = {**project.drafts, **project.plans}
    return [
        (plan, step)
        for _, plan in sorted(plans.items())
        for step in plan.steps
        if isinstance(step, SendStep | SurveyStep | NotifyStep) and step.template == template
    ]


def sample_customer(
    locale: str | None, initial_stage: str, default_locale: str = "en"
) -> dict[str, Any]:
    """A customer row like a stored one, from the sample data: one whose language is
    ``locale`` (else ``default_locale``) if the sample has one; ``locale`` is set on it."""
    people = generate_customers(40, seed=7)
    language = (locale or default_locale).split("-")[0]
    chosen = next((p for p in people if p["locale"].split("-")[0] == language), people[0])
    record = {k: v for k, v in chosen.items() if v not in ("", None)}
    if locale:
        record["locale"] = locale
    row = normalise_customer(record)
    row.setdefault("orders_count", 0)
    row.setdefault("lifetime_value", 0.0)
    row.setdefault("stage", initial_stage)
    return row


def sample_event(
    event_type: str, customer_id: str, now: datetime, declared: Mapping[str, str] | None
) -> dict[str, Any]:
    """An event of ``event_type`` for the preview: one from the sample data when it has that
    type, else one whose declared data fields hold example values."""
    people = generate_customers(40, seed=7)
    for found in generate_events(people, now, 30, seed=7):
        if found["type"] == event_type:
            return {**found, "customer_id": customer_id}
    data = {name: _SAMPLE_VALUES.get(kind, "example") for name, kind in (declared or {}).items()}
    return {
        "id": "preview",
        "type": event_type,
        "customer_id": customer_id,
        "occurred_at": iso(now),
        "data": data,
    }


def sample_answers(plan: Plan) -> dict[str, dict[str, Any]]:
    """An answer for every survey step of ``plan`` (``answers.<step>`` in templates): a low
    score, as the messages that quote answers are mostly alerts about unhappy customers."""
    found: dict[str, dict[str, Any]] = {}
    for step in plan.steps:
        if isinstance(step, SurveyStep):
            score, category = (5, "detractor") if step.survey == "nps" else (2, "unsatisfied")
            found[step.id] = {
                "score": score,
                "category": category,
                "comment": "(sample answer)",
                "sentiment": "negative",
                "sentiment_score": -0.6,
                "keywords": ["delivery"],
            }
    return found


def trigger_event_type(plan: Plan) -> str | None:
    """The type of the event a journey is entered with, if it has one."""
    if isinstance(plan.trigger, EventTrigger):
        return plan.trigger.event
    if isinstance(plan.trigger, StageTrigger):
        return "stage.entered"
    return None


def render_preview(
    project: Project,
    template: str,
    person: dict[str, Any],
    clock: Clock,
    *,
    event: dict[str, Any] | None = None,
    event_source: str = "none",
    journey: str | None = None,
) -> Preview:
    """Render ``template`` for customer row ``person`` as the step that sends it would."""
    uses = _senders(project, template, journey)
    plan, step = uses[0] if uses else (None, None)
    render = _outbox_renderer(project, template, plan, step, person, event, clock)
    row = render(person)
    preview = Preview(
        template=template,
        customer_id=str(person["id"]),
        status=row["status"],
        reason=row["error"],
        subject=row["subject"] or "",
        html=row["html"] or "",
        text=row["text"] or "",
        locale=row["locale"],
        journey=plan.journey if plan else None,
        step=step.id if step else None,
        event=event,
        event_source=event_source,
    )
    if len(uses) > 1:
        others = ", ".join(f"{p.journey}.{s.id}" for p, s in uses[1:])
        preview.notes.append(f"also sent by {others} (choose one with --journey)")
    if row["status"] == "suppressed":  # show what it would say, and that it is not sent
        consenting = {**person, "email": person.get("email") or "-", "email_opt_in": True}
        forced = render(consenting)
        preview.subject, preview.html = forced["subject"] or "", forced["html"] or ""
        preview.text, preview.locale = forced["text"] or "", forced["locale"]
    return preview


def _senders(project: Project, template: str, journey: str | None) -> list[tuple[Plan, Step]]:
    """The steps that send ``template`` (of ``journey`` when given); PreviewError when the
    template does not exist or that journey does not send it."""
    names = project.templates.names()
    if template not in names:
        from journeys.spec.diagnostics import did_you_mean, valid_list

        raise PreviewError(
            f"template {template!r} does not exist in {project.templates.directory}/"
            + did_you_mean(template, names)
            + valid_list(names, "templates")
        )
    uses = [u for u in template_uses(project, template) if journey in (None, u[0].journey)]
    if journey is not None and not uses:
        raise PreviewError(f"journey {journey!r} does not send template {template!r}")
    return uses


def _outbox_renderer(
    project: Project,
    template: str,
    plan: Plan | None,
    step: Step | None,
    person: dict[str, Any],
    event: dict[str, Any] | None,
    clock: Clock,
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function rendering the outbox row that ``step`` of ``plan`` would queue for a
    customer row, in the context the step would give it (``event``, sample answers, now)."""
    now = clock.now()
    intent = _intent(template, step)
    journey_view = {"id": plan.journey, "name": plan.name} if plan else {}
    answers = sample_answers(plan) if plan is not None else {}
    ctx = expression_context(
        customer_view(person),
        event=event_view(event),
        answers=answers,
        now=now,
        journey=journey_view,
    )
    renderer = Renderer(project.settings, project.templates, clock)
    owner = plan or Plan("preview", "preview", "0", EventTrigger("preview"), ())
    enrollment = Enrollment(owner.journey, owner.version, str(person["id"]), now, intent.step, now)
    enrollment.id = 0
    settings = project.settings

    def render(row: dict[str, Any]) -> dict[str, Any]:
        customer = customer_record(row, now)
        return renderer.outbox_row(new_draft(settings, customer, enrollment, intent, ctx, now))

    return render


def customer_record(row: dict[str, Any], at: datetime) -> Customer:
    """A :class:`~journeys.state.Customer` from a stored or sample customer row."""
    known = {k: v for k, v in row.items() if k in COLUMNS_OF["customers"] and v is not None}
    known.setdefault("created_at", at)
    known.setdefault("updated_at", at)
    known["id"] = str(row["id"])
    return Customer(**known)


def _intent(template: str, step: Step | None) -> MessageIntent:
    if isinstance(step, SendStep):
        return MessageIntent(step.id, "send", template, step.channel, step.subject)
    if isinstance(step, SurveyStep):
        return MessageIntent(step.id, "survey", template, step.channel)
    if isinstance(step, NotifyStep):
        return MessageIntent(step.id, "notify", template, "console", team=step.to)
    return MessageIntent("preview", "send", template, "email")
