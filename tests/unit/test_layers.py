"""Dependencies point one way (docs/architecture.md): the language and the pure runtime know
nothing of SQL, Prefect, HTTP or the CLI, and the store sits below the runtime.

Every import statement of a module counts, top-level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "journeys"
FRAMEWORKS = (
    "sqlalchemy",
    "alembic",
    "prefect",
    "httpx",
    "fastapi",
    "uvicorn",
    "starlette",
    "typer",
    "rich",
    "requests",
    "apscheduler",
    "psycopg",
)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(*parts: str) -> list[Path]:
    found: list[Path] = []
    for part in parts:
        path = SRC / part
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return found


PURE = _modules(
    "spec", "plan", "conditions", "state", "expressions", "clock", "durations", "runtime"
)


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(SRC)))
def test_the_language_and_the_runtime_import_no_framework(path: Path) -> None:
    bad = sorted(i for i in _imports(path) if i.split(".")[0] in FRAMEWORKS)
    assert not bad, f"{path.relative_to(SRC)} imports {bad}"


@pytest.mark.parametrize("path", _modules("runtime"), ids=lambda p: str(p.relative_to(SRC)))
def test_the_runtime_reaches_the_store_only_through_its_interface(path: Path) -> None:
    bad = sorted(
        i
        for i in _imports(path)
        if i.startswith("journeys.store") and i != "journeys.store.interface"
    )
    assert not bad, f"{path.relative_to(SRC)} imports {bad}"


@pytest.mark.parametrize("path", _modules("store"), ids=lambda p: str(p.relative_to(SRC)))
def test_the_store_sits_below_the_runtime(path: Path) -> None:
    bad = sorted(
        i
        for i in _imports(path)
        if i.startswith(("journeys.runtime", "journeys.service", "journeys.cli", "journeys.web"))
    )
    assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_the_memory_store_is_plain_python() -> None:
    bad = sorted(i for i in _imports(SRC / "store" / "memory.py") if i.split(".")[0] in FRAMEWORKS)
    assert not bad
