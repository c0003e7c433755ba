"""How long names may be, and which characters an event type has.

The store keeps each name in a column of fixed size (``store/tables.py``); a longer name would
be cut silently by SQLite and refused by PostgreSQL at run time, so the language refuses it at
validate time (``too-long``) and intake refuses it per record. The language does not import
the store: ``tests/test_limits.py`` checks that these numbers equal the column sizes.
"""

from __future__ import annotations

import re

JOURNEY_ID = 100
"""A journey id (``journey:``)."""
STEP_ID = 100
"""A step id."""
EVENT_TYPE = 120
"""An event type (``order.placed``), in specs and in ingested events."""
TEMPLATE_NAME = 100
"""A template name (``send: {template: …}``)."""
EXIT_REASON = 200
"""The reason of an ``exit:`` step (recorded as the enrollment's exit reason)."""
VARIANT = 100
"""A split variant name (recorded as ``variant <name>`` with the step run)."""
CUSTOMER_ID = 128
"""A customer id (imported profiles and events)."""
EVENT_ID = 200
"""An event id (the idempotency key of an ingested event)."""

EVENT_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")
"""Letters, digits and ``. _ - : /``, starting with a letter or digit: ``order.placed``."""
EVENT_TYPE_CHARS = "letters, digits and . _ - : / (no spaces)"
""":data:`EVENT_TYPE_PATTERN` in words, for messages."""


def too_long(text: str, limit: int) -> bool:
    """Whether ``text`` is longer than ``limit`` characters."""
    return len(text) > limit
