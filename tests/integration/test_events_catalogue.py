"""The event catalogue: well-known, declared and stored event types, and their data fields."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from engine_helpers import DRIP, event, open_service, write_project
from journeys.cli import _register, app
from journeys.sampledata import EVENT_TYPES
from journeys.spec import load_project
from journeys.spec.events import WELL_KNOWN, EventCatalogue

ROOT = Path(__file__).resolve().parents[2]


def test_declared_types_add_data_fields_to_well_known_ones() -> None:
    catalogue = EventCatalogue.build(
        {"product.viewed": {"sku": "string"}, "referral.sent": None}, stored=["legacy.thing"]
    )
    assert catalogue.knows("order.placed") and catalogue.data_fields("order.placed") is None
    assert catalogue.data_fields("product.viewed") == {"sku": "string"}
    assert catalogue.types["referral.sent"].origin == "declared"
    assert catalogue.types["legacy.thing"].origin == "stored"
    assert not catalogue.knows("order.placd")


def test_every_type_the_sample_data_and_the_runtime_produce_is_well_known() -> None:
    from journeys.runtime.lifecycle import STAGE_ENTERED
    from journeys.runtime.match import SUPPRESSING_EVENTS
    from journeys.runtime.records import CREATING_EVENTS

    produced = EVENT_TYPES | CREATING_EVENTS | set(SUPPRESSING_EVENTS) | {STAGE_ENTERED}
    assert produced - set(WELL_KNOWN) == set()


def test_the_example_project_declares_its_own_types() -> None:
    project = load_project([ROOT / "journey_specs"], templates_dir=ROOT / "templates")
    assert project.ok
    assert project.events.types["referral.sent"].origin == "declared"


def test_validate_accepts_types_the_database_has_stored(tmp_path: Path, sqlite_url: str) -> None:
    service = open_service(write_project(tmp_path / "v1", {"drip": DRIP}), sqlite_url)
    report = service.ingest(
        [
            event("e1", "customer.signed_up", "c-1", "2026-03-02T00:00:00Z"),
            event("e2", "loyalty.points", "c-1", "2026-03-02T00:00:00Z", points=5),
        ]
    )
    assert report.ok and report.accepted == 2
    service.close()
    specs = tmp_path / "v2" / "journey_specs"
    specs.mkdir(parents=True)
    (specs / "points.yaml").write_text(
        "journey: points\ntrigger: {event: loyalty.points}\nsteps:\n  - {id: bye, exit: done}\n"
    )
    _register()
    without = CliRunner().invoke(app, ["validate", str(specs)])
    assert without.exit_code == 1
    assert 'event type "loyalty.points" is not known' in without.output
    assert "[unknown-event]" in without.output
    with_db = CliRunner().invoke(app, ["validate", str(specs), "--db", sqlite_url])
    assert with_db.exit_code == 0, with_db.output
    typo = specs / "points.yaml"
    typo.write_text(typo.read_text().replace("loyalty.points", "loyalty.pionts"))
    result = CliRunner().invoke(app, ["validate", str(specs), "--db", sqlite_url])
    assert result.exit_code == 1
    assert 'did you mean "loyalty.points"?' in result.output
