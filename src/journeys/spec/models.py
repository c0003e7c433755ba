"""Pydantic models of the journey language (structure only; semantics live in rules).

Every model forbids unknown keys and is strict (no silent ``"45"`` → ``45``). A step is one
of the ``*Spec`` step models, chosen by which type key it has (:data:`STEP_MODELS`); a trigger
likewise (:data:`TRIGGER_MODELS`). :class:`JourneySpec` combines them for the JSON Schema;
validation goes part by part (see :mod:`journeys.spec.structure`) so that one broken step does
not hide the problems of the others.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from journeys.settings import Feb29, Settings
from journeys.spec.delivery_models import AdvertisingSpec, ChannelsSpec, ConsentSpec
from journeys.spec.events import DataType
from journeys.spec.types import (
    Cron,
    DateField,
    Duration,
    EventType,
    ExitReason,
    Expression,
    JourneyId,
    QuietHours,
    SignedDuration,
    StepId,
    Target,
    TemplateName,
    TimeOfDay,
    TimeZone,
    VariantName,
)
from journeys.spec.web_models import SendgridSpec, TopicSpec, WebSpec

Stage = Literal["awareness", "consideration", "purchase", "loyalty", "advocacy"]
Channel = Literal["email", "sms", "push", "webhook", "console"]
CHANNELS: tuple[str, ...] = get_args(Channel)
"""The channel names a step may use (``channel:``)."""
MessageKind = Literal["marketing", "transactional"]
"""What a message is for: marketing needs consent and carries unsubscribe headers."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SenderSpec(_Model):
    """``sender: {email, name, reply_to, address}`` (project), or per journey (its From)."""

    email: str | None = None
    name: str | None = None
    reply_to: str | None = None
    address: str | None = None


# --------------------------------------------------------------------------- triggers


class EventTriggerSpec(_Model):
    """``trigger: {event: cart.updated, when: "…"}``."""

    event: EventType
    when: Expression | None = None


class DateTriggerSpec(_Model):
    """``trigger: {date: customer.birthday, at: "09:00", offset: -3d}``."""

    date: DateField
    at: TimeOfDay = "09:00"
    offset: SignedDuration | None = None


class ScheduleTriggerSpec(_Model):
    """``trigger: {schedule: "0 10 * * MON", segment: "…"}``."""

    schedule: Cron
    segment: Expression | None = None


class StageTriggerSpec(_Model):
    """``trigger: {stage: loyalty}``."""

    stage: Stage


TRIGGER_MODELS: dict[str, type[_Model]] = {
    "event": EventTriggerSpec,
    "date": DateTriggerSpec,
    "schedule": ScheduleTriggerSpec,
    "stage": StageTriggerSpec,
}
TriggerSpec = EventTriggerSpec | DateTriggerSpec | ScheduleTriggerSpec | StageTriggerSpec


class GoalSpec(_Model):
    """``goal: {event: order.placed, within: 7d, when: "…"}``."""

    event: EventType
    within: Duration | None = None
    when: Expression | None = None


# --------------------------------------------------------------------------- step bodies


class WaitUntil(_Model):
    """``wait: {until: "09:00"}``: the next local 09:00."""

    until: TimeOfDay


def _wait_kind(value: Any) -> str:
    return "until" if isinstance(value, dict) else "duration"


WaitValue = Annotated[
    Annotated[Duration, Tag("duration")] | Annotated[WaitUntil, Tag("until")],
    Discriminator(_wait_kind),
]


class WaitForBody(_Model):
    """``wait_for: {event: order.placed, within: 48h, when: "…"}``."""

    event: EventType
    within: Duration
    when: Expression | None = None


class BranchCaseSpec(_Model):
    """One case of a branch: ``{when: "…", goto: step}``; without ``when`` it is the else."""

    when: Expression | None = None
    goto: Target


class SplitVariantSpec(_Model):
    """One arm of a split: ``{variant: a, weight: 45, goto: step}``."""

    variant: Annotated[VariantName, Field(min_length=1)]
    weight: Annotated[int, Field(ge=0, le=100)]
    goto: Target


class SendBody(_Model):
    """``send: {template: cart_reminder, channel: email, subject: "…"}``."""

    template: TemplateName
    channel: Channel = "email"
    subject: str | None = None
    kind: MessageKind | None = None


class SurveyBody(_Model):
    """``survey: {kind: nps, template: nps_request, within: 7d}``."""

    kind: Literal["nps", "csat"]
    template: TemplateName
    within: Duration
    channel: Channel = "email"


class NotifyBody(_Model):
    """``notify: {to: support, template: detractor_alert}``."""

    to: str
    template: TemplateName


class EmitBody(_Model):
    """``emit: {event: advocacy.candidate, data: {…}}``."""

    event: EventType
    data: dict[str, Any] = Field(default_factory=dict)


class UpdateBody(_Model):
    """``update: {stage: purchase, set: {recovered_cart: true}}``."""

    stage: Stage | None = None
    set: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- steps


class _StepBase(_Model):
    id: StepId
    goto: Target | None = None


class WaitSpec(_StepBase):
    """``wait: 24h`` or ``wait: {until: "09:00"}``."""

    wait: WaitValue


class WaitForSpec(_StepBase):
    """``wait_for: {…}`` with ``on_event`` / ``on_timeout``."""

    wait_for: WaitForBody
    on_event: Target | None = None
    on_timeout: Target | None = None


class BranchSpec(_StepBase):
    """``branch: [{when, goto}, …, {goto}]``."""

    branch: Annotated[list[BranchCaseSpec], Field(min_length=1)]


class SplitSpec(_StepBase):
    """``split: [{variant, weight, goto}, …]`` (weights add up to 100)."""

    split: Annotated[list[SplitVariantSpec], Field(min_length=1)]


class SendSpec(_StepBase):
    """``send: {template: …}``."""

    send: SendBody


class SurveySpec(_StepBase):
    """``survey: {…}`` with ``on_answer`` / ``on_timeout``."""

    survey: SurveyBody
    on_answer: Target | None = None
    on_timeout: Target | None = None


class NotifySpec(_StepBase):
    """``notify: {to: team, template: …}``."""

    notify: NotifyBody


class EmitSpec(_StepBase):
    """``emit: {event: …}``."""

    emit: EmitBody


class UpdateSpec(_StepBase):
    """``update: {stage: …, set: {…}}``."""

    update: UpdateBody


class ExitSpec(_StepBase):
    """``exit: reason``."""

    exit: Annotated[ExitReason, Field(min_length=1)]


class GotoSpec(_StepBase):
    """A step that only jumps: ``{id: x, goto: y}``."""

    goto: Target


STEP_MODELS: dict[str, type[_StepBase]] = {
    "wait": WaitSpec,
    "wait_for": WaitForSpec,
    "branch": BranchSpec,
    "split": SplitSpec,
    "send": SendSpec,
    "survey": SurveySpec,
    "notify": NotifySpec,
    "emit": EmitSpec,
    "update": UpdateSpec,
    "exit": ExitSpec,
}
"""Step type key → model. A step with none of these keys but a ``goto`` is a :class:`GotoSpec`."""

StepSpec = (
    WaitSpec
    | WaitForSpec
    | BranchSpec
    | SplitSpec
    | SendSpec
    | SurveySpec
    | NotifySpec
    | EmitSpec
    | UpdateSpec
    | ExitSpec
    | GotoSpec
)
STEP_COMMON_KEYS = ("id", "goto")
STEP_OUTCOME_KEYS = ("on_event", "on_timeout", "on_answer")


# --------------------------------------------------------------------------- journey


class JourneyHead(_Model):
    """Every top-level key of a journey; ``trigger`` and ``steps`` are checked separately."""

    journey: JourneyId
    name: str | None = None
    description: str | None = None
    stage: Stage | None = None
    trigger: Any
    re_entry: Literal["never", "after_exit", "always"] = "after_exit"
    cooldown: Duration | None = None
    exit_on: list[EventType] = Field(default_factory=list)
    goal: GoalSpec | None = None
    quiet_hours: QuietHours | None = None
    timezone: TimeZone | None = None
    sender: SenderSpec | None = None
    steps: Annotated[list[Any], Field(min_length=1)]


class JourneySpec(JourneyHead):
    """A whole journey file (used for the JSON Schema)."""

    model_config = ConfigDict(
        title="journeys journey spec",
        json_schema_extra={
            "description": "One journey per file in journey_specs/ (docs/language.md)."
        },
    )

    trigger: TriggerSpec  # type: ignore[assignment]
    steps: Annotated[list[StepSpec], Field(min_length=1)]  # type: ignore[assignment]


# --------------------------------------------------------------------------- lifecycle


class StageRuleSpec(_Model):
    """``{event: order.placed, when: "…", stage: purchase}``."""

    event: EventType
    when: Expression | None = None
    stage: Stage


class LifecycleBody(_Model):
    """The ``lifecycle:`` mapping of ``journey_specs/lifecycle.yaml``."""

    stages: list[str] | None = None
    initial: Stage = "awareness"
    rules: list[StageRuleSpec] = Field(default_factory=list)


class LifecycleFile(_Model):
    """The whole ``lifecycle.yaml``."""

    model_config = ConfigDict(title="journeys lifecycle.yaml")

    lifecycle: LifecycleBody


# --------------------------------------------------------------------------- settings


class TeamSpec(_Model):
    """A ``teams:`` entry: where ``notify`` steps for this team go."""

    channel: Channel
    address: str | None = None
    url: str | None = None
    format: Literal["json", "slack"] | None = None
    secret_env: str | None = None


class FrequencyCapSpec(_Model):
    """``frequency_cap: {messages: 3, per: 1d}``."""

    messages: Annotated[int, Field(ge=1)]
    per: Duration


class EventDeclarationSpec(_Model):
    """An ``events:`` entry: a project event type, with its data fields if you declare them
    (``product.viewed: {data: {sku: string, price: number}}``)."""

    description: str | None = None
    data: dict[str, DataType] | None = None


class SettingsFile(_Model):
    """The project settings file ``journeys.yaml``."""

    model_config = ConfigDict(title="journeys journeys.yaml settings")

    timezone: TimeZone = Settings.timezone
    default_locale: str = Settings.default_locale
    feb29: Feb29 = Settings.feb29
    sender: SenderSpec | None = None
    teams: dict[str, TeamSpec] = Field(default_factory=dict)
    frequency_cap: FrequencyCapSpec | None = None
    base_url: str | None = None
    events: dict[EventType, EventDeclarationSpec] = Field(default_factory=dict)
    channels: ChannelsSpec | None = None
    consent: ConsentSpec | None = None
    list_unsubscribe_mailto: str | None = None
    advertising: AdvertisingSpec | None = None
    web: WebSpec | None = None
    topics: dict[str, TopicSpec] | None = None
    sendgrid: SendgridSpec | None = None
