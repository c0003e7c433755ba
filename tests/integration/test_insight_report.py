"""Every figure of the KPI report against values worked out by hand (tests/insight_data.py),
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from insight_data import APRIL, CART, MARCH, NOW, POST, build_shop
from journeys.insight.report import build_report, stored_plans
from journeys.insight.stats import csat, nps, predicted_clv, two_proportion_test
from journeys.insight.text import render_text

PLANS = {"cart": CART, "post": POST}


@pytest.fixture
def shop(db_engine: Engine) -> Engine:
    build_shop(db_engine)
    return db_engine


@pytest.fixture
def march(shop: Engine) -> dict[str, Any]:
    return build_report(shop, PLANS, start=MARCH, end=APRIL, now=NOW)


def test_period_and_survey_scores(march: dict[str, Any]) -> None:
    assert march["period"] == {
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-04-01T00:00:00Z",
        "bucket": "day",
    }
    k = march["kpis"]
    # NPS in March: 10, 9, 9 promoters, 7 passive, 5 detractor (February's 0 is outside):
    # (3 - 1) / 5 = 40 %.
    assert k["nps"] == 40.0
    # CSAT: 5, 4 satisfied of 5, 4, 3, 1 → 2 / 4.
    assert k["csat"] == 50.0
    assert k["answers"] == {"nps": 5, "csat": 4}
    assert march["journeys"]["post"]["nps"] == 40.0
    assert march["journeys"]["post"]["csat"] is None
    assert march["journeys"]["cart"]["csat"] == 50.0


def test_lifetime_value_retention_and_churn(march: dict[str, Any]) -> None:
    k = march["kpis"]
    # Customers with an order: 300, 100, 500, 50 → 950 / 4.
    assert k["clv"]["historic"] == 237.5
    assert k["clv"]["by_stage"] == {"purchase": 75.0, "loyalty": 400.0}
    # Ordered in February: c1, c2, c3, c6; of them again in March: c1, c3 → 2 / 4.
    assert k["retention_rate"] == 0.5
    assert k["churn_rate"] == 0.5
    assert k["customers_ordered_before"] == 4 and k["customers_retained"] == 2
    # March orders: 100 + 100 (c1) + 300 (c3); April's is outside.
    assert (k["orders"], k["revenue"]) == (3, 500.0)
    assert k["average_order_value"] == round(500 / 3, 2)
    # AOV 500/3 × 3 orders / 2 customers ÷ churn 0.5 = 500.
    assert k["clv"]["predicted"] == 500.0


def test_journey_funnel_and_live_positions(march: dict[str, Any]) -> None:
    cart = march["journeys"]["cart"]
    # Entered in March: enrollments 1, 2, 3, 4, 5, 7, 8 (6 entered in February).
    assert cart["entered"] == 7
    assert cart["completed"] == 4 and cart["active"] == 2
    assert cart["exited"] == {"order.placed": 1}
    assert cart["converted"] == 2
    assert cart["conversion_rate"] == round(2 / 7, 4)
    steps = cart["steps"]
    assert list(steps) == ["pause", "remind", "coupon", "coupon_a", "coupon_b", "wait_buy"]
    # pause ran for 1, 2, 3, 4, 5, 7; remind for 1 (twice: one enrollment), 2, 3, 7.
    assert [steps[s]["reached"] for s in ("pause", "remind", "coupon", "coupon_a")] == [6, 4, 4, 0]
    assert steps["pause"]["exited"] == 1
    # Enrollment 5 sleeps before `remind`, i.e. in the wait `pause`; 8 waits in `wait_buy`.
    assert (steps["pause"]["now"], steps["pause"]["waiting"]) == (1, 1)
    assert (steps["wait_buy"]["now"], steps["remind"]["now"]) == (1, 0)


def test_variants_against_the_control_group(march: dict[str, Any]) -> None:
    split = march["journeys"]["cart"]["variants"]["coupon"]
    assert split["baseline"] == "control"
    v = split["variants"]
    assert v["control"] == {"entered": 1, "converted": 0, "conversion_rate": 0.0, "baseline": True}
    assert (v["a"]["entered"], v["a"]["converted"], v["a"]["conversion_rate"]) == (2, 1, 0.5)
    assert (v["b"]["entered"], v["b"]["converted"], v["b"]["conversion_rate"]) == (1, 1, 1.0)
    # a vs control: pooled p = 1/3, variance 1/3 · 2/3 · (1/2 + 1) = 1/3, z = 0.5 / √(1/3).
    z = 0.5 / math.sqrt(1 / 3)
    assert v["a"]["uplift"] == 0.5
    assert v["a"]["z"] == round(z, 3)
    assert v["a"]["p_value"] == round(math.erfc(z / math.sqrt(2)), 4)
    assert v["a"]["significant"] is False
    # b vs control: pooled 1/2, variance 1/4 · 2 = 1/2, z = √2, p = erfc(1).
    assert v["b"]["p_value"] == round(math.erfc(1), 4)
    assert split["winner"] is None


def test_messages_and_email_rates(march: dict[str, Any]) -> None:
    t = march["messages"]["by_template"]
    reminder = t["cart_reminder"]
    # Four reminders in March; opened 1 (twice) and 2, clicked 1, bounced 3, unsubscribed 2.
    assert (reminder["sent"], reminder["opened"], reminder["clicked"]) == (4, 2, 1)
    assert (reminder["bounced"], reminder["unsubscribed"], reminder["delivered"]) == (1, 1, 1)
    # Rates over the delivered emails: 4 sent - 1 bounced = 3.
    assert reminder["open_rate"] == round(2 / 3, 4)
    assert reminder["click_rate"] == round(1 / 3, 4)
    assert reminder["unsubscribe_rate"] == round(1 / 3, 4)
    assert reminder["bounce_rate"] == 0.25
    # An open whose message id is not a number, and one without any, count for the
    # customer's latest email before them: message 5 (coupon_percent) and 7 (coupon_shipping).
    assert (t["coupon_percent"]["sent"], t["coupon_percent"]["failed"]) == (1, 1)
    assert t["coupon_percent"]["opened"] == 1 and t["coupon_percent"]["open_rate"] == 1.0
    assert t["coupon_shipping"]["opened"] == 1
    k = march["kpis"]
    # 6 emails sent, 1 bounced → 5; opened 4, clicked 1, unsubscribed 1.
    assert (k["open_rate"], k["click_rate"], k["unsubscribe_rate"]) == (0.8, 0.2, 0.2)
    assert march["journeys"]["cart"]["open_rate"] == 0.8
    assert march["journeys"]["cart"]["messages"]["cart_reminder"]["opened"] == 2


def test_stages_transitions_comments_and_trends(march: dict[str, Any]) -> None:
    assert march["stages"] == {"awareness": 1, "consideration": 1, "purchase": 2, "loyalty": 2}
    transitions = march["stage_transitions"]
    assert transitions["totals"] == {
        "purchase → loyalty": 2,
        "none → awareness": 1,
        "awareness → consideration": 1,
    }
    assert transitions["series"][0] == {
        "bucket": "2026-03-01",
        "from": "none",
        "to": "awareness",
        "count": 1,
    }
    voc = march["voc"]
    assert voc["comments"] == 3
    promoter = voc["by_category"]["promoter"]
    assert promoter["comments"] == 2
    assert promoter["sentiment"] == {"negative": 0, "neutral": 0, "positive": 2}
    assert {"keyword": "delivery", "count": 1} in promoter["keywords"]
    assert voc["by_category"]["detractor"]["keywords"][0] == {"keyword": "delivery", "count": 1}
    assert voc["latest"][0]["comment"] == "Late delivery and a damaged box"
    trends = march["trends"]
    by_day = {(r["bucket"], r["journey"]): r for r in trends["enrollments"]}
    assert by_day[("2026-03-04", "cart")] == {
        "bucket": "2026-03-04",
        "journey": "cart",
        "entered": 2,
        "converted": 1,
    }
    assert trends["nps"][0] == {
        "bucket": "2026-03-03",
        "answers": 1,
        "nps": 100.0,
        "promoter": 1.0,
        "passive": 0.0,
        "detractor": 0.0,
    }
    orders = {r["bucket"]: r for r in trends["orders"]}
    assert orders["2026-03-10"]["revenue"] == 300.0
    sent = [r for r in trends["messages"] if r["kind"] == "sent"]
    assert sum(r["count"] for r in sent) == 6
    text = render_text(march)
    assert "NPS +40.0" in text and "cart_reminder" in text and "split coupon" in text


def test_one_journey_and_weekly_buckets(shop: Engine) -> None:
    data = build_report(shop, PLANS, start=MARCH, end=APRIL, journey="cart", now=NOW)
    assert list(data["journeys"]) == ["cart"]
    assert data["kpis"]["nps"] is None  # the NPS answers belong to "post"
    assert data["kpis"]["csat"] == 50.0
    # Three months: weekly buckets, on Mondays. Orders on Thu 5, Tue 10, Fri 20 March and
    # Thu 2 April.
    quarter = build_report(shop, PLANS, start=MARCH, end=MARCH.replace(month=6), now=NOW)
    assert quarter["period"]["bucket"] == "week"
    weeks = {r["bucket"] for r in quarter["trends"]["orders"]}
    assert weeks == {"2026-03-02", "2026-03-09", "2026-03-16", "2026-03-30"}
    years = build_report(shop, PLANS, start=MARCH, end=MARCH.replace(year=2028), now=NOW)
    assert years["period"]["bucket"] == "month"
    assert {r["bucket"] for r in years["trends"]["orders"]} == {"2026-03-01", "2026-04-01"}


def test_without_bounds_the_report_covers_all_activity(shop: Engine) -> None:
    data = build_report(shop, stored_plans(shop), now=NOW)
    assert data["period"]["from"] == "2026-02-10T12:00:00Z"  # the first order
    assert data["journeys"]["cart"]["entered"] == 8
    assert set(stored_plans(shop)) == {"cart", "post"}


def test_an_empty_database_reports_no_data_not_zero(db_engine: Engine) -> None:
    data = build_report(db_engine, PLANS, now=NOW)
    k = data["kpis"]
    assert k["nps"] is None and k["retention_rate"] is None and k["clv"]["predicted"] is None
    assert data["journeys"]["cart"]["entered"] == 0
    assert (
        data["journeys"]["cart"]["conversion_rate"] == 0.0
        or data["journeys"]["cart"]["conversion_rate"] is None
    )


def test_formulas() -> None:
    assert nps({"promoter": 6, "passive": 2, "detractor": 2}) == 40.0
    assert nps({}) is None
    assert csat({"satisfied": 3, "neutral": 1}) == 75.0
    assert predicted_clv(10, 1000.0, 5, 0.25) == 800.0  # 100 × 2 ÷ 0.25
    assert predicted_clv(10, 1000.0, 5, 0.0) is None
    # 200/1000 vs 150/1000: pooled 0.175, se √(0.175 · 0.825 · 0.002) = 0.016993, z = 2.942.
    test = two_proportion_test(200, 1000, 150, 1000)
    assert test.uplift == 0.05 and test.relative_uplift == round(0.05 / 0.15, 4)
    assert test.z == 2.942
    assert test.p_value == 0.0033 and test.significant
    assert two_proportion_test(0, 10, 0, 10).p_value == 1.0
    assert two_proportion_test(1, 0, 1, 10).p_value is None


def test_cli_json_matches_the_report(tmp_path: Path) -> None:
    from journeys.store.db import create_engine, migrate

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = create_engine(url)
    migrate(engine)
    build_shop(engine)
    engine.dispose()
    root = Path(__file__).resolve().parents[2]
    base = [
        sys.executable,
        "-m",
        "journeys",
        "report",
        "--database",
        url,
        "--specs",
        str(root / "journey_specs"),
        "--templates",
        str(root / "templates"),
    ]
    run = subprocess.run(
        [*base, "--format", "json", "--from", "2026-03-01", "--to", "2026-03-31"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["kpis"]["nps"] == 40.0 and data["kpis"]["clv"]["predicted"] == 500.0
    assert data["journeys"]["cart"]["variants"]["coupon"]["variants"]["a"]["entered"] == 2
    page = subprocess.run(
        [*base, "--format", "html", "--out", str(tmp_path / "r.html"), "--no-analyse"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert page.returncode == 0, page.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "vegaEmbed" in html and "Cart recovery" in html
    bad = subprocess.run([*base, "--from", "March"], capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "--from 'March' is not a date or time; write e.g. 2026-03-01" in bad.stderr
    unknown = subprocess.run(
        [*base, "--journey", "nope"], capture_output=True, text=True, check=False
    )
    assert unknown.returncode == 1 and "--journey 'nope' is not a journey" in unknown.stderr


def test_a_report_does_not_hold_up_the_runner_on_sqlite(sqlite_url: str) -> None:
    """The report reads in a deferred transaction: a writer holding SQLite's write lock (the
    runner mid-batch) neither waits for it nor makes it wait."""
    from sqlalchemy import update

    from journeys.store.db import create_engine, migrate
    from journeys.store.tables import customers

    engine = create_engine(sqlite_url, sqlite_busy_timeout=0.2)
    migrate(engine)
    build_shop(engine)
    try:
        with engine.begin() as writer:  # BEGIN IMMEDIATE: the write lock, held
            writer.execute(update(customers).values(stage="loyalty"))
            data = build_report(engine, PLANS, start=MARCH, end=APRIL, now=NOW)
            assert data["kpis"]["nps"] == 40.0
    finally:
        engine.dispose()
