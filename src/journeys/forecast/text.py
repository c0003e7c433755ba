"""The forecast as text: a summary table (this spec, the live version and the change side by
side), messages by step, messages per day and, on request, every message."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from journeys.clock import iso
from journeys.forecast import Forecast
from journeys.forecast.tally import RunTally, StepTally

ROWS: list[tuple[str, Callable[[RunTally], int]]] = [
    ("customers entering", lambda r: r.customers),
    ("enrollments", lambda r: r.entered),
    ("messages going out", lambda r: r.total("messages")),
    ("held back by the frequency cap", lambda r: r.total("frequency_cap")),
    ("delayed by quiet hours", lambda r: r.total("quiet_hours")),
    ("not allowed (consent, address)", lambda r: r.total("suppressed")),
    ("failed to render", lambda r: r.total("failed")),
    ("goals reached", lambda r: r.converted),
    ("completed", lambda r: r.completed),
    ("still in the journey at the end", lambda r: r.active),
]


def _minute(value: object) -> str:
    text = str(value or "")
    return text[:16].replace("T", " ") if text else "-"


def _change(new: int, old: int) -> str:
    return f"{new - old:+d}" if new != old else "0"


def render_text(forecast: Forecast, with_messages: bool = False) -> str:
    """The whole report."""
    lines = _header(forecast)
    lines += ["", *_summary(forecast)]
    lines += ["", *_steps(forecast)]
    lines += ["", *_per_day(forecast.spec)]
    if with_messages:
        lines += ["", *_messages(forecast.spec)]
    return "\n".join(lines)


def _header(f: Forecast) -> list[str]:
    subject, live = f.subject, f.subject.live
    lines = [
        f"Forecast of {subject.journey} ({f.spec_file}, version {subject.spec.version[:12]}) "
        f"on {f.days} days of history: {_minute(iso(f.start))} to {_minute(iso(f.until))} UTC",
        f"Replayed {f.replayed.events:,} events of {f.replayed.customers:,} customers in "
        "memory; nothing was sent or written.",
    ]
    if f.alongside:
        lines.append(
            f"Ran beside it (they change stages, attributes or events, or share the frequency "
            f"cap): {', '.join(f.alongside)}"
        )
    if live is None:
        lines.append("No live version of this journey: a new journey.")
    elif f.unchanged:
        lines.append(f"The live version (from the {subject.live_from}) is this spec.")
    else:
        lines.append(
            f"Compared with the live version {live.version[:12]} (from the {subject.live_from})."
        )
    return lines


def _summary(f: Forecast) -> list[str]:
    live = f.live
    names = [name for name, _ in ROWS] + [f"exited: {r}" for r in _exit_reasons(f)]
    width = max(len(n) for n in names) + 2
    head = f"{'':<{width}}{'this spec':>10}"
    if live is not None:
        head += f"{'live':>10}{'change':>9}"
    lines = [head.rstrip()]
    values: list[tuple[str, int, int]] = [
        (name, get(f.spec), get(live) if live else 0) for name, get in ROWS
    ]
    values += [
        (f"exited: {r}", f.spec.exits[r], live.exits[r] if live else 0) for r in _exit_reasons(f)
    ]
    for name, new, old in values:
        row = f"{name:<{width}}{new:>10,}"
        if live is not None:
            row += f"{old:>10,}{_change(new, old):>9}"
        lines.append(row)
    return lines


def _exit_reasons(f: Forecast) -> list[str]:
    reasons = set(f.spec.exits) | (set(f.live.exits) if f.live else set())
    return sorted(reasons)


def _steps(f: Forecast) -> list[str]:
    live = f.live
    names = list(dict.fromkeys([*f.spec.steps, *(live.steps if live else {})]))
    if not names:
        return ["No messages: nobody reached a message step."]
    lines = ["Messages by step" + (" (this spec / live):" if live else ":")]
    for name in names:
        new = f.spec.steps.get(name)
        old = live.steps.get(name) if live else None
        shown = new or old
        assert shown is not None
        what = f"{name} ({shown.template}, {shown.channel})" if shown.template else name
        lines.append(f"  {what}")
        lines.append("    " + _step_counts(new, old, live is not None))
        if new is not None and new.first is not None:
            lines.append(f"    first {_minute(iso(new.first))}, last {_minute(iso(new.last))} UTC")
    return lines


def _step_counts(new: StepTally | None, old: StepTally | None, compare: bool) -> str:
    parts = []
    for outcome, label in (
        ("messages", "going out"),
        ("frequency_cap", "held back by the cap"),
        ("quiet_hours", "delayed by quiet hours"),
        ("suppressed", "not allowed"),
        ("failed", "failed"),
    ):
        a = new.counts[outcome] if new else 0
        b = old.counts[outcome] if old else 0
        if outcome != "messages" and not a and not b:
            continue
        parts.append(f"{label} {a} / {b}" if compare else f"{label} {a}")
    return ", ".join(parts)


def _per_day(run: RunTally) -> list[str]:
    days: dict[str, Counter[str]] = {}
    for step in run.steps.values():
        for day, n in step.per_day.items():
            days.setdefault(day, Counter())[step.step] += n
    if not days:
        return ["Messages per day (UTC): none."]
    lines = ["Messages per day (UTC), this spec:"]
    for day in sorted(days):
        count = days[day]
        detail = ", ".join(f"{s} {n}" for s, n in count.items())
        lines.append(f"  {day}  {sum(count.values()):>5,}  {detail}")
    return lines


def _messages(run: RunTally) -> list[str]:
    if not run.messages:
        return ["Every message (this spec): none."]
    lines = ["Every message (this spec), by time (UTC):"]
    for m in run.messages:
        what = "goes out" if m["outcome"] == "messages" else f"not sent: {m['reason']}"
        lines.append(
            f"  {_minute(m['at'])}  {m['customer_id']}  {m['step']} ({m['template']}, "
            f"{m['channel']})  {what}"
        )
        if m["deferred_from"]:
            lines.append(f"      waited from {_minute(m['deferred_from'])} for quiet hours to end")
    return lines
