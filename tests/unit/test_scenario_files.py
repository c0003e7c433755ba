"""Scenario files are read like journeys: positions, every problem at once, no traceback.

Golden files: tests/golden_scenarios/<case>.yaml and the diagnostics expected for it in
<case>.out (checked against the example project). Regenerate after an intended change with
``JOURNEYS_UPDATE_GOLDEN=1 pytest tests/test_scenario_files.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeys.cli import _register, app
from journeys.scenarios import ScenarioError, check_scenarios, load_scenarios
from journeys.spec import load_project, render_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parents[1] / "golden_scenarios"
CASES = sorted(p.name for p in GOLDEN.glob("*.yaml"))


@pytest.fixture(scope="module")
def plans():
    project = load_project([ROOT / "journey_specs"], templates_dir=ROOT / "templates")
    assert project.ok
    return project.plans


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str, plans) -> None:
    cwd = Path.cwd()
    os.chdir(GOLDEN)
    try:
        scenarios, problems = check_scenarios(Path(name), plans)
    finally:
        os.chdir(cwd)
    assert scenarios == []
    actual = render_text(problems)
    out = GOLDEN / name.replace(".yaml", ".out")
    if os.environ.get("JOURNEYS_UPDATE_GOLDEN"):
        out.write_text(actual, encoding="utf-8")
    assert actual == out.read_text(encoding="utf-8")


def test_load_scenarios_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("start: 2026-03-02T00:00:00Z\nexpect: {mesages: []}\nevents: [oops]\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(path)
    assert [(d.line, d.code) for d in caught.value.diagnostics] == [
        (2, "unknown-key"),
        (3, "wrong-type"),
    ]
    assert 'did you mean "messages"?' in str(caught.value)
    with pytest.raises(ScenarioError, match="cannot read it"):
        load_scenarios(tmp_path / "missing.yaml")


def test_journeys_test_prints_diagnostics_and_runs_the_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "start: 2026-03-02T00:00:00Z\nevents:\n  - {at: yesterday, type: cart.updated,"
        " customer_id: c-1}\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(
        "start: 2026-03-02T00:00:00Z\njourneys: [welcome]\nuntil: 1d\n"
        "customers: [{id: c-1}]\nexpect: {messages: []}\n"
    )
    _register()
    result = CliRunner().invoke(
        app,
        [
            "test",
            str(tmp_path),
            "--specs",
            str(ROOT / "journey_specs"),
            "--templates",
            str(ROOT / "templates"),
        ],
    )
    assert result.exit_code == 1
    assert f"{bad}:3:10: at: " in result.output and "[bad-value]" in result.output
    assert "Traceback" not in result.output
    assert f"PASS {good}" in result.output
    assert "1 passed, 1 failed" in result.output
