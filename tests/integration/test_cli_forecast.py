"""``journeys forecast`` as a user runs it: on a SQLite file made by ``journeys import`` and
``journeys ingest`` with the live journey, a changed draft of it replayed on the history;
the database is left exactly as it was."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest

from engine_helpers import SIGNUP_WELCOME, WAIT_FOR_CART, journeys_cli

# T0 = 2026-03-02 00:00 UTC; the history is the week after it.
UNTIL = "2026-03-09T00:00:00Z"

LIVE = WAIT_FOR_CART.replace("steps:", 'quiet_hours: "21:00-09:00"\ntimezone: UTC\nsteps:')

LIFECYCLE = """
lifecycle:
  rules:
    - {event: cart.updated, stage: consideration}
    - {event: order.placed, stage: purchase}
"""

THANKS = """
journey: thanks
name: Thanks for the first order
trigger: {stage: purchase}
steps:
  - id: thank
    send: {template: hello}
"""

SETTINGS = """
consent: {missing: allow}
frequency_cap: {messages: 1, per: 1d}
"""

CUSTOMERS = """id,email,timezone
c-1,c1@example.com,UTC
c-2,c2@example.com,UTC
c-3,c3@example.com,UTC
c-4,c4@example.com,UTC
"""

EVENTS = [
    # c-1: a cart at 10:00, no order: reminded at 10:00 on 03-03 (both versions: 48h → 03-04).
    ("e1", "cart.updated", "c-1", "2026-03-02T10:00:00Z", {}),
    # c-2: orders within 24h: no reminder in either version.
    ("e2", "cart.updated", "c-2", "2026-03-02T11:00:00Z", {}),
    ("e3", "order.placed", "c-2", "2026-03-02T15:00:00Z", {"total": 40}),
    # c-3: a cart at 22:00: the 24h reminder falls in quiet hours and waits for 09:00 on
    # 03-04; with 48h it falls at 22:00 on 03-04 and waits for 09:00 on 03-05.
    ("e4", "cart.updated", "c-3", "2026-03-02T22:00:00Z", {}),
    # c-4: orders 30h after the cart: reminded at 24h live; the 48h draft sees the order first.
    ("e5", "cart.updated", "c-4", "2026-03-02T12:00:00Z", {}),
    ("e6", "order.placed", "c-4", "2026-03-03T18:00:00Z", {"total": 25}),
    # c-1 signs up on 03-04 at 08:00: welcome, then the draft's reminder at 10:00 is the
    # second message that day and the cap (1 a day) holds it back.
    ("e7", "customer.signed_up", "c-1", "2026-03-04T08:00:00Z", {}),
]


def journeys(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return journeys_cli(*args, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with the live cart journey and a SQLite history made by the CLI."""
    root = tmp_path_factory.mktemp("shop")
    (root / "journey_specs").mkdir()
    (root / "templates").mkdir()
    (root / "drafts").mkdir()
    (root / "journey_specs" / "cart.yaml").write_text(textwrap.dedent(LIVE), encoding="utf-8")
    (root / "journey_specs" / "welcome.yaml").write_text(SIGNUP_WELCOME, encoding="utf-8")
    (root / "journey_specs" / "lifecycle.yaml").write_text(LIFECYCLE, encoding="utf-8")
    (root / "drafts" / "thanks.yaml").write_text(THANKS, encoding="utf-8")
    (root / "journeys.yaml").write_text(SETTINGS, encoding="utf-8")
    (root / "templates" / "hello.html").write_text(
        "---\nsubject: Hi\n---\n<p>Hi {{ customer.id }}</p>\n", encoding="utf-8"
    )
    (root / "drafts" / "cart.yaml").write_text(LIVE.replace("24h", "48h"), encoding="utf-8")
    (root / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    lines = [
        json.dumps({"id": i, "type": t, "customer_id": c, "occurred_at": at, "data": d})
        for i, t, c, at, d in EVENTS
    ]
    (root / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for args in (("import", "customers", "customers.csv"), ("ingest", "events.jsonl")):
        done = journeys(*args, cwd=root)
        assert done.returncode == 0, done.stderr
    return root


def fingerprint(root: Path) -> tuple[str, dict[str, int]]:
    """The database file's bytes and every table's row count."""
    digest = hashlib.sha256((root / "j.db").read_bytes()).hexdigest()
    conn = sqlite3.connect(f"file:{root / 'j.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()
    return digest, counts


def forecast(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return journeys("forecast", *args, "--until", UNTIL, "--days", "7", cwd=root)


def test_a_changed_draft_is_forecast_against_the_live_version(shop: Path) -> None:
    before = fingerprint(shop)
    assert before[1]["enrollments"] == 5  # the live runner enrolled (4 carts + welcome)
    done = forecast(shop, "drafts/cart.yaml", "--format", "json", "--messages")
    assert done.returncode == 0, done.stderr
    assert fingerprint(shop) == before  # read only: same bytes, same rows
    data = json.loads(done.stdout)
    assert data["period"] == {
        "start": "2026-03-02T00:00:00Z",
        "until": "2026-03-09T00:00:00Z",
        "days": 7,
    }
    assert data["replayed"] == {"events": 7, "customers": 4}
    assert data["alongside"] == ["welcome"]  # under the same frequency cap
    spec, live = data["forecast"], data["live"]
    assert live["from"] == "database" and live["unchanged"] is False
    assert (spec["entered"], spec["customers"], live["entered"]) == (4, 4, 4)
    # Live (24h): c-1 at 10:00 on 03-03, c-4 at 12:00 on 03-03, c-3 waits for 09:00 03-04.
    assert [(m["customer_id"], m["at"], m["deferred_from"]) for m in live["list"]] == [
        ("c-1", "2026-03-03T10:00:00Z", None),
        ("c-4", "2026-03-03T12:00:00Z", None),
        ("c-3", "2026-03-04T09:00:00Z", "2026-03-03T22:00:00Z"),
    ]
    # Draft (48h): c-1's reminder on 03-04 10:00 is capped after the 08:00 welcome; c-4
    # ordered first; c-3 at 22:00 on 03-04 waits for 09:00 on 03-05.
    assert [(m["customer_id"], m["at"], m["outcome"]) for m in spec["list"]] == [
        ("c-1", "2026-03-04T10:00:00Z", "frequency_cap"),
        ("c-3", "2026-03-05T09:00:00Z", "messages"),
    ]
    assert spec["totals"] == {
        "messages": 1,
        "frequency_cap": 1,
        "suppressed": 0,
        "failed": 0,
        "quiet_hours": 1,
    }
    assert spec["exited"] == {"order.placed": 2} and live["exited"] == {"order.placed": 1}
    diff = data["difference"]
    assert (diff["messages"], diff["frequency_cap"], diff["quiet_hours"]) == (-2, 1, 0)
    assert diff["steps"]["remind"]["messages"] == -2
    (remind,) = spec["steps"]
    assert remind["per_day"] == {"2026-03-05": 1}
    assert remind["first"] == remind["last"] == "2026-03-05T09:00:00Z"


def test_the_text_report_puts_the_versions_side_by_side(shop: Path) -> None:
    done = forecast(shop, "drafts/cart.yaml")
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert ["messages", "going", "out", "1", "3", "-2"] in lines
    assert ["held", "back", "by", "the", "frequency", "cap", "1", "0", "+1"] in lines
    assert ["delayed", "by", "quiet", "hours", "1", "1", "0"] in lines
    assert "Compared with the live version" in done.stdout
    assert "Replayed 7 events of 4 customers" in done.stdout


def test_a_new_stage_journey_sees_customers_move_through_their_stages_again(
    shop: Path,
) -> None:
    """The database holds c-2 and c-4 in `purchase` and the stage.entered events the live
    runner emitted; the replay starts them in the stage they had before the period and emits
    its own stage changes (the stored ones are not replayed)."""
    done = forecast(shop, "drafts/thanks.yaml", "--format", "json", "--messages")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["replayed"]["events"] == 7
    assert data["live"] == {"version": None, "from": None, "unchanged": False}
    assert data["alongside"] == ["cart", "welcome"]
    spec = data["forecast"]
    assert (spec["entered"], spec["completed"]) == (2, 2)
    # c-2 at their order; c-4's thanks comes 6h after their cart reminder: capped.
    assert [(m["customer_id"], m["at"], m["outcome"]) for m in spec["list"]] == [
        ("c-2", "2026-03-02T15:00:00Z", "messages"),
        ("c-4", "2026-03-03T18:00:00Z", "frequency_cap"),
    ]
    assert "No live version of this journey" in forecast(shop, "drafts/thanks.yaml").stdout


def test_the_live_spec_itself_has_nothing_to_compare(shop: Path) -> None:
    done = forecast(shop, "journey_specs/cart.yaml", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["live"] == {
        "version": data["forecast"]["version"],
        "from": "database",
        "unchanged": True,
    }
    assert data["difference"] is None and data["forecast"]["totals"]["messages"] == 3


def test_a_bad_spec_gets_its_diagnostics_and_exit_1(shop: Path) -> None:
    bad = shop / "drafts" / "bad.yaml"
    bad.write_text(LIVE.replace("within: 24h", "within: soon"), encoding="utf-8")
    done = forecast(shop, "drafts/bad.yaml")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert first.startswith("drafts/bad.yaml:9:") and first.endswith("]")
    assert "nothing forecast" in done.stderr


def test_an_empty_history_says_so(shop: Path) -> None:
    done = journeys("forecast", "drafts/cart.yaml", "--until", "2026-01-01T00:00:00Z", cwd=shop)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        "no stored events from 2025-12-02T00:00:00Z to 2026-01-01T00:00:00Z in sqlite:///"
        in done.stderr
    )
    assert "nothing to replay (check --database, --days and --until)" in done.stderr


def test_a_missing_database_is_not_created(tmp_path: Path, shop: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nope' / 'j.db'}"
    done = journeys("forecast", "drafts/cart.yaml", "--database", url, cwd=shop)
    assert done.returncode == 2 and "has no journeys tables" in done.stderr
    assert not (tmp_path / "nope").exists()


def test_bad_arguments_are_one_line(shop: Path) -> None:
    missing = journeys("forecast", "drafts/none.yaml", cwd=shop)
    assert missing.returncode == 1 and "drafts/none.yaml: no such file" in missing.stderr
    when = journeys("forecast", "drafts/cart.yaml", "--until", "yesterday", cwd=shop)
    assert when.returncode == 1 and "--until 'yesterday' is not an ISO time" in when.stderr
    assert "Traceback" not in missing.stderr + when.stderr
