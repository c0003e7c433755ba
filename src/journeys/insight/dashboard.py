"""The insight dashboard as a FastAPI router: overview, journeys, lifecycle, customers.

The web app mounts it (``app.include_router(build_router(...), prefix=...)``) and hands in its
database and its staff check; nothing here knows how staff log in. Pages are rendered on the
server from the report (:mod:`.report`) and draw their charts in the browser with the vendored
Vega-Lite, served by the router itself, so the dashboard works without internet access.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Connection, Engine

from journeys.clock import Clock, SystemClock
from journeys.insight import customer as customer_core
from journeys.insight import html, views
from journeys.insight.assets import VENDOR_SCRIPTS
from journeys.insight.period import Period, PeriodError, choose_period
from journeys.insight.report import build_report, stored_plans
from journeys.plan import STAGES, Plan
from journeys.store.kpis import activity_bounds, reading

EngineSource = Engine | Callable[[], Engine]
PlanSource = Mapping[str, Plan] | Callable[[], Mapping[str, Plan]]
STATIC = (*VENDOR_SCRIPTS, html.DASHBOARD_JS)
From = Annotated[str | None, Query(alias="from", description="First day, YYYY-MM-DD")]
To = Annotated[str | None, Query(alias="to", description="Last day (included), YYYY-MM-DD")]
Days = Annotated[str | None, Query(description="7, 30, 90 or all (default 30)")]


DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
"""The dashboard's pages: its own scripts only (Vega compiles chart expressions, hence
``unsafe-eval``), its inline styles, nothing from another origin."""


def build_router(
    db: EngineSource,
    require_staff: Callable[..., Any] | None = None,
    *,
    plans: PlanSource | None = None,
    clock: Clock | None = None,
) -> APIRouter:
    """The dashboard's routes.

    ``db`` is the engine or a function returning it (called per request); ``require_staff``
    a FastAPI dependency that every route depends on (it raises to refuse); ``plans`` the
    journeys' plans (default: the newest stored version of each journey); ``clock`` the time
    the live counts are taken at.
    """
    router = APIRouter(dependencies=[Depends(require_staff)] if require_staff else [])
    source = _Source(db, plans, clock or SystemClock())
    _report_pages(router, source)
    _customer_pages(router, source)
    _json_routes(router, source)
    _asset_routes(router)
    return router


@dataclass(frozen=True)
class _Source:
    """What the routes read: the database, the plans and the time, resolved per request."""

    db: EngineSource
    plans: PlanSource | None
    clock: Clock

    def engine(self) -> Engine:
        return self.db if isinstance(self.db, Engine) else self.db()

    def current_plans(self, conn: Connection) -> Mapping[str, Plan]:
        if self.plans is None:
            return stored_plans(conn)
        return self.plans() if callable(self.plans) else self.plans

    def period_of(
        self, conn: Connection, days: str | None, start: str | None, end: str | None
    ) -> tuple[Period, str]:
        first, last = activity_bounds(conn)
        return choose_period(days, start, end, first=first, last=last, now=self.clock.now())

    def report(
        self, conn: Connection, period: Period, journey: str | None = None
    ) -> dict[str, Any]:
        return build_report(
            conn,
            self.current_plans(conn),
            start=period.start,
            end=period.end,
            journey=journey,
            now=self.clock.now(),
        )


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    """``template`` rendered with links to the router's own routes and scripts."""

    def url(route: str, /, **params: Any) -> str:
        return request.url_for(f"insight_{route}", **params).path

    def static(name: str) -> str:
        return url("static", name=name)

    body = html.render(template, url=url, scripts=html.script_tags(static), **context)
    return HTMLResponse(body, headers={"Content-Security-Policy": DASHBOARD_CSP})


def _error(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    response = _page(request, "error.html", title=title, message=message)
    response.status_code = status
    return response


def _bad_period(request: Request, exc: PeriodError) -> HTMLResponse:
    return _error(request, 400, "Cannot show this", str(exc))


def _charts_page(
    request: Request,
    template: str,
    active: str,
    v: dict[str, Any],
    data: dict[str, Any],
    preset: str,
) -> HTMLResponse:
    """A page of charts (``v`` from :mod:`.views`) over the period picked by ``preset``."""
    return _page(
        request,
        template,
        active=active,
        v=v,
        charts=v["charts"],
        period=html.PeriodView.of(data, preset),
    )


def _report_pages(router: APIRouter, source: _Source) -> None:
    """The overview, a journey's page and the lifecycle stages, for a chosen period."""

    @router.get("/", response_class=HTMLResponse, name="insight_overview")
    def overview(
        request: Request, days: Days = None, start: From = None, end: To = None
    ) -> HTMLResponse:
        with reading(source.engine()) as conn:
            try:
                period, preset = source.period_of(conn, days, start, end)
            except PeriodError as exc:
                return _bad_period(request, exc)
            data = source.report(conn, period)
            before = source.report(
                conn, Period(period.start - (period.end - period.start), period.start)
            )
        v = views.overview(data, before)
        return _charts_page(request, "overview.html", "overview", v, data, preset)

    @router.get("/journeys/{journey_id}", response_class=HTMLResponse, name="insight_journey")
    def journey(
        request: Request, journey_id: str, days: Days = None, start: From = None, end: To = None
    ) -> HTMLResponse:
        with reading(source.engine()) as conn:
            known = source.current_plans(conn)
            if journey_id not in known:
                names = ", ".join(sorted(known)) or "none yet"
                message = f"There is no journey {journey_id!r}. Journeys: {names}."
                return _error(request, 404, "No such journey", message)
            try:
                period, preset = source.period_of(conn, days, start, end)
            except PeriodError as exc:
                return _bad_period(request, exc)
            data = source.report(conn, period, journey_id)
        v = views.journey_page(data, journey_id, known[journey_id])
        return _charts_page(request, "journey.html", "overview", v, data, preset)

    @router.get("/stages", response_class=HTMLResponse, name="insight_stages")
    def stages(
        request: Request, days: Days = None, start: From = None, end: To = None
    ) -> HTMLResponse:
        with reading(source.engine()) as conn:
            try:
                period, preset = source.period_of(conn, days, start, end)
            except PeriodError as exc:
                return _bad_period(request, exc)
            data = source.report(conn, period)
        v = views.stages_page(data, list(STAGES))
        return _charts_page(request, "stages.html", "stages", v, data, preset)


def _customer_pages(router: APIRouter, source: _Source) -> None:
    """The customer search and one customer's page."""

    @router.get("/customers", response_class=HTMLResponse, name="insight_customers")
    def customers(request: Request, q: str = "") -> HTMLResponse:
        with reading(source.engine()) as conn:
            results = customer_core.search(conn, q) if q.strip() else []
        return _page(request, "customers.html", active="customers", query=q, results=results)

    @router.get("/customers/{customer_id}", response_class=HTMLResponse, name="insight_customer")
    def customer(request: Request, customer_id: str) -> HTMLResponse:
        with reading(source.engine()) as conn:
            data = customer_core.customer_page(
                conn, customer_id, source.current_plans(conn), source.clock.now()
            )
        if data is None:
            message = (
                f"No customer has the id {customer_id!r}; search by email on the customers page."
            )
            return _error(request, 404, "No such customer", message)
        return _page(request, "customer.html", active="customers", c=data)


def _json_routes(router: APIRouter, source: _Source) -> None:
    """The report as JSON."""

    @router.get("/api/report", name="insight_report_json")
    def report_json(
        days: Days = None, start: From = None, end: To = None, journey: str | None = None
    ) -> JSONResponse:
        """The report's JSON (docs/metrics.md), for the same period choices as the pages."""
        with reading(source.engine()) as conn:
            try:
                period, _preset = source.period_of(conn, days, start, end)
            except PeriodError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(source.report(conn, period, journey))


def _asset_routes(router: APIRouter) -> None:
    """The vendored chart libraries and the dashboard's script."""

    @router.get("/static/{name}", name="insight_static")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            html.static_text(name),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=86400"},
        )
