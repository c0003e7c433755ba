"""Golden tests (actionlint style): tests/golden/<case>.yaml (or a <case>/ directory) and the
diagnostics expected for it in tests/golden/<case>.out.

Regenerate after an intended change with
``JOURNEYS_UPDATE_GOLDEN=1 pytest tests/test_spec_golden.py`` and review the diff of the .out files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from journeys.settings import Settings
from journeys.spec import CODES, load_project, render_text

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SETTINGS = Settings(
    teams={"support": {"channel": "console"}, "sales": {"channel": "console"}},
    events={"advocacy.candidate": None},
)
CASES = sorted(
    p.name
    for p in GOLDEN.iterdir()
    if (p.suffix == ".yaml" or (p.is_dir() and p.name != "templates"))
)
# Not reproducible with a small committed file; unit-tested in test_spec_yamlpos/test_spec_project.
# Covered by unit tests instead: they need a huge file, a missing one, a crash, or a database
# (the in-flight warnings of `validate --database`, tests/test_inflight.py).
NOT_GOLDEN = {
    "file-too-large",
    "file-not-found",
    "internal-error",
    "in-flight-step-removed",
    "in-flight-journey-removed",
}


def run_case(name: str) -> str:
    """The rendered diagnostics of one case, paths relative to tests/golden."""
    cwd = Path.cwd()
    os.chdir(GOLDEN)
    try:
        case = Path(name)
        own_settings = case.is_dir() and (case / "journeys.yaml").exists()
        project = load_project(
            [case], templates_dir="templates", settings=None if own_settings else SETTINGS
        )
        return render_text(project.diagnostics)
    finally:
        os.chdir(cwd)


def expected_path(name: str) -> Path:
    return GOLDEN / (Path(name).stem + ".out")


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    actual = run_case(name)
    out = expected_path(name)
    if os.environ.get("JOURNEYS_UPDATE_GOLDEN"):
        out.write_text(actual, encoding="utf-8")
    assert out.exists(), f"missing {out.name}; run with JOURNEYS_UPDATE_GOLDEN=1"
    assert actual == out.read_text(encoding="utf-8")


def test_golden_covers_every_code() -> None:
    seen: set[str] = set()
    scenario_outs = (GOLDEN.parent / "golden_scenarios").glob("*.out")  # test_scenario_files
    for out in [*GOLDEN.glob("*.out"), *scenario_outs]:
        for line in out.read_text(encoding="utf-8").splitlines():
            seen.add(line.rsplit("[", 1)[1].rstrip("]"))
    assert set(CODES) - NOT_GOLDEN - seen == set()
    assert seen <= set(CODES)


def test_valid_case_is_clean() -> None:
    assert expected_path("valid.yaml").read_text() == ""


def test_every_code_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "language.md").read_text("utf-8")
    assert [code for code in CODES if f"| `{code}` |" not in doc] == []
