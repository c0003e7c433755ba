"""Event intake: /v1/events and Segment's tracking API with API keys, per-key rate limits, body
size limits and per-record errors; `journeys keys`; the OpenAPI document; health; staff guard."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends
from typer.testing import CliRunner

from journeys.cli import _register, app
from journeys.store.tables import api_keys, customers, events
from journeys.web.keys import create_key, revoke_key
from journeys.web.security import require_staff
from web_helpers import SECRET, WebEnv, add_customer, open_env


def _key(env: WebEnv, name: str = "crm", scope: str = "events") -> str:
    return create_key(env.service.db, name, scope, env.clock.now())


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _event(eid: str, cid: str = "c-1", etype: str = "cart.updated", **data: Any) -> dict[str, Any]:
    return {
        "id": eid,
        "type": etype,
        "customer_id": cid,
        "occurred_at": "2026-03-02T10:00:00Z",
        "data": data,
    }


def test_events_are_stored_and_bad_ones_listed_by_index(web_env_db: WebEnv) -> None:
    add_customer(web_env_db.service)
    key = _key(web_env_db)
    batch = [
        _event("e1", cart_total=30),
        {"id": "e2", "type": "cart.updated"},
        _event("e3", "ghost"),
        _event("e4", etype="order.placed"),
        _event("e5", etype="order.placed", total=12.5),
    ]
    response = web_env_db.client.post("/v1/events", json=batch, headers=_bearer(key))
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 2 and body["success"] is False
    assert [e["index"] for e in body["errors"]] == [1, 2, 3]
    assert "missing 'customer_id'" in body["errors"][0]["error"]
    assert "unknown customer 'ghost'" in body["errors"][1]["error"]
    assert "order.placed needs data.total" in body["errors"][2]["error"]
    assert {e["id"] for e in web_env_db.rows(events)} >= {"e1", "e5"}
    again = web_env_db.client.post("/v1/events", json=[batch[0], batch[4]], headers=_bearer(key))
    assert again.status_code == 200
    assert again.json() == {
        "success": True,
        "accepted": 0,
        "duplicates": 2,
        "skipped": 0,
        "errors": [],
    }


def test_events_body_must_be_a_json_array(web_env: WebEnv) -> None:
    key = _key(web_env)
    not_array = web_env.client.post("/v1/events", json={"id": "x"}, headers=_bearer(key))
    assert not_array.status_code == 400
    assert "JSON array" in not_array.json()["error"]
    broken = web_env.client.post("/v1/events", content=b'[{"id": "x",\n ]', headers=_bearer(key))
    assert broken.status_code == 400
    assert "at line 2 column" in broken.json()["error"]


def test_api_keys_bearer_basic_revoked_and_wrong_scope(web_env_db: WebEnv) -> None:
    key = _key(web_env_db)
    staff = _key(web_env_db, "boss", "staff")
    basic = base64.b64encode(f"{key}:".encode()).decode()
    ok = [
        web_env_db.client.post("/v1/events", json=[], headers=_bearer(key)),
        web_env_db.client.post("/v1/events", json=[], headers={"Authorization": f"Basic {basic}"}),
    ]
    assert [r.status_code for r in ok] == [200, 200]
    refused = [
        web_env_db.client.post("/v1/events", json=[]),
        web_env_db.client.post("/v1/events", json=[], headers=_bearer(key + "x")),
        web_env_db.client.post("/v1/events", json=[], headers=_bearer("jk_0000000000_" + "a" * 43)),
        web_env_db.client.post("/v1/events", json=[], headers=_bearer(staff)),
        web_env_db.client.post("/v1/track", json={}, headers={"Authorization": "Basic %%%"}),
    ]
    assert [r.status_code for r in refused] == [401] * 5
    assert "WWW-Authenticate" in refused[0].headers
    revoke_key(web_env_db.service.db, "crm", web_env_db.clock.now())
    assert web_env_db.client.post("/v1/events", json=[], headers=_bearer(key)).status_code == 401
    (row,) = web_env_db.rows(api_keys, api_keys.c.name == "crm")
    assert row["last_used_at"] is not None
    assert key not in json.dumps(
        [{k: str(v) for k, v in r.items()} for r in web_env_db.rows(api_keys)]
    )


def test_a_burst_over_the_rate_limit_gets_429_with_retry_after(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", SECRET)
    ticks = [0.0]
    env = open_env(
        tmp_path / "p",
        sqlite_url,
        "web: {rate_limit: {requests: 5, per: 1m}}\n",
        rate_clock=lambda: ticks[0],
    )
    try:
        key, other = _key(env), _key(env, "other")
        codes = [
            env.client.post("/v1/events", json=[], headers=_bearer(key)).status_code
            for _ in range(8)
        ]
        assert codes == [200] * 5 + [429] * 3
        limited = env.client.post("/v1/events", json=[], headers=_bearer(key))
        assert limited.headers["Retry-After"] == "12"  # one request per 12 s
        assert env.client.post("/v1/events", json=[], headers=_bearer(other)).status_code == 200
        ticks[0] += 12
        assert env.client.post("/v1/events", json=[], headers=_bearer(key)).status_code == 200
        assert env.client.post("/v1/events", json=[], headers=_bearer(key)).status_code == 429
    finally:
        env.client.close()
        env.service.close()


def test_oversize_bodies_get_413_declared_or_streamed(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", SECRET)
    env = open_env(tmp_path / "p", sqlite_url, "web: {max_body_kb: 1}\n")
    try:
        key = _key(env)
        add_customer(env.service)
        big = [_event(f"e{i}", cart_total=i) for i in range(40)]
        declared = env.client.post("/v1/events", json=big, headers=_bearer(key))
        assert declared.status_code == 413

        def chunks() -> Iterator[bytes]:
            data = json.dumps(big).encode()
            for start in range(0, len(data), 256):
                yield data[start : start + 256]

        streamed = env.client.post("/v1/events", content=chunks(), headers=_bearer(key))
        assert streamed.status_code == 413
        assert env.rows(events) == []
        small = env.client.post("/v1/events", json=big[:2], headers=_bearer(key))
        assert small.status_code == 200
    finally:
        env.client.close()
        env.service.close()


def test_segment_track_identify_page_and_batch(web_env: WebEnv) -> None:
    key = _key(web_env)
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    identify = {
        "type": "identify",
        "userId": "u-7",
        "messageId": "m-1",
        "traits": {"email": "u7@example.com", "firstName": "Yuna", "plan": "pro",
                   "birthday": "1990-05-01T00:00:00.000Z"},
        "context": {"locale": "ko-KR", "timezone": "Asia/Seoul"},
        "timestamp": "2026-03-02T09:00:00.000Z",
    }  # fmt: skip
    assert web_env.client.post("/v1/identify", json=identify, headers=basic).status_code == 200
    track = {
        "userId": "u-7",
        "event": "Order Completed",
        "messageId": "m-2",
        "properties": {"order_id": "o-9", "total": 45000, "currency": "KRW"},
        "timestamp": "2026-03-02T09:05:00Z",
    }
    assert web_env.client.post("/v1/track", json=track, headers=basic).status_code == 200
    # Sent again: the event and the user's implied customer.updated are both known already.
    assert web_env.client.post("/v1/track", json=track, headers=basic).json()["duplicates"] == 2
    batch = {
        "batch": [
            {"type": "track", "userId": "u-7", "event": "Product Viewed", "messageId": "m-3",
             "properties": {"sku": "A1"}},
            {"type": "page", "userId": "u-7", "name": "Pricing", "messageId": "m-4"},
            {"type": "track", "anonymousId": "anon-1", "event": "Product Viewed"},
            {"type": "group", "userId": "u-7", "groupId": "g-1"},
            {"type": "track", "userId": "u-7"},
            {"userId": "u-7", "event": "No type"},
        ],
        "context": {"library": {"name": "analytics-python"}},
    }  # fmt: skip
    response = web_env.client.post("/v1/batch", json=batch, headers=basic)
    assert response.status_code == 400
    body = response.json()
    assert (body["accepted"], body["skipped"]) == (2, 2)
    assert [(e["index"], e["error"]) for e in body["errors"]] == [
        (4, "a track message needs 'event' (the event name)"),
        (5, "each batch message needs a 'type' (track, identify, …)"),
    ]
    stored = {e["id"]: e for e in web_env.rows(events)}
    assert stored["m-2"]["type"] == "order.placed"
    assert stored["m-2"]["data"]["total"] == 45000
    assert stored["m-3"]["type"] == "product.viewed"
    assert stored["m-4"]["type"] == "page.viewed" and stored["m-4"]["data"]["name"] == "Pricing"
    web_env.tick()
    (person,) = web_env.rows(customers, customers.c.id == "u-7")
    assert (person["email"], person["first_name"], person["locale"], person["timezone"]) == (
        "u7@example.com",
        "Yuna",
        "ko-KR",
        "Asia/Seoul",
    )
    assert person["birthday"] == "1990-05-01"
    assert person["attributes"]["plan"] == "pro"
    assert person["orders_count"] == 1


def test_openapi_documents_the_endpoints(web_env: WebEnv) -> None:
    spec = web_env.client.get("/openapi.json").json()
    for path in (
        "/v1/events",
        "/v1/track",
        "/v1/identify",
        "/v1/batch",
        "/healthz",
        "/survey",
        "/unsubscribe/{token}",
        "/webhooks/sendgrid",
        "/webhooks/twilio",
    ):
        assert path in spec["paths"], path  # fmt: skip
    events_body = spec["paths"]["/v1/events"]["post"]["requestBody"]
    assert events_body["content"]["application/json"]["schema"]["type"] == "array"
    assert "/" not in spec["paths"]  # the dashboard's


def test_healthz_answers_200_and_503_when_the_database_does_not(
    web_env: WebEnv, sqlite_url: str
) -> None:
    assert web_env.client.get("/healthz").json() == {"status": "ok"}
    # The database file is replaced by something that is not a database.
    web_env.service.db.dispose()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    path.write_bytes(b"not a database " * 100)
    response = web_env.client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "database unavailable"}


def test_staff_guard_is_open_locally_and_needs_a_staff_key_otherwise(web_env: WebEnv) -> None:
    @web_env.app.get("/staff-only", dependencies=[Depends(require_staff)])
    def staff_only() -> dict[str, str]:
        return {"ok": "yes"}

    client = web_env.client
    assert client.get("/staff-only").status_code == 200  # from this machine
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    assert client.get("/staff-only", headers=proxied).status_code == 401
    browser = client.get(
        "/staff-only", headers={**proxied, "Accept": "text/html"}, follow_redirects=False
    )
    assert browser.status_code == 303
    assert browser.headers["Location"] == "/staff/login?next=/staff-only"
    staff, events_key = _key(web_env, "boss", "staff"), _key(web_env)
    assert client.get("/staff-only", headers={**proxied, **_bearer(staff)}).status_code == 200
    assert client.get("/staff-only", headers={**proxied, **_bearer(events_key)}).status_code == 401

    login = client.get("/staff/login?next=/staff-only", headers=proxied)
    csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
    wrong = client.post(
        "/staff/login",
        data={"key": events_key, "csrf": csrf, "next": "/staff-only"},
        headers=proxied,
    )
    assert wrong.status_code == 401 and "not a valid staff key" in wrong.text
    opened = client.post(
        "/staff/login",
        data={"key": staff, "csrf": csrf, "next": "//evil.example/"},
        headers=proxied,
        follow_redirects=False,
    )
    assert opened.status_code == 303 and opened.headers["Location"] == "/"
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/staff-only", headers=proxied).status_code == 200
    revoke_key(web_env.service.db, "boss", web_env.clock.now())
    assert client.get("/staff-only", headers=proxied).status_code == 401


def test_keys_commands(tmp_path: Path) -> None:
    _register()
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'k.db'}"
    created = runner.invoke(app, ["keys", "create", "segment", "--database", url])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("jk_")
    duplicate = runner.invoke(app, ["keys", "create", "segment", "--database", url])
    assert duplicate.exit_code == 1 and "exists" in duplicate.output
    staff = runner.invoke(app, ["keys", "create", "ops", "--scope", "staff", "--database", url])
    assert staff.exit_code == 0
    bad = runner.invoke(app, ["keys", "create", "x", "--scope", "root", "--database", url])
    assert bad.exit_code == 1 and "scope 'root'" in bad.output
    listed = runner.invoke(app, ["keys", "list", "--json", "--database", url])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["scope"], r["revoked_at"]) for r in rows] == [
        ("segment", "events", None),
        ("ops", "staff", None),
    ]
    secret = key.split("_", 2)[2]  # the secret itself may contain "_" (base64url)
    assert key not in listed.stdout and secret not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", "segment", "--database", url]).exit_code == 0
    again = runner.invoke(app, ["keys", "revoke", "segment", "--database", url])
    assert again.exit_code == 1 and "no active key" in again.output
