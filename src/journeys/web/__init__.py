"""The web app (``journeys web``, and ``journeys run`` unless ``--no-web``): survey pages,
unsubscribe and preferences, SendGrid and Twilio webhooks, the event intake API and health.
See docs/web.md.
"""

from __future__ import annotations

from journeys.web.app import WebConfigError, create_app
from journeys.web.server import UnsafeBind, WebServer, serve, serve_in_background

__all__ = [
    "UnsafeBind",
    "WebConfigError",
    "WebServer",
    "create_app",
    "serve",
    "serve_in_background",
]
