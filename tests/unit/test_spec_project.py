"""load_project: discovery, settings, lifecycle, plans only for clean journeys, never raising."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_spec_support import write_template

from journeys.plan import Lifecycle, Plan, StageRule
from journeys.spec import Diagnostic, load_project, render_json, render_text
from journeys.spec.rules import registry

JOURNEY = """\
journey: {jid}
trigger: {{event: cart.updated}}
steps:
  - id: remind
    send: {{template: reminder}}
"""


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    specs = tmp_path / "journey_specs"
    specs.mkdir()
    (specs / "cart.yaml").write_text(JOURNEY.format(jid="cart"))
    (specs / "nested").mkdir()
    (specs / "nested" / "other.yml").write_text(JOURNEY.format(jid="other"))
    write_template(tmp_path / "templates", "reminder.html")
    return tmp_path


def test_plans_and_defaults(project_dir: Path) -> None:
    project = load_project([project_dir / "journey_specs"])
    assert project.ok and project.diagnostics == []
    assert sorted(project.plans) == ["cart", "other"]
    assert project.lifecycle == Lifecycle()
    assert project.templates.names() == ["reminder"]
    plan = project.plans["cart"]
    assert Plan.from_json(plan.to_json()) == plan
    assert len(plan.version) == 16 and plan.templates == ("reminder",)


def test_version_changes_with_template(project_dir: Path) -> None:
    before = load_project([project_dir / "journey_specs"]).plans["cart"].version
    write_template(project_dir / "templates", "reminder.html", "<p>changed</p>")
    after = load_project([project_dir / "journey_specs"]).plans["cart"].version
    assert before != after


def test_broken_journey_has_no_plan(project_dir: Path) -> None:
    (project_dir / "journey_specs" / "bad.yaml").write_text(
        "journey: bad\ntrigger: {event: order.placed}\nsteps: [{id: a, wait: 1x}]\n"
    )
    project = load_project([project_dir / "journey_specs"])
    assert not project.ok and "bad" not in project.plans and "cart" in project.plans
    assert [d.code for d in project.diagnostics] == ["bad-duration"]


def test_lifecycle_file(project_dir: Path) -> None:
    (project_dir / "journey_specs" / "lifecycle.yaml").write_text(
        "lifecycle:\n  stages: [awareness, consideration, purchase, loyalty, advocacy]\n"
        "  initial: awareness\n  rules:\n    - {event: order.placed, stage: purchase}\n"
        "    - {event: order.placed, when: 'customer.orders_count >= 3', stage: loyalty}\n"
    )
    project = load_project([project_dir / "journey_specs"])
    assert project.ok
    assert project.lifecycle.rules == (
        StageRule("order.placed", "purchase"),
        StageRule("order.placed", "loyalty", "customer.orders_count >= 3"),
    )


def test_settings_file_is_read_and_validated(project_dir: Path) -> None:
    (project_dir / "journeys.yaml").write_text(
        "timezone: Asia/Seoul\nteams:\n  vip: {channel: console}\n"
    )
    project = load_project([project_dir / "journey_specs"])
    assert (
        project.ok and project.settings.timezone == "Asia/Seoul" and "vip" in project.settings.teams
    )
    assert project.plans["cart"].timezone == "Asia/Seoul"
    (project_dir / "journeys.yaml").write_text("timezone: Mars/Olympus\n")
    project = load_project([project_dir / "journey_specs"])
    assert [d.code for d in project.diagnostics] == ["bad-timezone"]


def test_missing_path_is_a_diagnostic(tmp_path: Path) -> None:
    project = load_project([tmp_path / "nope"])
    assert [d.code for d in project.diagnostics] == ["file-not-found"]


def test_single_file_and_duplicate_ids(project_dir: Path) -> None:
    specs = project_dir / "journey_specs"
    (specs / "copy.yaml").write_text(JOURNEY.format(jid="cart"))
    project = load_project([specs])
    assert [d.code for d in project.diagnostics] == ["duplicate-journey"]
    assert "cart" in project.plans  # the first definition stays
    single = load_project([specs / "cart.yaml"])
    assert single.ok and list(single.plans) == ["cart"]


def test_rule_crash_becomes_internal_error(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(ctx: object) -> list[Diagnostic]:
        raise RuntimeError("kaput")

    monkeypatch.setitem(registry.JOURNEY_RULES, "boom", boom)
    project = load_project([project_dir / "journey_specs" / "cart.yaml"])
    assert [d.code for d in project.diagnostics] == ["internal-error"]
    assert "kaput" in project.diagnostics[0].message and not project.plans


def test_rendering_and_sorting() -> None:
    diags = [Diagnostic("b.yaml", 1, 1, "m", "syntax"), Diagnostic("a.yaml", 2, 3, "x", "bad-id")]
    assert render_text(sorted(diags)) == "a.yaml:2:3: x [bad-id]\nb.yaml:1:1: m [syntax]\n"
    assert '"code": "bad-id"' in render_json(diags)


def test_examples_validate() -> None:
    """The example project (journey_specs/ + templates/) validates."""
    root = Path(__file__).resolve().parents[2]
    specs = root / "journey_specs"
    assert len(list(specs.glob("*.y*ml"))) >= 7
    project = load_project([specs], templates_dir=root / "templates")
    assert project.diagnostics == [], render_text(project.diagnostics)
    # The editor schema agrees with the validator on the examples.
    import json

    import jsonschema
    import yaml

    schema = json.loads((root / "docs" / "journey.schema.json").read_text("utf-8"))
    for path in sorted(specs.glob("*.yaml")):
        if path.name != "lifecycle.yaml":
            jsonschema.validate(yaml.safe_load(path.read_text("utf-8")), schema)


def test_spec_package_stays_light() -> None:
    """Parsing and validating must not pull in the database, Prefect or HTTP stacks."""
    import subprocess
    import sys

    code = (
        "import sys, journeys.spec, journeys.cli.spec_cmds\n"
        "heavy = [m for m in ('sqlalchemy', 'prefect', 'httpx', 'fastapi')"
        " if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
