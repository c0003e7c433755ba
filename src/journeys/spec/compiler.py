"""Compile validated specs into plans (:mod:`journeys.plan`): explicit edges, seconds, minutes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from journeys.durations import parse_duration, parse_time_of_day
from journeys.plan import (
    END,
    MESSAGE_STEPS,
    STAGES,
    BranchCase,
    BranchStep,
    DateTrigger,
    EmitStep,
    EventTrigger,
    ExitStep,
    Goal,
    GotoStep,
    Lifecycle,
    NotifyStep,
    Plan,
    ScheduleTrigger,
    SendStep,
    SplitStep,
    SplitVariant,
    StageRule,
    StageTrigger,
    Step,
    SurveyStep,
    Trigger,
    UpdateStep,
    WaitForStep,
    WaitStep,
)
from journeys.spec.models import (
    BranchSpec,
    DateTriggerSpec,
    EmitSpec,
    EventTriggerSpec,
    ExitSpec,
    GotoSpec,
    JourneyHead,
    LifecycleFile,
    NotifySpec,
    ScheduleTriggerSpec,
    SendSpec,
    SplitSpec,
    StageTriggerSpec,
    StepSpec,
    SurveySpec,
    TriggerSpec,
    UpdateSpec,
    WaitForSpec,
    WaitSpec,
    WaitUntil,
)
from journeys.spec.types import parse_quiet_hours
from journeys.templates import TemplateStore

__all__ = ["compile_journey", "compile_lifecycle", "plan_version", "templates_used"]


def _signed_seconds(text: str | None) -> int:
    if not text:
        return 0
    text = text.strip()
    if text.startswith("-"):
        return -parse_duration(text[1:])
    return parse_duration(text)


def compile_trigger(spec: TriggerSpec) -> Trigger:
    """The plan trigger of a validated trigger spec."""
    if isinstance(spec, EventTriggerSpec):
        return EventTrigger(event=spec.event, when=spec.when)
    if isinstance(spec, DateTriggerSpec):
        return DateTrigger(
            field=spec.date.removeprefix("customer."),
            at_minutes=parse_time_of_day(spec.at),
            offset_seconds=_signed_seconds(spec.offset),
        )
    if isinstance(spec, ScheduleTriggerSpec):
        return ScheduleTrigger(cron=spec.schedule, segment=spec.segment)
    assert isinstance(spec, StageTriggerSpec)
    return StageTrigger(stage=spec.stage)


def compile_step(
    spec: StepSpec, following: str, template_kinds: Mapping[str, str | None] | None = None
) -> Step:
    """The plan step of a validated step; ``following`` is the id of the next step (or end).

    ``template_kinds``: the ``kind:`` each template's front matter declares; a send step's own
    ``kind`` wins, then its template's, else ``marketing``.
    """
    nxt = spec.goto or following
    kinds = template_kinds or {}
    if isinstance(spec, WaitSpec):
        return _wait_step(spec, nxt)
    if isinstance(spec, WaitForSpec):
        return _wait_for_step(spec, nxt)
    if isinstance(spec, BranchSpec):
        cases = tuple(BranchCase(goto=c.goto, when=c.when) for c in spec.branch)
        return BranchStep(id=spec.id, next=nxt, cases=cases)
    if isinstance(spec, SplitSpec):
        variants = tuple(SplitVariant(v.variant, v.weight, v.goto) for v in spec.split)
        return SplitStep(id=spec.id, next=nxt, variants=variants)
    if isinstance(spec, SendSpec):
        s = spec.send
        return SendStep(
            id=spec.id,
            next=nxt,
            template=s.template,
            channel=s.channel,
            subject=s.subject,
            message_kind=s.kind or kinds.get(s.template) or "marketing",
        )
    if isinstance(spec, SurveySpec):
        v = spec.survey
        return SurveyStep(
            id=spec.id,
            next=nxt,
            survey=v.kind,
            template=v.template,
            within_seconds=parse_duration(v.within),
            channel=v.channel,
            on_answer=spec.on_answer or nxt,
            on_timeout=spec.on_timeout or nxt,
            message_kind=kinds.get(v.template) or "marketing",
        )
    if isinstance(spec, NotifySpec):
        return NotifyStep(id=spec.id, next=nxt, to=spec.notify.to, template=spec.notify.template)
    if isinstance(spec, EmitSpec):
        return EmitStep(id=spec.id, next=nxt, event=spec.emit.event, data=dict(spec.emit.data))
    if isinstance(spec, UpdateSpec):
        u = spec.update
        return UpdateStep(id=spec.id, next=nxt, stage=u.stage, set=dict(u.set))
    if isinstance(spec, ExitSpec):
        return ExitStep(id=spec.id, next=END, reason=spec.exit)
    assert isinstance(spec, GotoSpec)
    return GotoStep(id=spec.id, next=spec.goto)


def _wait_step(spec: WaitSpec, nxt: str) -> WaitStep:
    """A fixed delay, or a wait until a time of day."""
    if isinstance(spec.wait, WaitUntil):
        return WaitStep(id=spec.id, next=nxt, until_minutes=parse_time_of_day(spec.wait.until))
    return WaitStep(id=spec.id, next=nxt, seconds=parse_duration(spec.wait))


def _wait_for_step(spec: WaitForSpec, nxt: str) -> WaitForStep:
    """A wait for an event; both outcomes default to the following step."""
    body = spec.wait_for
    return WaitForStep(
        id=spec.id,
        next=nxt,
        event=body.event,
        within_seconds=parse_duration(body.within),
        when=body.when,
        on_event=spec.on_event or nxt,
        on_timeout=spec.on_timeout or nxt,
    )


def templates_used(steps: Sequence[Step]) -> tuple[str, ...]:
    """Template names used by compiled ``steps``, in order of first use."""
    return tuple(dict.fromkeys(s.template for s in steps if isinstance(s, MESSAGE_STEPS)))


def plan_version(raw: bytes, templates: TemplateStore | None, names: tuple[str, ...]) -> str:
    """First 16 hex digits of sha256(spec bytes + digest of the templates used)."""
    h = hashlib.sha256(raw)
    if templates is not None:
        h.update(templates.digest(names).encode())
    return h.hexdigest()[:16]


def compile_journey(
    head: JourneyHead,
    trigger: TriggerSpec,
    steps: list[StepSpec],
    *,
    source: str = "",
    raw: bytes = b"",
    templates: TemplateStore | None = None,
    default_timezone: str = "UTC",
) -> Plan:
    """Build the :class:`~journeys.plan.Plan` of a structurally valid journey.

    ``raw`` is the spec file's bytes and, with the templates used, makes up ``version``.
    Semantic validity (targets exist, …) is the caller's business: use
    :func:`journeys.spec.load_project` to get only plans without errors.
    """
    ids = [s.id for s in steps]
    kinds = _template_kinds(steps, templates)
    compiled = tuple(
        compile_step(spec, ids[i + 1] if i + 1 < len(ids) else END, kinds)
        for i, spec in enumerate(steps)
    )
    names = templates_used(compiled)
    goal = None
    if head.goal is not None:
        within = parse_duration(head.goal.within) if head.goal.within else None
        goal = Goal(event=head.goal.event, within_seconds=within, when=head.goal.when)
    return Plan(
        journey=head.journey,
        name=head.name or head.journey,
        version=plan_version(raw, templates, names),
        trigger=compile_trigger(trigger),
        steps=compiled,
        stage=head.stage,
        re_entry=head.re_entry,
        cooldown_seconds=parse_duration(head.cooldown) if head.cooldown else None,
        exit_on=tuple(head.exit_on),
        goal=goal,
        quiet_hours=parse_quiet_hours(head.quiet_hours) if head.quiet_hours else None,
        timezone=head.timezone or default_timezone,
        source=source,
        templates=names,
        sender=head.sender.model_dump(exclude_none=True) if head.sender else None,
    )


def _template_kinds(
    steps: Sequence[StepSpec], templates: TemplateStore | None
) -> dict[str, str | None]:
    """``kind:`` of the front matter of every template a send or survey step uses."""
    if templates is None:
        return {}
    names = {s.send.template for s in steps if isinstance(s, SendSpec)}
    names |= {s.survey.template for s in steps if isinstance(s, SurveySpec)}
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = templates.kind(name)
        except Exception:  # a missing or broken template is reported by its own rule
            found[name] = None
    return found


def compile_lifecycle(spec: LifecycleFile) -> Lifecycle:
    """The :class:`~journeys.plan.Lifecycle` of a validated ``lifecycle.yaml``."""
    body = spec.lifecycle
    rules = tuple(StageRule(event=r.event, stage=r.stage, when=r.when) for r in body.rules)
    return Lifecycle(stages=STAGES, initial=body.initial, rules=rules)
