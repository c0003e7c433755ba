"""Provider webhooks: SendGrid's signed Event Webhook and Twilio's SMS status callback.

Both check the provider's signature before reading the body, map each event back to our
message (``message_id``), store it as an ``email.*`` / ``sms.*`` event (deduplicated by the
provider's event id, as providers retry), and suppress the customer at once on bounces, spam
reports and unsubscribes. A delivery that is genuine but names no message of ours is answered
200 (with what was skipped), so the provider does not retry it for days.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator

from journeys.web import sendgrid
from journeys.web.deps import get_core
from journeys.web.sendgrid import MappedEvent, SignatureError
from journeys.web.twilio_status import map_status, suppression_reason

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@router.post("/sendgrid", summary="SendGrid Event Webhook (ECDSA-signed)")
async def sendgrid_events(request: Request) -> JSONResponse:
    """Events of messages journeys sent, as ``email.*`` events; see docs/web.md."""
    core = get_core(request)
    key = request.app.state.sendgrid_key
    if key is None:
        return _error(
            503,
            "the SendGrid webhook is not configured: set sendgrid.webhook_public_key in "
            "journeys.yaml or $SENDGRID_WEBHOOK_PUBLIC_KEY",
        )
    body = await request.body()
    try:
        sendgrid.verify_signature(
            key,
            body,
            request.headers.get(sendgrid.SIGNATURE_HEADER),
            request.headers.get(sendgrid.TIMESTAMP_HEADER),
            core.now(),
        )
    except SignatureError as exc:
        return _error(401, str(exc))
    try:
        items = json.loads(body)
    except ValueError:
        return _error(400, "the body is not JSON")
    if not isinstance(items, list):
        return _error(400, "the body must be a JSON array of events")
    mapped: list[MappedEvent] = []
    skipped: list[str] = []
    for item in items:
        result = sendgrid.map_event(item)
        if isinstance(result, MappedEvent):
            mapped.append(result)
        else:
            skipped.append(result)
    report = await run_in_threadpool(
        core.record_feedback, mapped, "sendgrid", sendgrid.SUPPRESSES, skipped
    )
    return JSONResponse(report.as_dict())


@router.post("/twilio", summary="Twilio SMS status callback (X-Twilio-Signature)")
async def twilio_status(request: Request) -> JSONResponse:
    """Status callbacks of SMS journeys sent, as ``sms.*`` events; see docs/web.md."""
    core = get_core(request)
    token = core.config.twilio_auth_token
    if not token:
        return _error(503, "the Twilio callback is not configured: set $TWILIO_AUTH_TOKEN")
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    # Twilio signs the URL it called: the public one, which a proxy may have rewritten.
    url = core.config.base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not RequestValidator(token).validate(
        url, params, request.headers.get("X-Twilio-Signature", "")
    ):
        return _error(403, "X-Twilio-Signature does not match")
    hint = request.query_params.get("message_id", "")
    message_id = (
        int(hint)
        if hint.isdigit()
        else await run_in_threadpool(core.message_for_provider_id, params.get("MessageSid", ""))
    )
    if message_id is None:
        return JSONResponse({"accepted": 0, "skipped": 1})
    record = map_status(params, message_id, core.now())
    if isinstance(record, str):
        return JSONResponse({"accepted": 0, "skipped": 1})
    reason = suppression_reason(params)
    suppress = {record["type"]: reason} if reason else {}
    report = await run_in_threadpool(
        core.record_feedback, [MappedEvent(message_id, record)], "twilio", suppress
    )
    return JSONResponse(report.as_dict())
