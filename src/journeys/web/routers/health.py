"""``GET /healthz`` for load balancers, and the pages' style sheet."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from journeys.web.core import WebCore
from journeys.web.deps import get_core

router = APIRouter()


@router.get("/healthz", tags=["health"], summary="200 when the database answers, else 503")
async def healthz(core: Annotated[WebCore, Depends(get_core)]) -> JSONResponse:
    """``{"status": "ok"}`` when the database answers a query; 503 otherwise."""
    if await run_in_threadpool(core.healthy):
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "database unavailable"}, status_code=503)


@cache
def _stylesheet() -> bytes:
    return resources.files("journeys.web").joinpath("templates/web.css").read_bytes()


@router.get("/assets/web.css", include_in_schema=False)
async def stylesheet() -> Response:
    """The one style sheet of the pages."""
    return Response(
        _stylesheet(),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )
