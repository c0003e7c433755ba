"""The spec commands: validate, schema, compile, graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_spec_support import write_template
from typer.testing import CliRunner

from journeys.cli import _register, app
from journeys.plan import Plan
from journeys.spec.schema import dumps, journey_schema

_register()
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
journey: cart
trigger: {event: cart.updated}
steps:
  - id: remind
    send: {template: reminder}
  - id: bought
    wait_for: {event: order.placed, within: 48h}
    on_event: end
    on_timeout: remind_again
  - id: remind_again
    send: {template: reminder}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "journey_specs").mkdir()
    (tmp_path / "journey_specs" / "cart.yaml").write_text(GOOD)
    write_template(tmp_path / "templates", "reminder.html")
    return tmp_path


def test_validate_ok(project: Path) -> None:
    result = runner.invoke(app, ["validate", str(project / "journey_specs")])
    assert result.exit_code == 0, result.output
    assert "1 journey OK" in result.stderr


def test_validate_errors_text_and_json(project: Path) -> None:
    bad = project / "journey_specs" / "bad.yaml"
    bad.write_text("journey: bad\ntrigger: {event: order.placed}\nsteps:\n  - {id: a, sned: {}}\n")
    result = runner.invoke(app, ["validate", str(project / "journey_specs")])
    assert result.exit_code == 1
    assert f"{bad}:4:13: unknown step type" in result.stdout
    assert "1 problem in 1 file" in result.stderr
    result = runner.invoke(app, ["validate", str(bad), "--format", "json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 1 and data[0]["code"] == "unknown-step-type"


def test_validate_garbage_never_tracebacks(project: Path) -> None:
    (project / "journey_specs" / "x.yaml").write_bytes(b"\x00\xff: [")
    result = runner.invoke(app, ["validate", str(project / "journey_specs")])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_templates_option(project: Path) -> None:
    result = runner.invoke(
        app, ["validate", str(project / "journey_specs"), "--templates", str(project / "nowhere")]
    )
    assert result.exit_code == 1 and "missing-template" in result.stdout


def test_schema_is_draft_2020_12_and_committed_copy_is_current() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    committed = ROOT / "docs" / "journey.schema.json"
    assert committed.read_text(encoding="utf-8") == dumps(journey_schema()), (
        "docs/journey.schema.json is stale: run `journeys schema > docs/journey.schema.json`"
    )
    for kind in ("lifecycle", "settings"):
        assert runner.invoke(app, ["schema", "--kind", kind]).exit_code == 0


def test_schema_accepts_a_valid_spec() -> None:
    import jsonschema
    import yaml

    jsonschema.validate(yaml.safe_load(GOOD), journey_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"journey": "x", "trigger": {"event": "a"}, "steps": [{"id": "a", "sned": {}}]},
            journey_schema(),
        )


def test_compile_writes_plans(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["compile", str(project / "journey_specs"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = Plan.from_json((out / "cart.plan.json").read_text())
    assert plan.journey == "cart" and plan.step("bought").targets() == ("end", "remind_again")
    assert json.loads((out / "lifecycle.json").read_text())["initial"] == "awareness"


def test_compile_refuses_invalid(project: Path, tmp_path: Path) -> None:
    (project / "journey_specs" / "bad.yaml").write_text("journey: bad\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["compile", str(project / "journey_specs"), "--out", str(out)])
    assert result.exit_code == 1 and not out.exists()


def test_graph_mermaid_svg_png(project: Path, tmp_path: Path) -> None:
    spec = str(project / "journey_specs" / "cart.yaml")
    result = runner.invoke(app, ["graph", spec])
    assert result.exit_code == 0 and result.stdout.startswith("flowchart TD")
    svg = tmp_path / "g.svg"
    assert runner.invoke(app, ["graph", spec, "--out", str(svg)]).exit_code == 0
    assert svg.read_text().startswith("<svg")
    png = tmp_path / "g.png"
    assert runner.invoke(app, ["graph", spec, "--out", str(png)]).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert runner.invoke(app, ["graph", spec, "--out", str(tmp_path / "g.gif")]).exit_code == 2


def test_graph_of_broken_spec(tmp_path: Path) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text("journey: x\n")
    result = runner.invoke(app, ["graph", str(spec)])
    assert result.exit_code == 1 and "missing-field" in result.stdout
