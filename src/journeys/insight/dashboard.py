"""The insight dashboard as a FastAPI router: overview, journeys, lifecycle, customers.

The web app mounts it (``app.include_router(build_router(...), prefix=...)``) and hands in its
database and its staff check; nothing here knows how staff log in. Pages are rendered on the
server from the report (:mod:`.report`) and draw their charts in the browser with the vendored
Vega-Lite, served by the router itself, so the dashboard works without internet access.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    clock = clock or SystemClock()

    def engine() -> Engine:
        return db if isinstance(db, Engine) else db()

    def current_plans(conn: Connection) -> Mapping[str, Plan]:
        if plans is None:
            return stored_plans(conn)
        return plans() if callable(plans) else plans

    def page(request: Request, template: str, **context: Any) -> HTMLResponse:
        def url(route: str, /, **params: Any) -> str:
            return request.url_for(f"insight_{route}", **params).path

        def static(name: str) -> str:
            return url("static", name=name)

        body = html.render(template, url=url, scripts=html.script_tags(static), **context)
        return HTMLResponse(body, headers={"Content-Security-Policy": DASHBOARD_CSP})

    def period_of(
        conn: Connection, days: str | None, start: str | None, end: str | None
    ) -> tuple[Period, str]:
        first, last = activity_bounds(conn)
        return choose_period(days, start, end, first=first, last=last, now=clock.now())

    def bad_request(request: Request, message: str) -> HTMLResponse:
        response = page(request, "error.html", title="Cannot show this", message=message)
        response.status_code = 400
        return response

    def report(conn: Connection, period: Period, journey: str | None = None) -> dict[str, Any]:
        return build_report(
            conn,
            current_plans(conn),
            start=period.start,
            end=period.end,
            journey=journey,
            now=clock.now(),
        )

    @router.get("/", response_class=HTMLResponse, name="insight_overview")
    def overview(
        request: Request, days: Days = None, start: From = None, end: To = None
    ) -> HTMLResponse:
        with reading(engine()) as conn:
            try:
                period, preset = period_of(conn, days, start, end)
            except PeriodError as exc:
                return bad_request(request, str(exc))
            data = report(conn, period)
            before = report(conn, Period(period.start - (period.end - period.start), period.start))
        v = views.overview(data, before)
        return page(
            request,
            "overview.html",
            active="overview",
            v=v,
            charts=v["charts"],
            period=html.PeriodView.of(data, preset),
        )

    @router.get("/journeys/{journey_id}", response_class=HTMLResponse, name="insight_journey")
    def journey(
        request: Request, journey_id: str, days: Days = None, start: From = None, end: To = None
    ) -> HTMLResponse:
        with reading(engine()) as conn:
            known = current_plans(conn)
            if journey_id not in known:
                names = ", ".join(sorted(known)) or "none yet"
                response = page(
                    request,
                    "error.html",
                    title="No such journey",
                    message=f"There is no journey {journey_id!r}. Journeys: {names}.",
                )
                response.status_code = 404
                return response
            try:
                period, preset = period_of(conn, days, start, end)
            except PeriodError as exc:
                return bad_request(request, str(exc))
            data = report(conn, period, journey_id)
        v = views.journey_page(data, journey_id, known[journey_id])
        return page(
            request,
            "journey.html",
            active="overview",
            v=v,
            charts=v["charts"],
            period=html.PeriodView.of(data, preset),
        )

    @router.get("/stages", response_class=HTMLResponse, name="insight_stages")
    def stages(
        request: Request, days: Days = None, start: From = None, end: To = None
    ) -> HTMLResponse:
        with reading(engine()) as conn:
            try:
                period, preset = period_of(conn, days, start, end)
            except PeriodError as exc:
                return bad_request(request, str(exc))
            data = report(conn, period)
        v = views.stages_page(data, list(STAGES))
        return page(
            request,
            "stages.html",
            active="stages",
            v=v,
            charts=v["charts"],
            period=html.PeriodView.of(data, preset),
        )

    @router.get("/customers", response_class=HTMLResponse, name="insight_customers")
    def customers(request: Request, q: str = "") -> HTMLResponse:
        with reading(engine()) as conn:
            results = customer_core.search(conn, q) if q.strip() else []
        return page(request, "customers.html", active="customers", query=q, results=results)

    @router.get("/customers/{customer_id}", response_class=HTMLResponse, name="insight_customer")
    def customer(request: Request, customer_id: str) -> HTMLResponse:
        with reading(engine()) as conn:
            data = customer_core.customer_page(conn, customer_id, current_plans(conn), clock.now())
        if data is None:
            response = page(
                request,
                "error.html",
                title="No such customer",
                message=f"No customer has the id {customer_id!r}; search by email on the "
                "customers page.",
            )
            response.status_code = 404
            return response
        return page(request, "customer.html", active="customers", c=data)

    @router.get("/api/report", name="insight_report_json")
    def report_json(
        days: Days = None, start: From = None, end: To = None, journey: str | None = None
    ) -> JSONResponse:
        """The report's JSON (docs/metrics.md), for the same period choices as the pages."""
        with reading(engine()) as conn:
            try:
                period, _preset = period_of(conn, days, start, end)
            except PeriodError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(report(conn, period, journey))

    @router.get("/static/{name}", name="insight_static")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            html.static_text(name),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return router
