"""Every shipped scenario (tests/scenarios) passes against the example journeys.

These are the same files ``journeys test`` runs; pytest runs each scenario as its own test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from journeys.scenarios import ScenarioError, discover, load_scenarios, run_scenario
from journeys.spec import load_project

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = [
    pytest.param(path, index, id=f"{path.stem}-{index + 1}")
    for path in discover([ROOT / "tests" / "scenarios"])
    for index, _ in enumerate(load_scenarios(path))
]


@pytest.fixture(scope="module")
def project():
    loaded = load_project([ROOT / "journey_specs"], templates_dir=ROOT / "templates")
    assert loaded.ok, [str(d) for d in loaded.diagnostics]
    return loaded


def test_every_example_journey_has_scenarios(project) -> None:
    covered = {
        j
        for path in discover([ROOT / "tests" / "scenarios"])
        for s in load_scenarios(path)
        for j in (s.journeys or [])
    }
    assert set(project.plans) <= covered


@pytest.mark.parametrize(("path", "index"), SCENARIOS)
def test_scenario(project, path: Path, index: int) -> None:
    scenario = load_scenarios(path)[index]
    result = run_scenario(project, scenario)
    assert result.passed, "\n".join(result.failures)


def test_a_wrong_expectation_fails_with_a_readable_diff(project, tmp_path: Path) -> None:
    text = (ROOT / "tests" / "scenarios" / "birthday.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("at: 2026-03-05T00:00:00Z", "at: 2026-03-05T00:01:00Z"), "utf-8")
    result = run_scenario(project, load_scenarios(broken)[0])
    assert not result.passed
    assert "missing: customer_id=c-1" in result.failures[0]
    assert "unexpected: customer_id=c-1" in result.failures[0]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "start: 2026-03-02T00:00:00Z\nevents: [oops]\n",
            's.yaml:2:10: events[0] must be a mapping (key: value), got "oops" [wrong-type]',
        ),
        (
            "start: 2026-03-02T00:00:00Z\nexpect: {messages: [{customer_id: c-1}]}\n",
            's.yaml:2:21: missing key "at" in expect.messages[0] [missing-field]',
        ),
        (
            "start: 2026-03-02T00:00:00Z\ncustomers: {id: c-1}\n",
            "s.yaml:2:12: customers must be a list, got a mapping [wrong-type]",
        ),
        (
            "start: 2026-03-02T00:00:00Z\nexpect: [1]\n",
            "s.yaml:2:9: expect must be a mapping (key: value), got a list [wrong-type]",
        ),
    ],
)
def test_a_malformed_scenario_is_a_clear_error(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(path)
    assert f"{tmp_path}/{says}" in [str(d) for d in caught.value.diagnostics]
