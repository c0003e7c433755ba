"""The voice of the customer: sentiment and top keywords per answer category, and the latest
comments (analysed by :mod:`journeys.insight.voc` when they were stored)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from journeys.clock import iso
from journeys.store import kpis as q

LATEST_COMMENTS = 20
TOP_KEYWORDS = 10


def voice_figures(conn: Connection, scope: q.Scope) -> dict[str, Any]:
    """Sentiment and top keywords per answer category, and the latest comments."""
    rows = q.survey_comments(conn, scope)
    by_category: dict[str, dict[str, Any]] = {}
    keywords: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        c = by_category.setdefault(
            row.category,
            {"comments": 0, "sentiment": {"negative": 0, "neutral": 0, "positive": 0}},
        )
        c["comments"] += 1
        if row.sentiment in c["sentiment"]:
            c["sentiment"][row.sentiment] += 1
        keywords[row.category].update(_keyword_list(row.keywords))
    for category, c in by_category.items():
        c["keywords"] = [
            {"keyword": k, "count": n} for k, n in keywords[category].most_common(TOP_KEYWORDS)
        ]
    return {
        "comments": len(rows),
        "by_category": dict(sorted(by_category.items())),
        "latest": [_comment(row) for row in rows[:LATEST_COMMENTS]],
    }


def _keyword_list(value: Any) -> Iterable[str]:
    return [str(k) for k in value] if isinstance(value, list) else []


def _comment(row: Any) -> dict[str, Any]:
    return {"customer_id": row.customer_id, **answer_fields(row, list(_keyword_list(row.keywords)))}


def answer_fields(row: Any, keywords: list[Any]) -> dict[str, Any]:
    """A stored survey answer as the report and the customer page show it."""
    return {
        "journey": row.journey,
        "step": row.step,
        "kind": row.kind,
        "score": row.score,
        "category": row.category,
        "comment": row.comment,
        "sentiment": row.sentiment,
        "sentiment_score": row.sentiment_score,
        "keywords": keywords,
        "answered_at": iso(row.answered_at),
    }
