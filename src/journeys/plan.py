"""The compiled plan: an immutable, serialisable form of one journey.

A plan is what the runtime executes. It is produced by :func:`journeys.spec.compile_journey`
from a validated spec and knows nothing of YAML, SQL or Prefect. Every edge is explicit (a step's
``next`` is a step id or :data:`END`), durations are seconds, times of day are minutes after
midnight, and ``version`` is a content hash of the spec and the templates it uses, so that
in-flight enrollments stay on the version they started with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

END = "end"
"""The pseudo step id that ends an enrollment (status ``completed``)."""

STAGES: tuple[str, ...] = ("awareness", "consideration", "purchase", "loyalty", "advocacy")
"""Lifecycle stages, in order."""


# --------------------------------------------------------------------------- triggers


@dataclass(frozen=True)
class EventTrigger:
    """Enroll when an event of type ``event`` arrives and ``when`` (if any) is true."""

    event: str
    when: str | None = None
    kind: Literal["event"] = "event"


@dataclass(frozen=True)
class DateTrigger:
    """Enroll yearly on a customer date attribute (``birthday``) at ``at`` local time.

    ``offset_seconds`` shifts the date (``-3d`` fires three days before).
    """

    field: str
    at_minutes: int = 540
    offset_seconds: int = 0
    kind: Literal["date"] = "date"


@dataclass(frozen=True)
class ScheduleTrigger:
    """Enroll every customer matching ``segment`` at each ``cron`` time (journey time zone)."""

    cron: str
    segment: str | None = None
    kind: Literal["schedule"] = "schedule"


@dataclass(frozen=True)
class StageTrigger:
    """Enroll when a customer enters lifecycle ``stage``."""

    stage: str
    kind: Literal["stage"] = "stage"


Trigger = EventTrigger | DateTrigger | ScheduleTrigger | StageTrigger


@dataclass(frozen=True)
class Goal:
    """A conversion: ``event`` within ``within_seconds`` of entering the journey."""

    event: str
    within_seconds: int | None = None
    when: str | None = None


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Step:
    """Common fields of every step: its id and the step that follows (``END`` to finish)."""

    id: str
    next: str
    kind: ClassVar[str] = "step"

    def targets(self) -> tuple[str, ...]:
        """Every step id this step can move to (used for reachability and diagrams)."""
        return (self.next,)


@dataclass(frozen=True)
class WaitStep(Step):
    """Wait a fixed time (``seconds``) or until the next local ``until_minutes`` time of day."""

    seconds: int | None = None
    until_minutes: int | None = None
    kind: ClassVar[str] = "wait"


@dataclass(frozen=True)
class WaitForStep(Step):
    """Wait for ``event`` (optionally matching ``when``) for at most ``within_seconds``."""

    event: str = ""
    within_seconds: int = 0
    when: str | None = None
    on_event: str = END
    on_timeout: str = END
    kind: ClassVar[str] = "wait_for"

    def targets(self) -> tuple[str, ...]:
        return (self.on_event, self.on_timeout)


@dataclass(frozen=True)
class BranchCase:
    """One arm of a branch; ``when`` None is the else arm."""

    goto: str
    when: str | None = None


@dataclass(frozen=True)
class BranchStep(Step):
    """Go to the first case whose ``when`` is true (``next`` if none is)."""

    cases: tuple[BranchCase, ...] = ()
    kind: ClassVar[str] = "branch"

    def targets(self) -> tuple[str, ...]:
        targets = tuple(c.goto for c in self.cases)
        has_else = any(c.when is None for c in self.cases)
        return targets if has_else else (*targets, self.next)


@dataclass(frozen=True)
class SplitVariant:
    """One arm of an A/B split, with its weight in percent."""

    variant: str
    weight: int
    goto: str


@dataclass(frozen=True)
class SplitStep(Step):
    """Deterministic A/B split by hash(customer, journey, step)."""

    variants: tuple[SplitVariant, ...] = ()
    kind: ClassVar[str] = "split"

    def targets(self) -> tuple[str, ...]:
        return tuple(v.goto for v in self.variants)


@dataclass(frozen=True)
class SendStep(Step):
    """Render ``template`` and put it in the outbox for ``channel``."""

    template: str = ""
    channel: str = "email"
    subject: str | None = None
    message_kind: str = "marketing"
    """``marketing`` (needs consent, carries unsubscribe headers) or ``transactional``."""
    kind: ClassVar[str] = "send"


@dataclass(frozen=True)
class SurveyStep(Step):
    """Send a survey (``nps`` 0-10, ``csat`` 1-5); wait up to ``within_seconds`` for an answer."""

    survey: Literal["nps", "csat"] = "nps"
    template: str = ""
    within_seconds: int = 0
    channel: str = "email"
    on_answer: str = END
    on_timeout: str = END
    message_kind: str = "marketing"
    kind: ClassVar[str] = "survey"

    def targets(self) -> tuple[str, ...]:
        return (self.on_answer, self.on_timeout)


@dataclass(frozen=True)
class NotifyStep(Step):
    """Tell a team channel (named in settings) about this customer."""

    to: str = ""
    template: str = ""
    kind: ClassVar[str] = "notify"


@dataclass(frozen=True)
class EmitStep(Step):
    """Emit an event for this customer (chains journeys)."""

    event: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "emit"

    def __hash__(self) -> int:
        return hash((self.id, self.event))


@dataclass(frozen=True)
class UpdateStep(Step):
    """Move the customer to ``stage`` and/or set attributes (values are templates)."""

    stage: str | None = None
    set: dict[str, Any] = field(default_factory=dict)
    kind: ClassVar[str] = "update"

    def __hash__(self) -> int:
        return hash((self.id, self.stage))


@dataclass(frozen=True)
class ExitStep(Step):
    """End the enrollment early (status ``exited``) with ``reason``."""

    reason: str = "exit"
    kind: ClassVar[str] = "exit"

    def targets(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class GotoStep(Step):
    """A step that only jumps (``- id: x`` with just ``goto``)."""

    kind: ClassVar[str] = "goto"


STEP_TYPES: dict[str, type[Step]] = {
    cls.kind: cls
    for cls in (
        WaitStep,
        WaitForStep,
        BranchStep,
        SplitStep,
        SendStep,
        SurveyStep,
        NotifyStep,
        EmitStep,
        UpdateStep,
        ExitStep,
        GotoStep,
    )
}

MESSAGE_STEPS = (SendStep, SurveyStep, NotifyStep)
"""Steps that put a message in the outbox."""


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """One compiled journey. Build with :func:`journeys.spec.compile_journey`."""

    journey: str
    name: str
    version: str
    trigger: Trigger
    steps: tuple[Step, ...]
    stage: str | None = None
    re_entry: Literal["never", "after_exit", "always"] = "after_exit"
    cooldown_seconds: int | None = None
    exit_on: tuple[str, ...] = ()
    goal: Goal | None = None
    quiet_hours: tuple[int, int] | None = None
    timezone: str = "UTC"
    source: str = ""
    templates: tuple[str, ...] = ()
    sender: dict[str, str] | None = None
    """The journey's own ``sender`` (email, name, reply_to), over the project's."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {s.id: s for s in self.steps})

    @property
    def start(self) -> str:
        """The first step id (``END`` for a journey without steps)."""
        return self.steps[0].id if self.steps else END

    def step(self, step_id: str) -> Step:
        """The step with ``step_id``; ``KeyError`` if the plan has none."""
        return self._index[step_id]  # type: ignore[attr-defined]

    def has_step(self, step_id: str) -> bool:
        """Whether this plan version has ``step_id``."""
        return step_id in self._index  # type: ignore[attr-defined]

    def event_types(self) -> frozenset[str]:
        """Every event type this journey reacts to (trigger, wait_for, exit_on, goal, surveys;
        ``stage.entered`` for a stage trigger)."""
        types: set[str] = set(self.exit_on)
        if isinstance(self.trigger, EventTrigger):
            types.add(self.trigger.event)
        if isinstance(self.trigger, StageTrigger):
            types.add("stage.entered")
        if self.goal:
            types.add(self.goal.event)
        for step in self.steps:
            if isinstance(step, WaitForStep):
                types.add(step.event)
            if isinstance(step, SurveyStep):
                types.add("survey.answered")
        return frozenset(types)

    # ---------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["trigger"] = asdict(self.trigger)
        data["goal"] = asdict(self.goal) if self.goal else None
        data["steps"] = [{"type": s.kind, **asdict(s)} for s in self.steps]
        data["exit_on"] = list(self.exit_on)
        data["templates"] = list(self.templates)
        data["quiet_hours"] = list(self.quiet_hours) if self.quiet_hours else None
        return data

    def to_json(self) -> str:
        """Stable JSON (sorted keys), the saved artifact of ``journeys compile``."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """Rebuild a plan from :meth:`to_dict` output."""
        trig = dict(data["trigger"])
        trigger_cls = {
            "event": EventTrigger,
            "date": DateTrigger,
            "schedule": ScheduleTrigger,
            "stage": StageTrigger,
        }[trig["kind"]]
        steps: list[Step] = []
        for raw in data["steps"]:
            raw = dict(raw)
            step_cls = STEP_TYPES[raw.pop("type")]
            if step_cls is BranchStep:
                raw["cases"] = tuple(BranchCase(**c) for c in raw["cases"])
            if step_cls is SplitStep:
                raw["variants"] = tuple(SplitVariant(**v) for v in raw["variants"])
            steps.append(step_cls(**raw))
        goal = Goal(**data["goal"]) if data.get("goal") else None
        quiet = tuple(data["quiet_hours"]) if data.get("quiet_hours") else None
        return cls(
            journey=data["journey"],
            name=data["name"],
            version=data["version"],
            trigger=trigger_cls(**trig),
            steps=tuple(steps),
            stage=data.get("stage"),
            re_entry=data.get("re_entry", "after_exit"),
            cooldown_seconds=data.get("cooldown_seconds"),
            exit_on=tuple(data.get("exit_on", ())),
            goal=goal,
            quiet_hours=quiet,  # type: ignore[arg-type]
            timezone=data.get("timezone", "UTC"),
            source=data.get("source", ""),
            templates=tuple(data.get("templates", ())),
            sender=data.get("sender"),
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Read a plan written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def nps_category(score: int) -> str:
    """promoter (9-10), passive (7-8) or detractor (0-6)."""
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


def survey_category(kind: str, score: int) -> str:
    """The category of ``score`` in a survey of ``kind`` (``nps`` or ``csat``)."""
    return nps_category(score) if kind == "nps" else csat_category(score)


def csat_category(score: int) -> str:
    """satisfied (4-5), neutral (3) or unsatisfied (1-2)."""
    if score >= 4:
        return "satisfied"
    if score == 3:
        return "neutral"
    return "unsatisfied"


# --------------------------------------------------------------------------- lifecycle


@dataclass(frozen=True)
class StageRule:
    """Move a customer to ``stage`` when ``event`` arrives and ``when`` (if any) is true.

    Rules only move customers forward in :data:`STAGES` order; ``update`` steps may set any stage.
    """

    event: str
    stage: str
    when: str | None = None


@dataclass(frozen=True)
class Lifecycle:
    """The compiled ``journey_specs/lifecycle.yaml``: stages, the initial stage and the rules."""

    stages: tuple[str, ...] = STAGES
    initial: str = "awareness"
    rules: tuple[StageRule, ...] = ()

    def rank(self, stage: str | None) -> int:
        """Position of ``stage`` in the order (-1 for none or unknown)."""
        return self.stages.index(stage) if stage in self.stages else -1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "stages": list(self.stages),
            "initial": self.initial,
            "rules": [asdict(r) for r in self.rules],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lifecycle:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            stages=tuple(data["stages"]),
            initial=data["initial"],
            rules=tuple(StageRule(**r) for r in data["rules"]),
        )
