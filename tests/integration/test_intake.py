"""Hostile records: each is one error line naming the record, and every good record is kept.

They run through the real commands on SQLite and PostgreSQL (``db_url``), where an oversized
value is a hard error (``StringDataRightTruncation``) instead of SQLite's silent acceptance.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from engine_helpers import write_project
from journeys.cli import _register, app
from journeys.intake import BoundsError, check_event, date_problem
from journeys.runtime.records import RecordError, normalise_customer, normalise_event
from journeys.service import BadLine, parse_json_lines, read_records
from journeys.store.tables import customers, events

ANNIVERSARY = """
journey: anniversary
trigger: {date: customer.first_purchase_day, at: "10:00"}
steps:
  - {id: hello, send: {template: hello}}
"""

GOOD_EVENT = {"type": "customer.signed_up", "occurred_at": "2026-03-02T00:00:00Z", "data": {}}


def csv_file(tmp_path: Path) -> Path:
    rows = [
        "id,email,orders_count,birthday,first_purchase_day,note",  # 1
        "c-1,a@example.com,3,1990-03-05,2020-05-01,fine",  # 2
        "c-2,b@example.com,1,,," + "x" * 140_000,  # 3: a field over the CSV limit
        "c-3,c@example.com,99999999999999999999999,,,",  # 4: beyond INTEGER
        "c-4," + "e" * 400 + "@example.com,1,,,",  # 5: over the email column
        'c-5,d@example.com,2,,,"two',  # 6: a value with a line break …
        'lines"',  # 7: … that the next record's line number accounts for
        "c-6,f@example.com,1,2025-02-30,,",  # 8: not a real date
        "c-7,g@example.com,1,,03/05/2025,",  # 9: a date trigger field that is not a date
        "c-8,h@example.com,1,19900305,,",  # 10: birthday not YYYY-MM-DD
        "c-9,i@example.com,1,,,last",  # 11
    ]
    path = tmp_path / "customers.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def jsonl_file(tmp_path: Path) -> Path:
    def ev(eid: str, **changes: object) -> str:
        return json.dumps({"id": eid, "customer_id": "c-1", **GOOD_EVENT, **changes})

    lines = [
        ev("e1"),  # 1
        ev("e2", type=42),  # 2
        ev("e3", type="order\u0000placed"),  # 3
        ev("e4", type="x" * 100_000),  # 4
        ev("e5", occurred_at="0001-01-01T00:00:00+14:00"),  # 5
        "[" * 100_000 + "]" * 100_000,  # 6
        ev("e7", data={"n": 99999999999999999999999}),  # 7
        ev("e8", type="customer.updated", data={"first_purchase_day": "03/05/2025"}),  # 8
        ev("e9", data={"deep": json.loads("[" * 60 + "]" * 60)}),  # 9
        ev("e10", data={"text": "nul\u0000"}),  # 10
        ev("e" * 300),  # 11
        '{"id": "e12", "customer_id": "c-1", "type": "cart.updated", "occurred_at": '
        '"2026-03-02T00:00:00Z", "data": {"x": NaN}}',  # 12
        ev("e13", customer_id="c" * 200),  # 13
        "1" * 5000,  # 14: an integer Python refuses to read
        ev("e15", type="customer.updated", data={"first_purchase_day": "2020-05-01"}),  # 15
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    write_project(tmp_path / "p", {"anniversary": ANNIVERSARY})
    return tmp_path / "p"


def run(*args: str) -> object:
    _register()
    return CliRunner().invoke(app, list(args))


def test_import_and_ingest_keep_good_records_and_name_each_bad_one(
    tmp_path: Path, project_dir: Path, db_url: str
) -> None:
    specs = ["--specs", str(project_dir / "journey_specs"), "--database", db_url]
    path = csv_file(tmp_path)
    result = run("import", "customers", str(path), *specs)
    assert result.exit_code == 1
    out = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), out
    expected = {
        3: "not a CSV row: field larger than field limit (131072)",
        4: "'orders_count' '99999999999999999999999' is larger than 2,147,483,647",
        5: "'email' is 412 characters; the limit is 320",
        8: "'birthday' '2025-02-30' is not a real date",
        9: "'first_purchase_day' '03/05/2025' is not a date; write YYYY-MM-DD (e.g. 1990-03-05)"
        " (a date trigger reads it)",
        10: "'birthday' '19900305' is not a date",
    }
    for line, message in expected.items():
        assert f"{path}:{line}: {message}" in out, out
    assert "3 customers stored" in out and "6 bad records" in out
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(customers.c.id, customers.c.attributes)).all())
    engine.dispose()
    assert sorted(stored) == ["c-1", "c-5", "c-9"]
    assert stored["c-5"]["note"] == "two\nlines"

    events_path = jsonl_file(tmp_path)
    result = run("ingest", str(events_path), *specs)
    assert result.exit_code == 1
    out = result.output
    expected = {
        2: "'type' must be text like order.placed, got 42",
        3: "'type' 'order\\x00placed' must be letters, digits and . _ - : / (no spaces)",
        4: "'type' is 100000 characters; the limit is 120",
        5: "'occurred_at' '0001-01-01T00:00:00+14:00' is out of range once moved to UTC",
        6: "JSON nested too deeply",
        7: "'data.n' 99999999999999999999999 is beyond the 64-bit integer range",
        8: "in data: 'first_purchase_day' '03/05/2025' is not a date",
        9: "'data.deep[0][0]",
        10: "'data.text' contains a NUL or an unpaired surrogate character",
        11: "'id' is 300 characters; the limit is 200",
        12: "'data.x' must be a finite number, got nan",
        13: "'customer_id' is 200 characters; the limit is 128",
        14: "not valid JSON: Exceeds the limit (4300 digits)",
    }
    for line, message in expected.items():
        assert f"{events_path}:{line}: {message}" in out, out
    assert "2 events stored" in out
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert sorted(conn.execute(select(events.c.id)).scalars()) == ["e1", "e15"]
    engine.dispose()


def test_simulate_reports_the_same_records_and_runs_on_the_good_ones(
    tmp_path: Path, project_dir: Path
) -> None:
    result = run(
        "simulate",
        "--customers",
        str(csv_file(tmp_path)),
        "--events",
        str(jsonl_file(tmp_path)),
        "--start",
        "2026-03-02T00:00:00Z",
        "--until",
        "2026-03-03T00:00:00Z",
        "--json",
        "--specs",
        str(project_dir / "journey_specs"),
    )
    assert result.exit_code == 1
    assert "customers.csv:3: not a CSV row" in result.output
    assert "events.jsonl:6: JSON nested too deeply" in result.output
    assert "Traceback" not in result.output


def test_line_numbers_survive_blank_lines_and_multi_line_values(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('id,note\n\nc-1,"a\nb\nc"\n\nc-2,x\n', encoding="utf-8")
    records = list(read_records(path))
    numbered = {i + 1: r for i, r in enumerate(records) if r is not None}
    assert numbered == {3: {"id": "c-1", "note": "a\nb\nc"}, 7: {"id": "c-2", "note": "x"}}


@pytest.mark.parametrize(
    "record",
    [
        {"id": "c", "orders_count": "1" * 6000},
        {"id": "c", "last_order_at": "9999-12-31T23:00:00-05:00"},
        {"id": "c", "vip": json.loads("[" * 40 + "1" + "]" * 40)},
        {"id": "c" * 129},
        {"id": "c", "first_name": "\ud800"},
    ],
)
def test_customer_records_beyond_the_store_are_refused(record: dict[str, object]) -> None:
    with pytest.raises(RecordError):
        normalise_customer(record)


def test_event_type_checks_and_short_messages() -> None:
    with pytest.raises(BoundsError, match="the limit is 120"):
        check_event({"type": "a" * 121})
    with pytest.raises(RecordError) as caught:
        normalise_event({"id": "e", "customer_id": "c", "occurred_at": "x" * 10_000, "type": "a"})
    assert len(str(caught.value)) < 300  # the value is quoted shortened, not 10,000 characters
    assert date_problem("2024-02-29", "d") is None
    assert date_problem("2024-02-29T10:00:00Z", "d") is None
    assert date_problem(20240229, "d") is not None


def test_parse_json_lines_never_raises() -> None:
    lines = ["{}", "[" * 50_000, "9" * 10_000, "x" * 2_000_000, '"\\ud800"']
    found = list(parse_json_lines(lines))
    assert found[0] == {}
    assert all(isinstance(r, BadLine) for r in found[1:4])
