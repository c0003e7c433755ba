"""NPS and CSAT overall, per journey and per bucket."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from journeys.insight.period import Unit, roll_up
from journeys.insight.stats import csat, nps, ratio
from journeys.store import kpis as q


def survey_figures(
    conn: Connection, scope: q.Scope, journeys: dict[str, dict[str, Any]], unit: Unit
) -> dict[str, Any]:
    """NPS, CSAT and answer counts overall (``series``: the NPS answers per bucket); fills
    each journey's own scores, answers and NPS trend in ``journeys``."""
    overall: dict[str, Counter[str]] = {"nps": Counter(), "csat": Counter()}
    per_journey: dict[str, dict[str, Counter[str]]] = defaultdict(
        lambda: {"nps": Counter(), "csat": Counter()}
    )
    series: dict[str, Counter[str]] = defaultdict(Counter)
    by_journey: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for row in q.survey_counts(conn, scope):
        kind = row.kind if row.kind in overall else "nps"
        overall[kind][row.category] += row.count
        per_journey[row.journey][kind][row.category] += row.count
        if kind == "nps":
            b = roll_up(row.day, unit)
            series[b][row.category] += row.count
            by_journey[row.journey][b][row.category] += row.count
    for name, j in journeys.items():
        kinds = per_journey.get(name)
        if kinds:
            j["nps"], j["csat"] = nps(kinds["nps"]), csat(kinds["csat"])
            j["answers"] = {k: dict(c) for k, c in kinds.items() if c}
        j["nps_trend"] = nps_series(by_journey.get(name, {}))
    return {
        "nps": nps(overall["nps"]),
        "csat": csat(overall["csat"]),
        "answers": {k: sum(c.values()) for k, c in overall.items()},
        "series": series,
    }


def nps_series(counts: Mapping[str, Counter[str]]) -> list[dict[str, Any]]:
    """Per bucket: answers, NPS and the promoter/passive/detractor shares."""
    out = []
    for b, cats in sorted(counts.items()):
        total = sum(cats.values())
        out.append(
            {
                "bucket": b,
                "answers": total,
                "nps": nps(cats),
                **{c: ratio(cats.get(c, 0), total) for c in ("promoter", "passive", "detractor")},
            }
        )
    return out
