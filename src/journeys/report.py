"""The entry points ``journeys demo`` has always called; the report itself is
:mod:`journeys.insight.report` (figures) and :mod:`journeys.insight.text` (text)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from journeys.clock import SystemClock
from journeys.insight.report import build_report as _build
from journeys.insight.text import render_text
from journeys.plan import Plan


def build_report(
    db: Engine, plans: Mapping[str, Plan] | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """The whole report over all recorded activity
    (:func:`journeys.insight.report.build_report`)."""
    return _build(db, plans, now=now or SystemClock().now())


def render_report(data: dict[str, Any]) -> str:
    """The report as text."""
    return render_text(data)
