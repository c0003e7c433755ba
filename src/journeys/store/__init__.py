"""Persistence: SQLAlchemy Core tables, engines and Alembic migrations.

Only this package knows SQL. :func:`open_store` gives a migrated engine for a URL (default
``$JOURNEYS_DATABASE_URL``, else ``sqlite:///journeys.db``).
"""

from journeys.store.db import (
    create_engine,
    database_url,
    describe,
    migrate,
    open_store,
)
from journeys.store.tables import metadata

__all__ = [
    "create_engine",
    "database_url",
    "describe",
    "metadata",
    "migrate",
    "open_store",
]
