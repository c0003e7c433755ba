"""``journeys validate --database`` reports customers in flight at removed steps."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from engine_helpers import DRIP, T0, event, open_service, run_until, write_project
from journeys.cli import _register, app


def test_validate_with_database_warns_about_removed_steps(tmp_path: Path, db_url: str) -> None:
    service = open_service(write_project(tmp_path / "v1", {"drip": DRIP}), db_url)
    service.ingest(
        [
            event(f"e{i}", "customer.signed_up", f"c-{i}", "2026-03-02T00:00:00Z", email="a@x.io")
            for i in range(3)
        ]
    )
    run_until(service, T0 + timedelta(hours=1))  # all three now wait at old_mail
    service.close()
    v2 = write_project(tmp_path / "v2", {"drip": DRIP.replace("old_mail", "new_mail")})
    assert v2.ok
    _register()
    specs = tmp_path / "v2" / "journey_specs"
    result = CliRunner().invoke(app, ["validate", str(specs), "--database", db_url])
    assert result.exit_code == 0, result.output
    assert "3 customers are in flight at step 'old_mail'" in result.output
    assert "[in-flight-step-removed]" in result.output
    clean = CliRunner().invoke(
        app, ["validate", str(tmp_path / "v1" / "journey_specs"), "--database", db_url]
    )
    assert "in-flight" not in clean.output


def test_validate_with_database_warns_about_removed_journeys(
    tmp_path: Path, sqlite_url: str
) -> None:
    service = open_service(write_project(tmp_path / "v1", {"drip": DRIP}), sqlite_url)
    service.ingest(
        [event("e1", "customer.signed_up", "c-1", "2026-03-02T00:00:00Z", email="a@x.io")]
    )
    run_until(service, T0 + timedelta(hours=1))
    service.close()
    other = DRIP.replace("journey: drip", "journey: other")
    write_project(tmp_path / "v2", {"other": other})
    _register()
    result = CliRunner().invoke(
        app, ["validate", str(tmp_path / "v2" / "journey_specs"), "--database", sqlite_url]
    )
    assert result.exit_code == 0, result.output
    assert "1 customer is still in journey 'drip'" in result.output
    assert "[in-flight-journey-removed]" in result.output
