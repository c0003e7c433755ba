"""A local HTTP server that speaks like SendGrid, Twilio and webhook receivers, with faults.

Routes (what the real clients call):

- ``POST /v3/mail/send`` (SendGrid v3): the ``Authorization: Bearer <key>`` header and the
  body's shape are checked as SendGrid does (a bad key is 401, a missing field 400 with
  SendGrid's error JSON); an accepted message is ``202`` with ``X-Message-Id``. Its key is
  ``custom_args.message_id``. Personal data in ``custom_args`` or ``categories`` is recorded
  as a problem.
- ``POST /2010-04-01/Accounts/<sid>/Messages.json`` (Twilio): HTTP Basic auth with the
  account SID and token, form fields ``To``, ``Body`` and ``From`` or
  ``MessagingServiceSid``; ``To`` must be E.164 (else Twilio's error 21211); ``201`` with a
  message resource. Its key is ``To`` + ``Body``.
- ``POST /hooks/<name>``: a signed JSON webhook (``X-Journeys-Timestamp``,
  ``X-Journeys-Signature: sha256=<hex>`` of ``timestamp.body`` with the shared secret; a bad
  signature is 401). ``POST /slack/<name>``: a Slack incoming webhook (``{"text": …}``, answers
  ``ok``).
- ``GET /_stats``: what happened, as JSON (for a server running in another process);
  ``GET /_count``: just how many requests it accepted.

A :class:`FaultPlan` makes some answers ``429`` (with ``X-RateLimit-Reset`` in the clock's
time), ``500``, a hang (no answer until the client times out and closes) or a drop (the
connection closed without an answer); a hung or dropped request is not accepted. The choice
is a hash of (seed, message key, attempt), so it does not depend on the order concurrent
requests arrive in.

In-process: ``with FakeProviders(...) as fake: fake.url``. In another process (its own
GIL, for load and fault tests): :class:`FakeProvidersProcess`, which runs
``python -m journeys.testing.fake_providers --config JSON``.
"""

from journeys.testing.fake_providers.plan import Credentials, FaultPlan
from journeys.testing.fake_providers.process import FakeProvidersProcess, main
from journeys.testing.fake_providers.providers import SIGNATURE_HEADER, TIMESTAMP_HEADER
from journeys.testing.fake_providers.server import FakeProviders

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Credentials",
    "FakeProviders",
    "FakeProvidersProcess",
    "FaultPlan",
    "main",
]
