"""The runtime commands as a user runs them: clear errors, no tracebacks, idempotent files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine_helpers import journeys_cli

ROOT = Path(__file__).resolve().parents[2]

CUSTOMERS_CSV = """id,email,first_name,locale,timezone,birthday,email_opt_in,vip_level
c-1,mina@example.com,Mina,ko,Asia/Seoul,1992-03-05,true,gold
c-2,leo@example.com,Leo,en,America/New_York,1990-07-01,true,
c-3,bad-email,Bad,en,UTC,,true,
c-4,zed@example.com,Zed,en,Mars/Base,,true,
"""

EVENTS = [
    {
        "id": "e1",
        "type": "cart.updated",
        "customer_id": "c-1",
        "occurred_at": "2026-03-02T01:00:00Z",
        "data": {"cart_total": 80},
    },
    {
        "id": "e2",
        "type": "cart.updated",
        "customer_id": "ghost",
        "occurred_at": "2026-03-02T01:00:00Z",
        "data": {"cart_total": 80},
    },
    {
        "id": "e3",
        "type": "order.placed",
        "customer_id": "c-2",
        "occurred_at": "2026-03-02T02:00:00Z",
        "data": {"total": 12.5, "order_id": "o-1"},
    },
]


def journeys(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return journeys_cli(*args, cwd=cwd)


def write_inputs(tmp: Path) -> tuple[Path, Path]:
    (tmp / "customers.csv").write_text(CUSTOMERS_CSV, encoding="utf-8")
    lines = [json.dumps(e) for e in EVENTS]
    lines.insert(1, '{"id": "broken", ')
    (tmp / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp / "customers.csv", tmp / "events.jsonl"


def specs_args() -> list[str]:
    return ["--specs", str(ROOT / "journey_specs"), "--templates", str(ROOT / "templates")]


def test_import_and_ingest_report_bad_records_by_line_and_keep_good_ones(tmp_path: Path) -> None:
    customers, events = write_inputs(tmp_path)
    # A Latin-1 line in each file: one bad record, not a traceback that stops the file.
    customers_n = len(customers.read_bytes().splitlines()) + 1
    events_n = len(events.read_bytes().splitlines()) + 1
    with customers.open("ab") as handle:
        handle.write("c-latin,j\xe9r\xf4me@example.com\n".encode("latin-1"))
    with events.open("ab") as handle:
        handle.write('{"id": "caf\xe9", "type": "x"}\n'.encode("latin-1"))
    first = journeys("import", "customers", str(customers), *specs_args(), cwd=tmp_path)
    assert first.returncode == 1
    assert "Traceback" not in first.stderr
    assert "customers.csv:4: 'email' 'bad-email' is not an email address" in first.stderr
    assert "customers.csv:5: 'timezone' 'Mars/Base' is not an IANA time zone" in first.stderr
    assert f"customers.csv:{customers_n}: not UTF-8 text: save the file as UTF-8" in first.stderr
    assert "2 customers stored" in first.stderr

    again = journeys("import", "customers", str(customers), *specs_args(), cwd=tmp_path)
    assert "0 customers stored" in again.stderr and "2 unchanged" in again.stderr

    ingest = journeys("ingest", str(events), *specs_args(), cwd=tmp_path)
    assert ingest.returncode == 1 and "Traceback" not in ingest.stderr
    assert "events.jsonl:2: not valid JSON" in ingest.stderr
    assert "events.jsonl:3: unknown customer 'ghost'" in ingest.stderr
    assert f"events.jsonl:{events_n}: not UTF-8 text: save the file as UTF-8" in ingest.stderr
    assert "2 events stored, 0 duplicates" in ingest.stderr

    twice = journeys("ingest", str(events), *specs_args(), cwd=tmp_path)
    assert "0 events stored, 2 duplicates" in twice.stderr

    report = journeys("report", "--json", *specs_args(), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["journeys"]["abandoned-cart"]["entered"] == 1
    assert data["stages"]["purchase"] == 1


def simulate(
    cwd: Path, customers: Path, events: Path, *extra: str, start: str = "2026-03-02T00:00:00Z"
) -> subprocess.CompletedProcess[str]:
    """``journeys simulate`` on these files from ``start`` to 2026-03-06."""
    return journeys(
        "simulate",
        "--customers",
        str(customers),
        "--events",
        str(events),
        "--start",
        start,
        "--until",
        "2026-03-06T00:00:00Z",
        *extra,
        *specs_args(),
        cwd=cwd,
    )


def test_simulate_prints_the_contract_and_leaves_no_database(tmp_path: Path) -> None:
    customers, events = write_inputs(tmp_path)
    result = simulate(tmp_path, customers, events, "--json")
    # The inputs hold bad records: reported, the run goes on with the rest, exit status 1.
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"messages", "enrollments", "customers"}
    reminder = [m for m in data["messages"] if m["step"] == "remind"]
    assert reminder and reminder[0]["customer_id"] == "c-1"
    assert set(reminder[0]) == {"customer_id", "journey", "step", "template", "channel", "at"}
    assert reminder[0]["at"].endswith("Z")
    assert "events.jsonl:3: unknown customer 'ghost'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "events.jsonl"]

    text = simulate(tmp_path, customers, events)
    assert "abandoned-cart.remind" in text.stdout and "enters" in text.stdout
    assert text.returncode == 1


def test_bad_times_and_missing_files_are_clear(tmp_path: Path) -> None:
    customers, events = write_inputs(tmp_path)
    result = simulate(tmp_path, customers, events, start="yesterday")
    assert result.returncode == 1 and "--start 'yesterday' is not an ISO time" in result.stderr
    missing = journeys("ingest", "nope.jsonl", *specs_args(), cwd=tmp_path)
    assert missing.returncode == 1 and "nope.jsonl: no such file" in missing.stderr
    assert "Traceback" not in result.stderr + missing.stderr


def test_run_once_and_journeys_test(tmp_path: Path) -> None:
    customers, _events = write_inputs(tmp_path)
    journeys("import", "customers", str(customers), *specs_args(), cwd=tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "batch.jsonl").write_text(json.dumps(EVENTS[0]) + "\n", encoding="utf-8")
    (inbox / "a-folder.jsonl").mkdir()  # unreadable as a file: set aside, the pass goes on
    once = journeys("run", "--once", "--inbox", str(inbox), *specs_args(), cwd=tmp_path)
    assert once.returncode == 0, once.stderr
    assert "ingested 1" in once.stderr
    assert (inbox / "done" / "batch.jsonl").exists()
    assert (inbox / "failed" / "a-folder.jsonl").is_dir()
    assert "a-folder.jsonl: cannot read it" in once.stderr

    scenarios = journeys(
        "test", str(ROOT / "tests" / "scenarios" / "birthday.yaml"), *specs_args(), cwd=tmp_path
    )
    assert scenarios.returncode == 0, scenarios.stderr
    assert " passed, 0 failed" in scenarios.stderr


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_run_stops_cleanly_on_ctrl_c_and_sigterm(tmp_path: Path, stop: str) -> None:
    import signal
    import time

    env = {**os.environ, "JOURNEYS_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "journeys", "run", "--no-web", "--interval", "0.5", *specs_args()],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "running 7 journeys" in first
    time.sleep(1.5)  # a few passes
    proc.send_signal(getattr(signal, stop))
    try:
        rest = proc.communicate(timeout=30)[1]
    finally:
        proc.kill()
    assert proc.returncode == 0, rest
    assert "journeys: stopped" in rest and "Traceback" not in rest


def test_a_wrong_database_is_a_clear_error_not_a_traceback_nor_a_new_database(
    tmp_path: Path,
) -> None:
    typo = tmp_path / "typo" / "journeys.db"
    report = journeys("report", "--database", f"sqlite:///{typo}", *specs_args(), cwd=tmp_path)
    assert report.returncode == 2 and "Traceback" not in report.stderr
    assert "has no journeys tables: check --database / JOURNEYS_DATABASE_URL" in report.stderr
    assert not typo.parent.exists()  # nothing created on a typo

    for url, says in [
        ("nope://x", "'nope://x' is not a database URL"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/x", "cannot open postgresql+psycopg://"),
    ]:
        run = journeys("ingest", str(tmp_path / "none.jsonl"), "--database", url, cwd=tmp_path)
        assert run.returncode in (1, 2) and "Traceback" not in run.stderr, run.stderr
        (tmp_path / "e.jsonl").write_text(json.dumps(EVENTS[0]) + "\n", encoding="utf-8")
        run = journeys(
            "ingest", str(tmp_path / "e.jsonl"), "--database", url, *specs_args(), cwd=tmp_path
        )
        assert run.returncode == 2 and says in run.stderr and "Traceback" not in run.stderr
