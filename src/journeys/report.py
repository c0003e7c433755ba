"""``journeys report``: funnels, messages, stages and survey scores, straight from the store."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, func, select

from journeys.plan import Plan
from journeys.store.tables import customers, enrollments, outbox, step_runs, survey_answers


def build_report(db: Engine, plans: dict[str, Plan] | None = None) -> dict[str, Any]:
    """Every figure of the report as plain data (the CLI prints it or dumps it as JSON)."""
    plans = plans or {}
    with db.connect() as conn:
        status_rows = conn.execute(
            select(
                enrollments.c.journey,
                enrollments.c.status,
                enrollments.c.exit_reason,
                func.count(),
                func.count(enrollments.c.converted_at),
            ).group_by(enrollments.c.journey, enrollments.c.status, enrollments.c.exit_reason)
        ).all()
        step_rows = conn.execute(
            select(
                step_runs.c.journey,
                step_runs.c.step,
                func.count(step_runs.c.enrollment_id.distinct()),
            ).group_by(step_runs.c.journey, step_runs.c.step)
        ).all()
        message_rows = conn.execute(
            select(outbox.c.journey, outbox.c.template, outbox.c.status, func.count()).group_by(
                outbox.c.journey, outbox.c.template, outbox.c.status
            )
        ).all()
        stage_rows = conn.execute(
            select(customers.c.stage, func.count()).group_by(customers.c.stage)
        ).all()
        survey_rows = conn.execute(
            select(
                survey_answers.c.journey,
                survey_answers.c.kind,
                survey_answers.c.category,
                func.count(),
                func.sum(survey_answers.c.score),
            ).group_by(survey_answers.c.journey, survey_answers.c.kind, survey_answers.c.category)
        ).all()

    journeys: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "entered": 0,
            "active": 0,
            "completed": 0,
            "exited": {},
            "converted": 0,
            "steps": {},
        }
    )
    for journey, status, reason, count, converted in status_rows:
        j = journeys[journey]
        j["entered"] += count
        j["converted"] += converted
        if status == "exited":
            j["exited"][reason or "unknown"] = j["exited"].get(reason or "unknown", 0) + count
        else:
            j[status] += count
    for journey, step, count in step_rows:
        journeys[journey]["steps"][step] = count
    for name, j in journeys.items():
        plan = plans.get(name)
        if plan:
            order = [s.id for s in plan.steps]
            j["steps"] = {s: j["steps"].get(s, 0) for s in order}
            j["goal"] = plan.goal.event if plan.goal else None
        j["conversion_rate"] = round(j["converted"] / j["entered"], 4) if j["entered"] else 0.0

    messages: dict[str, dict[str, int]] = defaultdict(dict)
    for journey, template, status, count in message_rows:
        key = f"{journey}/{template}"
        messages[key][status] = messages[key].get(status, 0) + count

    surveys: dict[str, dict[str, Any]] = {}
    for journey, kind, category, count, total in survey_rows:
        s = surveys.setdefault(
            journey, {"kind": kind, "answers": 0, "score_sum": 0, "categories": {}}
        )
        s["answers"] += count
        s["score_sum"] += total or 0
        s["categories"][category] = count
    for s in surveys.values():
        n = s["answers"] or 1
        if s["kind"] == "nps":
            cats = s["categories"]
            s["nps"] = round(100 * (cats.get("promoter", 0) - cats.get("detractor", 0)) / n, 1)
        else:
            s["csat"] = round(100 * s["categories"].get("satisfied", 0) / n, 1)
        s["average"] = round(s.pop("score_sum") / n, 2)

    return {
        "journeys": dict(sorted(journeys.items())),
        "messages": dict(sorted(messages.items())),
        "stages": {stage or "none": count for stage, count in stage_rows},
        "surveys": surveys,
    }


def render_report(data: dict[str, Any]) -> str:
    """The report as text tables."""
    out: list[str] = []
    for name, j in data["journeys"].items():
        exited = ", ".join(f"{r}: {n}" for r, n in sorted(j["exited"].items())) or "none"
        out.append(f"■ {name}")
        out.append(
            f"  entered {j['entered']}  active {j['active']}  completed {j['completed']}  "
            f"exited {sum(j['exited'].values())} ({exited})"
        )
        if j.get("goal"):
            out.append(
                f"  goal {j['goal']}: {j['converted']} converted ({j['conversion_rate']:.1%})"
            )
        width = max((len(s) for s in j["steps"]), default=0)
        top = max(j["entered"], 1)
        for step, n in j["steps"].items():
            bar = "█" * round(30 * n / top)
            out.append(f"    {step:<{width}}  {n:>7}  {bar}")
    out.append("")
    out.append("Messages (journey/template: status counts)")
    for key, statuses in data["messages"].items():
        out.append(f"  {key:<45} " + "  ".join(f"{s} {n}" for s, n in sorted(statuses.items())))
    out.append("")
    out.append("Customers by stage")
    order = ["awareness", "consideration", "purchase", "loyalty", "advocacy", "none"]
    for stage in sorted(data["stages"], key=lambda s: order.index(s) if s in order else 99):
        out.append(f"  {stage:<14} {data['stages'][stage]:>7}")
    if data["surveys"]:
        out.append("")
        out.append("Surveys")
        for journey, s in data["surveys"].items():
            score = f"NPS {s['nps']:+.1f}" if "nps" in s else f"CSAT {s['csat']:.1f}%"
            cats = ", ".join(f"{c} {n}" for c, n in sorted(s["categories"].items()))
            out.append(
                f"  {journey}: {s['answers']} answers, {score}, average {s['average']} ({cats})"
            )
    return "\n".join(out)
