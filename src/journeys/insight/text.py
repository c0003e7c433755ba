"""The report as plain text tables (``journeys report --format text``)."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, fmt: str = ",.1f") -> str:
    return "–" if value is None else format(value, fmt)


def _bar(n: float, top: float, width: int = 28) -> str:
    return "█" * round(width * n / top) if top else ""


def render_text(data: dict[str, Any]) -> str:
    """Every section of the report, as text."""
    p = data["period"]
    out = [
        f"journeys report  {p['from']} → {p['to']}"
        + (f"  (journey {data['journey']})" if data.get("journey") else ""),
        "",
    ]
    out += _kpis(data["kpis"])
    for name, j in data["journeys"].items():
        out.append("")
        out += _journey(name, j)
    out.append("")
    out += _messages(data["messages"])
    out.append("")
    out += _stages(data["stages"], data["stage_transitions"])
    out += _voc(data["voc"])
    return "\n".join(out)


def _kpis(k: dict[str, Any]) -> list[str]:
    nps = "–" if k["nps"] is None else f"{k['nps']:+.1f}"
    clv = k["clv"]
    out = [
        "KPIs",
        f"  NPS {nps} ({k['answers']['nps']} answers)   "
        f"CSAT {_num(k['csat'])}% ({k['answers']['csat']} answers)",
        f"  CLV historic {_num(clv['historic'], ',.2f')}   "
        f"predicted {_num(clv['predicted'], ',.2f')}   "
        f"retention {_pct(k['retention_rate'])}   churn {_pct(k['churn_rate'])}",
        f"  orders {k['orders']:,}   revenue {k['revenue']:,.2f}   "
        f"average order {_num(k['average_order_value'], ',.2f')}",
        f"  email: open {_pct(k['open_rate'])}   click {_pct(k['click_rate'])}   "
        f"unsubscribe {_pct(k['unsubscribe_rate'], 2)}",
    ]
    if clv["by_stage"]:
        out.append(
            "  CLV by stage: "
            + ", ".join(f"{s} {v:,.2f}" for s, v in clv["by_stage"].items() if v is not None)
        )
    return out


def _journey(name: str, j: dict[str, Any]) -> list[str]:
    exited = ", ".join(f"{r}: {n}" for r, n in sorted(j["exited"].items())) or "none"
    out = [
        f"■ {name}  {j['name']}",
        f"  entered {j['entered']}  active {j['active']}  completed {j['completed']}  "
        f"exited {sum(j['exited'].values())} ({exited})",
    ]
    if j.get("goal"):
        out.append(f"  goal {j['goal']}: {j['converted']} converted ({_pct(j['conversion_rate'])})")
    if j.get("nps") is not None or j.get("csat") is not None:
        out.append(f"  NPS {_num(j.get('nps'), '+.1f')}  CSAT {_num(j.get('csat'))}%")
    width = max((len(s) for s in j["steps"]), default=0)
    top = max([j["entered"], *(s["reached"] for s in j["steps"].values())], default=0)
    for step, s in j["steps"].items():
        extra = f"  now {s['now']}" if s["now"] else ""
        out.append(f"    {step:<{width}}  {s['reached']:>7}  {_bar(s['reached'], top)}{extra}")
    for split, v in j["variants"].items():
        out += _split(split, v)
    return out


def _split(split: str, v: dict[str, Any]) -> list[str]:
    out = [f"  split {split} (baseline {v['baseline']}, winner {v['winner'] or 'none yet'})"]
    for variant, c in v["variants"].items():
        test = (
            ""
            if c.get("baseline")
            else (
                f"  uplift {_pct(c['uplift'])}  p={_num(c['p_value'], '.3f')}"
                + ("  significant" if c["significant"] else "")
            )
        )
        out.append(
            f"    {variant:<10} {c['entered']:>6} entered {c['converted']:>6} converted "
            f"{_pct(c['conversion_rate']):>7}{test}"
        )
    return out


def _messages(messages: dict[str, Any]) -> list[str]:
    out = ["Messages by template        sent  opened clicked bounced unsub  open%  click%"]
    for template, m in messages["by_template"].items():
        out.append(
            f"  {template:<24} {m['sent']:>6} {m['opened']:>7} {m['clicked']:>7} {m['bounced']:>7}"
            f" {m['unsubscribed']:>5} {_pct(m['open_rate']):>6} {_pct(m['click_rate']):>7}"
        )
    return out


def _stages(stages: dict[str, int], transitions: dict[str, Any]) -> list[str]:
    out = ["Customers by stage"]
    top = max(stages.values(), default=0)
    for stage, n in stages.items():
        out.append(f"  {stage:<14} {n:>7}  {_bar(n, top)}")
    if transitions["totals"]:
        out.append("Stage changes in the period")
        for flow, n in transitions["totals"].items():
            out.append(f"  {flow:<30} {n:>7}")
    return out


def _voc(voc: dict[str, Any]) -> list[str]:
    if not voc["comments"]:
        return []
    out = ["", f"What customers say ({voc['comments']} comments)"]
    for category, c in voc["by_category"].items():
        words = ", ".join(f"{w['keyword']} ({w['count']})" for w in c["keywords"][:6])
        s = c["sentiment"]
        out.append(
            f"  {category:<11} {c['comments']:>5} comments  +{s['positive']} ={s['neutral']} "
            f"-{s['negative']}  {words}"
        )
    return out
