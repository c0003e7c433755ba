"""Local stand-ins for the providers journeys talks to, for tests, benchmarks and trials.

:mod:`.fake_providers` is a small HTTP server that speaks SendGrid's ``/v3/mail/send``,
Twilio's Messages API and signed webhooks, checks what it receives the way the real
services do (keys, body shape, signatures) and can answer with faults on a plan (429 with a
reset, 500, a hang). :mod:`.shared_clock` is a virtual clock two processes can share.
Nothing here is used by the engine itself.
"""
