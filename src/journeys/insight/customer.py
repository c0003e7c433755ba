"""One customer as support sees them: profile, stages, enrollments with where each waits and
why, messages with their status and why they were sent, answers and events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from journeys import state
from journeys.clock import iso
from journeys.insight.report.enrollments import position
from journeys.insight.report.voice import answer_fields
from journeys.plan import (
    DateTrigger,
    EventTrigger,
    Plan,
    ScheduleTrigger,
    StageTrigger,
)
from journeys.store import customer_view as cv

PROFILE_FIELDS = (*(f for f in state.PROFILE_FIELDS if f != "id"), "created_at")
"""What the customer page shows of a profile: what expressions see, and when it was created."""


def search(conn: Connection, query: str) -> list[dict[str, Any]]:
    """Customers matching ``query`` (id or email, or the start of one)."""
    return [dict(row._mapping) for row in cv.search_customers(conn, query)]


def customer_page(
    conn: Connection, customer_id: str, plans: Mapping[str, Plan], now: datetime
) -> dict[str, Any] | None:
    """Everything the customer page shows, or None for an unknown id."""
    row = cv.customer(conn, customer_id)
    if row is None:
        return None
    person = row._mapping
    profile = {k: _plain(person[k]) for k in PROFILE_FIELDS}
    enrollment_rows = cv.enrollments_of(conn, customer_id)
    runs = _runs(conn, enrollment_rows, plans)
    enrollments = [
        _enrollment(e, plans.get(e.journey), runs.get(e.id, []), now) for e in enrollment_rows
    ]
    by_id = {e["id"]: e for e in enrollments}
    events = cv.events_of(conn, customer_id)
    messages = _messages(cv.messages_of(conn, customer_id), events, by_id, plans)
    return {
        "id": customer_id,
        "profile": profile,
        "attributes": dict(person["attributes"] or {}),
        "stages": [
            {"at": iso(s.at), "from": s.from_stage, "to": s.to_stage, "reason": s.reason}
            for s in cv.stages_of(conn, customer_id)
        ],
        "enrollments": enrollments,
        "messages": messages,
        "answers": [_answer(a) for a in cv.answers_of(conn, customer_id)],
        "events": [
            {"id": e.id, "type": e.type, "at": iso(e.occurred_at), "data": e.data, "error": e.error}
            for e in events
        ],
    }


def _plain(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _short(value: datetime | None) -> str:
    """A time for a sentence: ``08 Mar 2026 00:53 UTC``."""
    return f"{value:%d %b %Y %H:%M} UTC" if value else "–"


def _runs(
    conn: Connection, rows: Any, plans: Mapping[str, Plan]
) -> dict[int, list[dict[str, Any]]]:
    ids_by_journey: dict[str, list[int]] = defaultdict(list)
    for e in rows:
        ids_by_journey[e.journey].append(e.id)
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for journey, ids in ids_by_journey.items():
        plan = plans.get(journey)
        steps = {s.id for s in plan.steps} | {"end"} if plan else set()
        steps |= {e.step for e in rows if e.journey == journey}
        for r in cv.step_runs_of(conn, journey, steps, ids):
            out[r.enrollment_id].append({"step": r.step, "at": iso(r.at), "outcome": r.outcome})
    return out


def trigger_text(plan: Plan | None, vars_: Mapping[str, Any]) -> str:
    """Why the enrollment began: the triggering event, or the plan's time or stage trigger."""
    event = vars_.get("event") if isinstance(vars_.get("event"), Mapping) else None
    if event:
        data = event.get("data") or {}
        shown = ", ".join(
            f"{k}={v}" for k, v in list(data.items())[:4] if not isinstance(v, (dict, list))
        )
        return f"event {event.get('type')}" + (f" ({shown})" if shown else "")
    trigger = plan.trigger if plan else None
    if isinstance(trigger, DateTrigger):
        return f"yearly on customer.{trigger.field.removeprefix('customer.')}"
    if isinstance(trigger, ScheduleTrigger):
        return f"scheduled ({trigger.cron})" + (
            f" for segment {trigger.segment}" if trigger.segment else ""
        )
    if isinstance(trigger, StageTrigger):
        return f"entered stage {trigger.stage}"
    if isinstance(trigger, EventTrigger):
        return f"event {trigger.event}"
    return "unknown trigger"


def _enrollment(
    e: Any, plan: Plan | None, runs: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    vars_ = e.vars or {}
    if e.status == "active":
        where, _waiting = position(
            plan, e.step, vars_.get("waiting_step"), int(bool(e.wake_at and e.wake_at > now))
        )
        if e.waiting_for:
            why = (
                f"waiting at {where} for {e.waiting_for}, at most until {_short(e.wake_at)} "
                f"(then {e.step})"
            )
        elif e.wake_at and e.wake_at > now:
            why = f"waiting at {where} until {_short(e.wake_at)}, then {e.step}"
        else:
            why = f"due now at {e.step}"
    elif e.status == "completed":
        where, why = "end", f"completed {_short(e.ended_at)}"
    else:
        reason = e.exit_reason or "unknown"
        where, why = e.step, f"exited at {e.step} {_short(e.ended_at)}: {reason}"
    return {
        "id": e.id,
        "journey": e.journey,
        "name": plan.name if plan else e.journey,
        "version": e.version,
        "status": e.status,
        "where": where,
        "why": why,
        "entered_at": iso(e.entered_at),
        "ended_at": iso(e.ended_at),
        "converted_at": iso(e.converted_at),
        "trigger": trigger_text(plan, vars_),
        "variants": vars_.get("variants") or {},
        "answers": vars_.get("answers") or {},
        "runs": runs,
    }


def _message_events(messages: Any, events: Any) -> dict[int, list[dict[str, Any]]]:
    """``email.*`` events per message id: by ``data.message_id``, else the customer's latest
    email before the event (the same rule as the report)."""
    emails = sorted(
        (m for m in messages if m.channel == "email"), key=lambda m: (m.created_at, m.id)
    )
    ids = {m.id for m in messages}
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        if not ev.type.startswith(cv.EMAIL_EVENT_PREFIX):
            continue
        raw = str((ev.data or {}).get("message_id", ""))
        mid = int(raw) if raw.isdigit() else None
        if mid not in ids:
            before = [m for m in emails if m.created_at <= ev.occurred_at]
            mid = before[-1].id if before else None
        if mid is not None:
            out[mid].append(
                {"type": ev.type.removeprefix(cv.EMAIL_EVENT_PREFIX), "at": iso(ev.occurred_at)}
            )
    return out


def _messages(
    rows: Any, events: Any, enrollments: dict[int, dict[str, Any]], plans: Mapping[str, Plan]
) -> list[dict[str, Any]]:
    engagement = _message_events(rows, events)
    out = []
    for m in rows:
        enrollment = enrollments.get(m.enrollment_id)
        path = [
            r for r in (enrollment or {}).get("runs", []) if r["at"] <= (iso(m.created_at) or "")
        ]
        plan = plans.get(m.journey)
        why = f"step {m.step} of journey {plan.name if plan else m.journey}"
        if enrollment:
            entered = datetime.fromisoformat(enrollment["entered_at"].replace("Z", "+00:00"))
            why += f", entered {_short(entered)} on {enrollment['trigger']}"
            if enrollment["variants"]:
                why += "; variants " + ", ".join(
                    f"{k}={v}" for k, v in enrollment["variants"].items()
                )
        out.append(
            {
                "id": m.id,
                "journey": m.journey,
                "step": m.step,
                "kind": m.kind,
                "template": m.template,
                "channel": m.channel,
                "locale": m.locale,
                "recipient": m.recipient,
                "subject": m.subject,
                "status": m.status,
                "error": m.error,
                "created_at": iso(m.created_at),
                "sent_at": iso(m.sent_at),
                "engagement": sorted(engagement.get(m.id, []), key=lambda e: e["at"]),
                "why": why,
                "path": [f"{r['step']}: {r['outcome']}" for r in path],
            }
        )
    return out


def _answer(a: Any) -> dict[str, Any]:
    return answer_fields(a, a.keywords or [])
