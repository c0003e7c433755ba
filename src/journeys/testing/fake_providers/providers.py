"""The requests each fake provider accepts, checked the way the real service checks them.

A check takes the request and gives ``(refusal, key, record)``: a refusal is the error
answer for a request the real service would refuse (``None`` when it is fine), the key names
the message (to count attempts and draw faults) and the record is what gets stored when it
is accepted, with the ``answer`` to give.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from journeys.testing.fake_providers.plan import Credentials
from journeys.testing.fake_providers.wire import Answer, json_answer

SIGNATURE_HEADER = "X-Journeys-Signature"
TIMESTAMP_HEADER = "X-Journeys-Timestamp"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")

Checked = tuple[Answer | None, str, dict[str, Any]]
Problem = Callable[[str], None]
"""Records something the real service would accept but the client should not send."""
Check = Callable[[Credentials, Problem, str, dict[str, str], bytes], Checked]


def check_for(path: str) -> Check | None:
    """The check of the provider answering POSTs to ``path`` (None: no such route)."""
    if path == "/v3/mail/send":
        return sendgrid
    if re.fullmatch(r"/2010-04-01/Accounts/[^/]+/Messages\.json", path):
        return twilio
    if path.startswith("/hooks/"):
        return webhook
    if path.startswith("/slack/"):
        return slack
    return None


def sendgrid(
    creds: Credentials, problem: Problem, path: str, headers: dict[str, str], body: bytes
) -> Checked:
    """SendGrid v3 ``/mail/send``: bearer key, body shape, no personal data in the
    ``custom_args`` or ``categories``; keyed by ``custom_args.message_id``."""
    if headers.get("authorization") != f"Bearer {creds.sendgrid_key}":
        message = "The provided authorization grant is invalid, expired, or revoked"
        return json_answer(401, {"errors": [{"message": message, "field": None}]}), "", {}
    try:
        data = json.loads(body)
    except ValueError:
        return json_answer(400, {"errors": [{"message": "Bad Request", "field": None}]}), "", {}
    missing = _sendgrid_missing(data)
    if missing:
        field_, message = missing
        return json_answer(400, {"errors": [{"message": message, "field": field_}]}), "", {}
    args = data.get("custom_args") or {}
    key = str(args.get("message_id", ""))
    recipient = data["personalizations"][0]["to"][0]["email"]
    if set(args) != {"message_id"}:
        problem(f"custom_args carries more than the message id: {sorted(args)}")
    names = {recipient.lower(), str(data["from"].get("name", "")).lower()} - {""}
    for value in [*args.values(), *(data.get("categories") or [])]:
        text = str(value).lower()
        if "@" in text or text in names:
            problem(f"personal data in custom_args or categories: {value!r}")
    provider_id = uuid.uuid4().hex[:22]
    answer = (202, {"X-Message-Id": provider_id}, b"", "text/plain")
    record = {"body": data, "headers": headers, "provider_id": provider_id, "answer": answer}
    return None, key, record


def twilio(
    creds: Credentials, problem: Problem, path: str, headers: dict[str, str], body: bytes
) -> Checked:
    """Twilio's Messages API: basic auth, an E.164 ``To``, a sender and a body; keyed by
    ``To`` + ``Body``."""
    sid = path.split("/")[3]
    expected = base64.b64encode(f"{creds.twilio_sid}:{creds.twilio_token}".encode()).decode()
    if sid != creds.twilio_sid or headers.get("authorization") != f"Basic {expected}":
        error = {"code": 20003, "message": "Authenticate", "status": 401}
        return json_answer(401, error), "", {}
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    to, text = form.get("To", ""), form.get("Body", "")
    sender = form.get("From") or form.get("MessagingServiceSid")
    if not _E164.match(to):
        message = f"The 'To' number {to} is not a valid phone number."
        return json_answer(400, {"code": 21211, "message": message, "status": 400}), "", {}
    if not sender or not text:
        message = "A 'From' phone number or 'MessagingServiceSid' and a 'Body' are required."
        return json_answer(400, {"code": 21603, "message": message, "status": 400}), "", {}
    msid = "SM" + uuid.uuid4().hex
    resource = {
        "sid": msid,
        "account_sid": sid,
        "to": to,
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "body": text,
        "status": "queued",
        "num_segments": "1",
        "direction": "outbound-api",
        "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msid}.json",
    }
    answer = json_answer(201, resource)
    return None, f"{to}|{text}", {"body": form, "provider_id": msid, "answer": answer}


def webhook(
    creds: Credentials, problem: Problem, path: str, headers: dict[str, str], body: bytes
) -> Checked:
    """A signed JSON webhook (a bad signature is 401 and a problem); keyed by its
    ``message_id``."""
    stamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    given = headers.get(SIGNATURE_HEADER.lower(), "")
    secret = creds.webhook_secret.encode()
    expected = "sha256=" + hmac.new(secret, stamp.encode() + b"." + body, "sha256").hexdigest()
    if not stamp or not hmac.compare_digest(given, expected):
        problem(f"bad webhook signature on {path}")
        return json_answer(401, {"message": "bad signature"}), "", {}
    try:
        data = json.loads(body)
    except ValueError:
        return json_answer(400, {"message": "not JSON"}), "", {}
    key = str(data.get("message_id", ""))
    return None, key, {"body": data, "path": path, "answer": json_answer(200, {"ok": True})}


def slack(
    creds: Credentials, problem: Problem, path: str, headers: dict[str, str], body: bytes
) -> Checked:
    """A Slack incoming webhook (``{"text": …}``, answers ``ok``); keyed by the body's hash."""
    try:
        data = json.loads(body)
    except ValueError:
        return (400, {}, b"invalid_payload", "text/plain"), "", {}
    if not isinstance(data, dict) or not data.get("text"):
        return (400, {}, b"no_text", "text/plain"), "", {}
    key = hashlib.sha256(body).hexdigest()[:16]
    return None, key, {"body": data, "path": path, "answer": (200, {}, b"ok", "text/plain")}


def _sendgrid_missing(data: Any) -> tuple[str, str] | None:
    if not isinstance(data, dict):
        return "body", "The request body must be a JSON object"
    try:
        email = data["personalizations"][0]["to"][0]["email"]
    except (KeyError, IndexError, TypeError):
        return "personalizations", "The personalizations field is required"
    if not email or "@" not in email:
        return "personalizations.0.to.0.email", "Does not contain a valid address."
    if not isinstance(data.get("from"), dict) or "@" not in str(data["from"].get("email", "")):
        return "from.email", "The from email does not contain a valid address."
    if not data.get("subject"):
        return "subject", "The subject is required."
    content = data.get("content")
    if not isinstance(content, list) or not content:
        return (
            "content",
            "Unless a valid template_id is provided, the content parameter is required.",
        )
    if len(content) > 1 and content[0].get("type") != "text/plain":
        return "content.0.type", "The text/plain content type must be first."
    return None
