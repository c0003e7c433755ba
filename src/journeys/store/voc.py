"""Storing the analysis of survey comments (sentiment, score, keywords) on ``survey_answers``.

The analysis itself is a pure function handed in (:func:`journeys.insight.voc.analyse`), so the
store knows the columns and nothing of how comments are read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine, bindparam, select, update

from journeys.store.tables import customers, survey_answers

BATCH = 500


class AnalysisLike(Protocol):
    """What an analyser returns for one comment."""

    sentiment: str
    score: float
    keywords: tuple[str, ...]


Analyser = Callable[[str, str | None], AnalysisLike]


def analyse_pending(db: Engine, analyse: Analyser, *, limit: int | None = None) -> int:
    """Analyse every stored comment that has no sentiment yet (at most ``limit``), in batches
    of one transaction each; returns how many were analysed. Answers without a comment are
    left alone."""
    done = 0
    while limit is None or done < limit:
        size = BATCH if limit is None else min(BATCH, limit - done)
        with db.connect() as conn:
            rows = conn.execute(
                select(survey_answers.c.id, survey_answers.c.comment, customers.c.locale)
                .join_from(
                    survey_answers,
                    customers,
                    customers.c.id == survey_answers.c.customer_id,
                    isouter=True,
                )
                .where(
                    survey_answers.c.sentiment.is_(None),
                    survey_answers.c.comment.is_not(None),
                    survey_answers.c.comment != "",
                )
                .order_by(survey_answers.c.id)
                .limit(size)
            ).all()
        if not rows:
            break
        save_analyses(db, [(row.id, analyse(row.comment, row.locale)) for row in rows])
        done += len(rows)
    return done


def save_analyses(db: Engine, results: list[tuple[int, AnalysisLike]]) -> None:
    """Store analyses by answer id (one transaction)."""
    params: list[dict[str, Any]] = [
        {
            "_id": answer_id,
            "sentiment": a.sentiment,
            "sentiment_score": a.score,
            "keywords": list(a.keywords),
        }
        for answer_id, a in results
    ]
    if not params:
        return
    stmt = (
        update(survey_answers)
        .where(survey_answers.c.id == bindparam("_id"))
        .values(
            sentiment=bindparam("sentiment"),
            sentiment_score=bindparam("sentiment_score"),
            keywords=bindparam("keywords", type_=survey_answers.c.keywords.type),
        )
    )
    with db.begin() as conn:
        conn.execute(stmt, params)
