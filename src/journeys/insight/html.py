"""HTML pages from the package's Jinja2 templates: the dashboard's pages and the one-file
report of ``journeys report --format html`` (the same macros and charts)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from journeys.clock import iso
from journeys.insight import views
from journeys.insight.assets import VENDOR_SCRIPTS, VENDOR_VERSIONS, inline_scripts, vendor_script
from journeys.plan import STAGES, Plan

DASHBOARD_JS = "dashboard.js"


@dataclass(frozen=True)
class PeriodView:
    """The period as the page shows it: a label, the date inputs and the active preset."""

    label: str
    first_day: str
    last_day: str
    preset: str = ""

    @classmethod
    def of(cls, data: Mapping[str, Any], preset: str = "") -> PeriodView:
        """From a report's ``period`` (``to`` is exclusive; the last day shown is the day
        before it when it falls on midnight)."""
        start = datetime.fromisoformat(data["period"]["from"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(data["period"]["to"].replace("Z", "+00:00"))
        last = end - timedelta(microseconds=1)
        label = f"{start:%d %b %Y} – {last:%d %b %Y}"
        return cls(label, f"{start:%Y-%m-%d}", f"{last:%Y-%m-%d}", preset)


def when(value: str | None) -> str:
    """``2026-03-08T00:53:49Z`` as ``08 Mar 2026 00:53`` (UTC) for people; '–' for None."""
    if not value:
        return "–"
    try:
        return f"{datetime.fromisoformat(value.replace('Z', '+00:00')):%d %b %Y %H:%M}"
    except ValueError:
        return value


@cache
def environment() -> Environment:
    """The templates' environment (autoescaped; these templates are ours, not marketers')."""
    env = Environment(
        loader=PackageLoader("journeys.insight", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    return env


def specs_json(charts: Mapping[str, Any]) -> str:
    """Chart specs as JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(charts, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render(
    template: str,
    *,
    url: Callable[..., str],
    scripts: str,
    charts: Mapping[str, Any] | None = None,
    **context: Any,
) -> str:
    """Render a page; ``scripts`` loads Vega and the chart drawing script."""
    return (
        environment()
        .get_template(template)
        .render(
            url=url,
            scripts=scripts,
            specs_json=specs_json(charts or {}),
            versions=VENDOR_VERSIONS,
            **context,
        )
    )


def script_tags(static_url: Callable[[str], str]) -> str:
    """``<script src>`` tags for the dashboard (served by its static route)."""
    return "\n".join(
        f'<script src="{static_url(name)}"></script>' for name in (*VENDOR_SCRIPTS, DASHBOARD_JS)
    )


def static_text(name: str) -> str:
    """A script the dashboard serves: a vendored library or the chart drawing script."""
    if name == DASHBOARD_JS:
        return _dashboard_js()
    return vendor_script(name)


@cache
def _dashboard_js() -> str:
    from importlib import resources

    return resources.files("journeys.insight").joinpath(f"static/{DASHBOARD_JS}").read_text("utf-8")


def render_html(
    data: dict[str, Any],
    plans: Mapping[str, Plan],
    *,
    before: dict[str, Any] | None = None,
    generated: datetime | None = None,
) -> str:
    """The whole report as one self-contained HTML file: overview, every journey, stages,
    with Vega inlined (no network needed to open it)."""
    overview = views.overview(data, before)
    charts = dict(overview["charts"])
    journeys = []
    for i, name in enumerate(data["journeys"]):
        page = views.journey_page(data, name, plans.get(name), prefix=f"j{i}-")
        charts.update(page["charts"])
        journeys.append(page)
    stages = views.stages_page(data, list(STAGES), prefix="st-")
    charts.update(stages["charts"])
    return render(
        "report.html",
        url=lambda *_a, **_k: "#",
        scripts=inline_scripts() + "\n<script>" + _dashboard_js() + "</script>",
        charts=charts,
        static_file=True,
        v=overview,
        journeys=journeys,
        stages=stages,
        period=PeriodView.of(data),
        journey=data.get("journey"),
        generated=iso(generated) if generated else None,
    )
