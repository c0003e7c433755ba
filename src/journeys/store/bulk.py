"""Bulk statements: IN-list chunks, ON CONFLICT inserts and SQLite's fast executemany.

Used by every SQL module of the store; nothing here knows journeys' tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

# SQLite allows 32766 bound parameters per statement; stay well below with IN lists.
IN_CHUNK = 5000


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_stmt(conn: Connection, table: Any) -> Any:
    """An INSERT that can take ON CONFLICT DO NOTHING on both dialects."""
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def dicts(result: Any) -> list[dict[str, Any]]:
    """Result rows as plain dicts. Every datetime column is a ``UtcDateTime``, which already
    hands back aware UTC values, so rows need no per-value conversion (the hot path)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


# SQLite executemany without SQLAlchemy's per-row parameter building: (name, keys) → the
# compiled SQL and, per positional parameter, its key and the type's bind processor.
_FAST: dict[tuple[str, tuple[str, ...]], tuple[str, list[tuple[str, Any]]] | None] = {}


def _fast_plan(
    conn: Connection, name: str, stmt: Any, keys: tuple[str, ...]
) -> tuple[str, list[tuple[str, Any]]] | None:
    """The compiled SQL of ``stmt`` for parameter dicts with ``keys`` and, per positional
    parameter, its key and bind processor; None when the statement needs SQLAlchemy's own
    parameter handling (Python-side defaults, expanding or escaped parameters)."""
    key = (name, keys)
    if key in _FAST:
        return _FAST[key]
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(keys))
    names = compiled.positiontup
    plan: tuple[str, list[tuple[str, Any]]] | None = None
    if (
        names is not None
        and not compiled.insert_prefetch
        and not compiled.update_prefetch
        and not compiled.literal_execute_params
        and not compiled.post_compile_params
        and not compiled.escaped_bind_names
        and set(names) <= set(keys)
    ):
        processors = compiled._bind_processors
        plan = (compiled.string, [(n, processors.get(n)) for n in names])
    _FAST[key] = plan
    return plan


def _fast_params(binds: list[tuple[str, Any]], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Positional parameter tuples, each value through its type's bind processor (exactly
    what SQLAlchemy's executemany does, without its per-row overhead)."""
    return [tuple([row[n] if proc is None else proc(row[n]) for n, proc in binds]) for row in rows]


def fast_rows(
    conn: Connection, name: str, stmt: Any, rows: Sequence[Mapping[str, Any]]
) -> tuple[str, list[Any]] | None:
    """On SQLite, the compiled SQL of ``stmt`` and one positional parameter tuple per row, for
    the driver directly; None when SQLAlchemy's own path must run (another database, rows with
    different keys, a statement that needs its parameter handling, a bad value: SQLAlchemy
    then raises exactly what it always raised). ``name`` identifies the statement's shape."""
    if conn.dialect.name != "sqlite" or not rows:
        return None
    first = rows[0].keys()
    if not all(row.keys() == first for row in rows):
        return None
    plan = _fast_plan(conn, name, stmt, tuple(first))
    if plan is None:
        return None
    try:
        return plan[0], _fast_params(plan[1], rows)
    except Exception:
        return None


def executemany(conn: Connection, name: str, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """``conn.execute(stmt, rows)`` for rows that all have the same keys, through
    :func:`_fast_rows` where it can."""
    fast = fast_rows(conn, name, stmt, rows) if len(rows) > 1 else None
    if fast is None:
        conn.execute(stmt, [dict(r) for r in rows])
    else:
        conn.exec_driver_sql(*fast)
