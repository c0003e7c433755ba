"""Compile journeys to Prefect deployments; register them for a work pool or serve them.

One deployment per journey, **named after the journey**, running the module-level flow
``flows/journey_flows.py:journey_flow`` with the parameters ``{"journey": <id>}`` (ids only):

===================================  ==========================================================
plan                                 Prefect
===================================  ==========================================================
``journey`` / ``name`` / ``version``  deployment name / description / version
``stage``                            tags ``journeys``, ``stage:<stage>``, ``trigger:<kind>``
event types it reacts to             one ``DeploymentEventTrigger`` expecting ``crm.<type>`` for
(``Plan.event_types()``: trigger,    each, on resources ``journeys.customer.*``
wait_for, exit_on, goal, surveys,
``stage.entered`` for a stage one)
``trigger: {date: …, at: …}``        cron ``*/15 * * * *`` (UTC): see :data:`DATE_SWEEP_CRON`
``trigger: {schedule: CRON}``        ``Cron(CRON, timezone=<journey timezone>)``
(every journey)                      concurrency limit 1, collision strategy ``CANCEL_NEW``
===================================  ==========================================================

plus one ``tick`` deployment (flow ``journeys-tick``) every minute: it advances waits that came
due with no event to trigger their journey, and dispatches the outbox.

Coalescing (a burst of 10,000 events must not become 10,000 flow runs) works on two levels:

1. **The trigger throttles.** A reactive Prefect trigger with ``threshold=1`` and
   ``within=W`` fires on the first matching event and then ignores matching events until ``W``
   after it (the server's bucket for the trigger is "spent"); the next event after that opens a
   new bucket and fires again. So a journey gets at most one triggered run per ``W``, however
   many events arrive. The run is scheduled ``W + settle`` after the first event
   (``schedule_after``), i.e. after the window it stands for has closed and the server has
   persisted its events (the event persister flushes every few seconds), so the run sees every
   event of the window.
2. **A run handles everything pending.** The triggered run does not receive the event; it pulls
   every ``crm.*`` event since a cursor from the Prefect API, ingests them into the deduplicated
   event store, processes every pending event and advances every due enrollment of its journey,
   and repeats while new events keep arriving. With the deployment's concurrency limit 1 and
   ``CANCEL_NEW``, a run that would start while another run of the same journey is still going is
   cancelled instead of queued: the running one picks up its events. The ``tick`` deployment
   (every minute) is the safety net for the rare event that lands just as a run finishes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from journeys.orchestration.flow_support import ENV_SPECS, ENV_TEMPLATES
from journeys.orchestration.prefect_events import (
    CUSTOMER_RESOURCE_PREFIX,
    prefect_event_name,
)
from journeys.plan import DateTrigger, Plan, ScheduleTrigger, StageTrigger

FLOWS_FILE = "flows/journey_flows.py"
"""The flows module, relative to the project root (the deployments' source directory)."""

JOURNEY_ENTRYPOINT = f"{FLOWS_FILE}:journey_flow"
TICK_ENTRYPOINT = f"{FLOWS_FILE}:tick"
JOURNEY_FLOW_NAME = "journey"
TICK_FLOW_NAME = "journeys-tick"
TICK_DEPLOYMENT = "tick"
TICK_CRON = "* * * * *"

DATE_SWEEP_CRON = "*/15 * * * *"
"""How often a date journey sweeps for due customers (UTC).

A date trigger fires at a *customer-local* time (``09:00`` on the birthday in each customer's
own time zone), so one journey fires at many UTC instants a day, one per time-zone offset, and
offsets are whole hours, half hours (India +05:30) or quarter hours (Nepal +05:45, Chatham
+12:45). A daily cron would send most customers their message at the wrong hour; every 15
minutes hits every offset's 09:00 on time. The sweep is idempotent (one enrollment per customer
and year) and cheap (an indexed lookup of today's ``MM-DD``), so running it 96 times a day costs
little.
"""

DEFAULT_WINDOW_SECONDS = 10
"""Coalescing window ``W``: at most one triggered run per journey every ``W`` seconds."""

DEFAULT_SETTLE_SECONDS = 6
"""Extra delay before a triggered run starts, so the server has persisted the window's events
(the Prefect event persister flushes every 5 s by default)."""

TAG = "journeys"


# --------------------------------------------------------------------------- the pure model


@dataclass(frozen=True)
class TriggerSpec:
    """A ``DeploymentEventTrigger`` to create."""

    name: str
    expect: tuple[str, ...]
    match: dict[str, str]
    within_seconds: int
    schedule_after_seconds: int
    parameters: dict[str, Any]
    threshold: int = 1
    posture: str = "Reactive"


@dataclass(frozen=True)
class ScheduleSpec:
    """A cron schedule to create, with why it exists."""

    cron: str
    timezone: str
    reason: str


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything ``journeys deploy`` creates for one deployment; printable and testable."""

    name: str
    flow_name: str
    entrypoint: str
    parameters: dict[str, Any]
    tags: tuple[str, ...]
    description: str
    version: str | None = None
    triggers: tuple[TriggerSpec, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()
    concurrency_limit: int = 1
    collision_strategy: str = "CANCEL_NEW"
    journey: str | None = None

    @property
    def full_name(self) -> str:
        """``<flow name>/<deployment name>``, as Prefect names deployments."""
        return f"{self.flow_name}/{self.name}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``journeys deploy --dry-run --json``)."""
        data = asdict(self)
        data["full_name"] = self.full_name
        data["tags"] = list(self.tags)
        data["triggers"] = [{**asdict(t), "expect": list(t.expect)} for t in self.triggers]
        data["schedules"] = [asdict(s) for s in self.schedules]
        return data


@dataclass(frozen=True)
class DeployOptions:
    """Knobs of :func:`plan_deployments` (defaults suit production)."""

    window_seconds: int = DEFAULT_WINDOW_SECONDS
    settle_seconds: int = DEFAULT_SETTLE_SECONDS
    date_sweep_cron: str = DATE_SWEEP_CRON
    tick: bool = True
    tick_cron: str = TICK_CRON
    extra_tags: tuple[str, ...] = field(default_factory=tuple)


def journey_event_types(plan: Plan) -> list[str]:
    """The CRM event types that should trigger a run of ``plan``'s deployment, sorted."""
    return sorted(plan.event_types())


def plan_deployment(plan: Plan, options: DeployOptions | None = None) -> DeploymentSpec:
    """The deployment of one journey (see the module docstring for the mapping)."""
    options = options or DeployOptions()
    journey = plan.journey
    parameters = {"journey": journey}
    tags = [TAG, f"trigger:{plan.trigger.kind}"]
    if plan.stage:
        tags.insert(1, f"stage:{plan.stage}")
    tags.extend(options.extra_tags)

    triggers: list[TriggerSpec] = []
    event_types = journey_event_types(plan)
    if event_types:
        triggers.append(
            TriggerSpec(
                name=f"{journey}: CRM events",
                expect=tuple(prefect_event_name(t) for t in event_types),
                match={"prefect.resource.id": f"{CUSTOMER_RESOURCE_PREFIX}*"},
                within_seconds=options.window_seconds,
                schedule_after_seconds=options.window_seconds + options.settle_seconds,
                parameters=dict(parameters),
            )
        )

    schedules: list[ScheduleSpec] = []
    trigger = plan.trigger
    if isinstance(trigger, DateTrigger):
        schedules.append(
            ScheduleSpec(
                cron=options.date_sweep_cron,
                timezone="UTC",
                reason=(
                    f"date trigger on customer.{trigger.field}: fires at a customer-local "
                    "time, so sweep every 15 minutes to meet every time-zone offset"
                ),
            )
        )
    elif isinstance(trigger, ScheduleTrigger):
        schedules.append(
            ScheduleSpec(
                cron=trigger.cron,
                timezone=plan.timezone or "UTC",
                reason="schedule trigger (cron in the journey's time zone)",
            )
        )

    return DeploymentSpec(
        name=journey,
        flow_name=JOURNEY_FLOW_NAME,
        entrypoint=JOURNEY_ENTRYPOINT,
        parameters=parameters,
        tags=tuple(tags),
        description=f"{plan.name} ({_describe_trigger(plan)})",
        version=plan.version or None,
        triggers=tuple(triggers),
        schedules=tuple(schedules),
        journey=journey,
    )


def tick_deployment(options: DeployOptions | None = None) -> DeploymentSpec:
    """The periodic ``tick`` deployment: advance due waits of every journey and dispatch."""
    options = options or DeployOptions()
    return DeploymentSpec(
        name=TICK_DEPLOYMENT,
        flow_name=TICK_FLOW_NAME,
        entrypoint=TICK_ENTRYPOINT,
        parameters={},
        tags=(TAG, "tick", *options.extra_tags),
        description="Every minute: pull CRM events, advance due waits of every journey, dispatch",
        schedules=(
            ScheduleSpec(
                cron=options.tick_cron,
                timezone="UTC",
                reason="waits that come due with no event, events ingested outside Prefect",
            ),
        ),
    )


def plan_deployments(
    plans: Mapping[str, Plan] | Iterable[Plan], options: DeployOptions | None = None
) -> list[DeploymentSpec]:
    """Every deployment to create for ``plans`` (sorted by journey), plus ``tick``."""
    options = options or DeployOptions()
    values = plans.values() if isinstance(plans, Mapping) else plans
    specs = [plan_deployment(p, options) for p in sorted(values, key=lambda p: p.journey)]
    if options.tick:
        specs.append(tick_deployment(options))
    return specs


def _describe_trigger(plan: Plan) -> str:
    trigger = plan.trigger
    if isinstance(trigger, DateTrigger):
        hours, minutes = divmod(trigger.at_minutes, 60)
        return f"date trigger: customer.{trigger.field} at {hours:02d}:{minutes:02d} local"
    if isinstance(trigger, ScheduleTrigger):
        return f"schedule trigger: {trigger.cron} {plan.timezone}"
    if isinstance(trigger, StageTrigger):
        return f"stage trigger: entering {trigger.stage}"
    return f"event trigger: {trigger.event}"


def format_text(specs: Sequence[DeploymentSpec]) -> str:
    """Human-readable ``--dry-run`` output."""
    lines: list[str] = []
    for spec in specs:
        lines.append(f"deployment {spec.full_name}")
        lines.append(f"  entrypoint:  {spec.entrypoint}")
        lines.append(f"  parameters:  {json.dumps(spec.parameters, sort_keys=True)}")
        lines.append(f"  tags:        {', '.join(spec.tags)}")
        if spec.version:
            lines.append(f"  version:     {spec.version}")
        lines.append(f"  concurrency: {spec.concurrency_limit} ({spec.collision_strategy.lower()})")
        for trig in spec.triggers:
            lines.append(
                f"  trigger:     on {', '.join(trig.expect)} "
                f"(at most one run per {trig.within_seconds}s, "
                f"starting {trig.schedule_after_seconds}s after the first event)"
            )
        for sched in spec.schedules:
            lines.append(f"  schedule:    cron {sched.cron!r} {sched.timezone}  # {sched.reason}")
        if not spec.triggers and not spec.schedules:
            lines.append("  (no trigger or schedule: runs only when started)")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def format_json(specs: Sequence[DeploymentSpec]) -> str:
    """Machine-readable ``--dry-run --json`` output."""
    return json.dumps({"deployments": [s.as_dict() for s in specs]}, indent=2, sort_keys=True)


# --------------------------------------------------------------------------- Prefect objects


def find_project_root(start: Path | None = None) -> Path:
    """The directory holding ``flows/journey_flows.py`` (the deployments' source).

    Looks in ``start`` (default: the working directory) and its parents, then next to this
    package's source checkout. ``FileNotFoundError`` if there is none.
    """
    candidates: list[Path] = []
    here = (start or Path.cwd()).resolve()
    candidates.extend([here, *here.parents])
    candidates.extend(Path(__file__).resolve().parents)
    for folder in candidates:
        if (folder / FLOWS_FILE).is_file():
            return folder
    raise FileNotFoundError(
        f"cannot find {FLOWS_FILE} in {here} or its parents; run from the project "
        "checkout or pass --source"
    )


def _environment_path(path: Path, root: Path) -> str:
    """``path`` relative to the source root when inside it (workers run there), else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(root.resolve()))
    except ValueError:
        return str(resolved)


def job_environment(
    specs_path: Path | None, templates_path: Path | None, root: Path | str
) -> dict[str, str]:
    """Environment variables for flow runs (paths only: the database URL stays with workers).

    ``root`` is the flows' source: a directory (paths inside it become relative to it), or a
    git URL (the flow runs in that checkout, so the paths are taken as relative to it).
    """
    if isinstance(root, str) and not Path(root).is_dir():
        return {
            key: path.as_posix()
            for key, path in ((ENV_SPECS, specs_path), (ENV_TEMPLATES, templates_path))
            if path is not None
        }
    root = Path(root)
    env: dict[str, str] = {}
    if specs_path is not None:
        env[ENV_SPECS] = _environment_path(specs_path, root)
    if templates_path is not None:
        env[ENV_TEMPLATES] = _environment_path(templates_path, root)
    return env


def to_prefect_trigger(spec: TriggerSpec) -> Any:
    """The ``DeploymentEventTrigger`` for ``spec``."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name=spec.name,
        expect=set(spec.expect),
        match=dict(spec.match),
        posture=spec.posture,  # type: ignore[arg-type]
        threshold=spec.threshold,
        within=timedelta(seconds=spec.within_seconds),
        schedule_after=timedelta(seconds=spec.schedule_after_seconds),
        parameters=dict(spec.parameters),
    )


def to_runner_deployments(
    specs: Sequence[DeploymentSpec],
    *,
    source: str | Path | None = None,
    job_variables: Mapping[str, Any] | None = None,
) -> list[Any]:
    """``RunnerDeployment`` objects for ``specs``, their flows loaded from their entry points.

    ``source`` is the directory (or git URL) holding ``flows/``; default: the project root.
    """
    from prefect import Flow
    from prefect.client.schemas.objects import (
        ConcurrencyLimitConfig,
        ConcurrencyLimitStrategy,
    )
    from prefect.schedules import Cron

    source = str(source) if source is not None else str(find_project_root())
    loaded: dict[str, Any] = {}
    deployments: list[Any] = []
    for spec in specs:
        if spec.entrypoint not in loaded:
            loaded[spec.entrypoint] = Flow.from_source(source=source, entrypoint=spec.entrypoint)
        flow_obj = loaded[spec.entrypoint]
        deployments.append(
            flow_obj.to_deployment(
                name=spec.name,
                parameters=dict(spec.parameters),
                description=spec.description,
                tags=list(spec.tags),
                version=spec.version,
                triggers=[to_prefect_trigger(t) for t in spec.triggers],
                schedules=[Cron(s.cron, timezone=s.timezone) for s in spec.schedules],
                concurrency_limit=ConcurrencyLimitConfig(
                    limit=spec.concurrency_limit,
                    collision_strategy=ConcurrencyLimitStrategy(spec.collision_strategy),
                ),
                job_variables=dict(job_variables or {}),
            )
        )
    return deployments


def ensure_work_pool(name: str, pool_type: str = "process") -> bool:
    """Create work pool ``name`` (a process pool by default) if missing; True if created."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            pass
        template: dict[str, Any] = {}
        if pool_type == "process":
            from prefect.workers.process import ProcessWorker

            template = ProcessWorker.get_default_base_job_template()
        client.create_work_pool(
            WorkPoolCreate(name=name, type=pool_type, base_job_template=template)
        )
        return True


def register_deployments(
    specs: Sequence[DeploymentSpec],
    *,
    work_pool: str,
    source: str | Path | None = None,
    job_variables: Mapping[str, Any] | None = None,
    create_pool: bool = True,
) -> dict[str, str]:
    """Create or update every deployment for ``work_pool``; ``{full name: deployment id}``.

    Re-running is safe: existing deployments are updated, and their triggers are replaced
    (Prefect deletes the automations a deployment owns and creates them again).
    """
    if create_pool:
        ensure_work_pool(work_pool)
    ids: dict[str, str] = {}
    runner_deployments = to_runner_deployments(specs, source=source, job_variables=job_variables)
    for spec, deployment in zip(specs, runner_deployments, strict=True):
        ids[spec.full_name] = str(deployment.apply(work_pool_name=work_pool))
    return ids


def serve_deployments(
    specs: Sequence[DeploymentSpec],
    *,
    source: str | Path | None = None,
    environment: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> None:
    """Serve every deployment from this process until interrupted (``prefect.serve``).

    Flow runs are subprocesses of this one and inherit its environment, so ``environment``
    (spec and template paths) is set on this process first.
    """
    from prefect import serve

    os.environ.update(environment or {})
    serve(*to_runner_deployments(specs, source=source), limit=limit)
