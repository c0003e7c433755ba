"""Event intake: ``POST /v1/events`` (our event contract, docs/events.md) and Segment's HTTP
tracking API (``/v1/track``, ``/v1/identify``, ``/v1/page``, ``/v1/screen``, ``/v1/group``,
``/v1/alias``, ``/v1/batch``), so Segment, RudderStack and CDP webhooks can send unchanged.

Every request needs an ``events`` API key and is rate-limited per key. Good records are kept
when others are bad: the answer lists each bad one by its index (400), and sending the same
records again is safe (event ids deduplicate).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from journeys.runtime.records import RecordError
from journeys.web import segment
from journeys.web.deps import get_core
from journeys.web.security import require_api_key

router = APIRouter(prefix="/v1", tags=["intake"], dependencies=[Depends(require_api_key)])

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "customer_id", "occurred_at"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "description": "idempotency key: the same id is stored once"},
        "type": {"type": "string", "examples": ["order.placed"]},
        "customer_id": {"type": "string"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "data": {"type": "object"},
    },
}
SEGMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "event": {"type": "string"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
        "messageId": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
    },
}
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "skipped": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "error": {"type": "string"}},
            },
        },
    },
}


def _openapi(body: dict[str, Any]) -> dict[str, Any]:
    content = {"application/json": {"schema": ANSWER_SCHEMA}}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {"description": "every record stored or already known", "content": content},
            "400": {"description": "some records refused (listed); the others stored"},
            "401": {"description": "no valid API key"},
            "413": {"description": "body too large"},
            "429": {"description": "rate limit exceeded; see Retry-After"},
        },
    }


async def _json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise HTTPException(400, "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise HTTPException(
            400, f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _answer(report: Any, errors: list[tuple[int, str]], skipped: int = 0) -> JSONResponse:
    problems = sorted([*errors, *report.errors])
    return JSONResponse(
        {
            "success": not problems,
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "skipped": skipped,
            "errors": [{"index": index, "error": message} for index, message in problems],
        },
        status_code=400 if problems else 200,
    )


@router.post(
    "/events",
    summary="Events in journeys' contract (a JSON array)",
    openapi_extra=_openapi({"type": "array", "items": EVENT_SCHEMA}),
)
async def events(request: Request) -> JSONResponse:
    """A JSON array of events (``id``, ``type``, ``customer_id``, ``occurred_at``, ``data``)."""
    data = await _json(request)
    if not isinstance(data, list):
        raise HTTPException(400, "the body must be a JSON array of events (docs/events.md)")
    core = get_core(request)
    report = await run_in_threadpool(core.ingest, data, "api", 0)
    return _answer(report, [])


async def _segment(request: Request, kind: str) -> JSONResponse:
    core = get_core(request)
    body = await _json(request)
    if kind == "batch":
        if not isinstance(body, Mapping) or not isinstance(body.get("batch"), list):
            raise HTTPException(400, 'a batch is {"batch": [messages…]}')
        shared = body.get("context") if isinstance(body.get("context"), Mapping) else {}
        messages = [
            {**m, "context": {**shared, **(m.get("context") or {})}}
            if isinstance(m, Mapping) and shared
            else m
            for m in body["batch"]
        ]
    else:
        messages = [body]
    now = core.now()
    records: list[dict[str, Any] | None] = []
    origin: list[int] = []  # the message index of each record
    errors: list[tuple[int, str]] = []
    skipped = 0
    users: set[str] = set()
    for index, message in enumerate(messages):
        try:
            if kind == "batch" and not (isinstance(message, Mapping) and message.get("type")):
                raise RecordError("each batch message needs a 'type' (track, identify, …)")
            event = segment.to_event(message, kind, mapping=core.config.segment_events, now=now)
        except RecordError as exc:
            errors.append((index, str(exc)))
            continue
        if isinstance(event, segment.Skipped):
            skipped += 1
            continue
        if event["customer_id"] not in users:
            # Segment needs no identify before a track: a user journeys has not seen yet
            # comes into being with their first message (stored once, whatever the retries).
            users.add(event["customer_id"])
            records.append(segment.implied_customer(event))
            origin.append(index)
        records.append(event)
        origin.append(index)
    report = await run_in_threadpool(core.ingest, records, "segment", 0)
    report.errors = [(origin[position], message) for position, message in report.errors]
    return _answer(report, errors, skipped)


def _segment_route(kind: str) -> None:
    async def endpoint(request: Request) -> JSONResponse:
        return await _segment(request, kind)

    endpoint.__name__ = f"segment_{kind}"
    body = (
        {"type": "object", "properties": {"batch": {"type": "array", "items": SEGMENT_SCHEMA}}}
        if kind == "batch"
        else SEGMENT_SCHEMA
    )
    router.add_api_route(
        f"/{kind}",
        endpoint,
        methods=["POST"],
        summary=f"Segment {kind}",
        description=segment.__doc__,
        openapi_extra=_openapi(body),
    )


for _kind in (*segment.KINDS, "batch"):
    _segment_route(_kind)
