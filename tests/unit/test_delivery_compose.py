"""Consent, recipients, locale filters, partials and email composition (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from journeys.delivery.consent import may_send, opt_in
from journeys.delivery.email import Composer, ad_prefix, email_headers
from journeys.delivery.layout import derive_text
from journeys.delivery.recipients import NoAddress, e164, locale_territory, recipient
from journeys.expressions import ENV
from journeys.settings import Settings
from journeys.templates import TemplateError, TemplateStore

EXAMPLES = Path(__file__).resolve().parents[2] / "templates"
NOW = datetime(2026, 3, 2, tzinfo=UTC)
SETTINGS = Settings(
    sender_email="shop@example.com",
    sender_name="Example Shop",
    sender_address="1 Main St, Springfield",
    list_unsubscribe_mailto="unsubscribe@example.com",
)


# ---------------------------------------------------------------------------------- consent


@pytest.mark.parametrize(
    ("profile", "missing", "expected"),
    [
        ({"email_opt_in": True}, "deny", None),
        ({"email_opt_in": False}, "allow", "no consent (email_opt_in is false)"),
        ({}, "deny", "no consent (email_opt_in not given; consent.missing is deny)"),
        (
            {"email_opt_in": None},
            "deny",
            "no consent (email_opt_in not given; consent.missing is deny)",
        ),
        ({}, "allow", None),
        ({"attributes": {"email_opt_in": "yes"}}, "deny", None),
        ({"attributes": {"email_opt_in": "0"}}, "allow", "no consent (email_opt_in is false)"),
    ],
)
def test_marketing_needs_opt_in(
    profile: dict[str, Any], missing: str, expected: str | None
) -> None:
    settings = Settings(consent_missing=missing)  # type: ignore[arg-type]
    assert may_send(profile, "email", "marketing", settings, None) == expected


def test_sms_consent_is_its_own_field() -> None:
    settings = Settings()
    both = {"email_opt_in": True, "attributes": {"sms_opt_in": "false"}}
    assert may_send(both, "email", "marketing", settings, None) is None
    assert may_send(both, "sms", "marketing", settings, None) == "no consent (sms_opt_in is false)"
    assert opt_in({"sms_opt_in": 1}, "sms") is True
    assert opt_in({"sms_opt_in": "maybe"}, "sms") is None


def test_suppressed_addresses_get_nothing_marketing() -> None:
    opted = {"email_opt_in": True}
    for reason in ("unsubscribed", "bounced", "complaint", "erased"):
        got = may_send(opted, "email", "marketing", Settings(), reason)
        assert got == f"suppressed: email address {reason}"
    assert may_send(opted, "email", "marketing", Settings(), True) == (
        "suppressed: email address unsubscribed"
    )


def test_transactional_ignores_opt_in_but_not_hard_bounces() -> None:
    nobody = {"email_opt_in": False}
    assert may_send(nobody, "email", "transactional", Settings(), None) is None
    assert may_send(nobody, "email", "transactional", Settings(), "unsubscribed") is None
    assert may_send(nobody, "email", "transactional", Settings(), "bounced") == (
        "suppressed: email address bounced"
    )
    assert may_send(nobody, "email", "transactional", Settings(), "erased") is not None


def test_channels_without_a_person_need_no_consent() -> None:
    assert may_send({}, "webhook", "marketing", Settings(), None) is None
    assert may_send({}, "console", "marketing", Settings(), "unsubscribed") is None


# ------------------------------------------------------------------------------- recipients


def test_sms_numbers_become_e164_in_the_customers_region() -> None:
    korean = {"phone": "010-1234-5678", "locale": "ko-KR"}
    assert recipient(korean, "sms", Settings()) == "+821012345678"
    assert recipient({"phone": "010-1234-5678", "locale": "ko"}, "sms", Settings()) == (
        "+821012345678"
    )
    configured = Settings(channels={"sms": {"provider": "twilio", "default_region": "us"}})
    assert recipient({"phone": "(415) 555-2671", "locale": "ko"}, "sms", configured) == (
        "+14155552671"
    )
    assert e164("+44 20 7946 0958", None) == "+442079460958"


def test_customers_without_a_usable_address_are_skipped_with_the_reason() -> None:
    with pytest.raises(NoAddress, match="no phone number"):
        recipient({"email": "a@example.com"}, "sms", Settings())
    with pytest.raises(NoAddress, match="not a valid number in region KR"):
        recipient({"phone": "010-12", "locale": "ko"}, "sms", Settings())
    with pytest.raises(NoAddress, match=r"write it as \+<country code>"):
        recipient({"phone": "12345"}, "sms", Settings(default_locale="zz"))
    with pytest.raises(NoAddress, match="no email address"):
        recipient({"phone": "+14155552671"}, "email", Settings())
    with pytest.raises(NoAddress, match="is not an email address"):
        recipient({"email": "not-an-address"}, "email", Settings())
    assert recipient({}, "webhook", Settings()) is None


def test_locale_territories_follow_cldr() -> None:
    assert [locale_territory(x) for x in ("ko", "ja", "en-GB", "zh-Hant", "")] == [
        "KR",
        "JP",
        "GB",
        "TW",
        None,
    ]


# ----------------------------------------------------------------------------------- filters


def _render(source: str, **ctx: Any) -> str:
    return str(ENV.from_string(source).render(**ctx))


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("ko", "₩45,000"), ("en-US", "₩45,000"), ("de", "45.000\xa0₩"), ("ja", "₩45,000")],
)
def test_money_follows_the_customers_locale(locale: str, expected: str) -> None:
    assert _render("{{ 45000 | money('KRW') }}", customer={"locale": locale}) == expected


def test_locale_filters() -> None:
    ko = {"locale": "ko", "timezone": "Asia/Seoul"}
    de = {"locale": "de", "timezone": "Europe/Berlin"}
    # CLDR's spacing is a no-break space.
    assert _render("{{ 59.9 | money('EUR') }}", customer=de) == "59,90\xa0€"
    assert _render("{{ 59.9 | money }}", customer=de) == "59,90"
    assert _render("{{ 1234.5 | number }}", customer=de) == "1.234,5"
    assert _render("{{ 3 | number(2) }}", customer={"locale": "en"}) == "3.00"
    assert _render("{{ 0.25 | percent }}", customer=de) == "25\xa0%"
    # 20:00 UTC on Mar 1 is already Mar 2 in Seoul: the customer's day.
    assert _render("{{ '2026-03-01T20:00:00Z' | date }}", customer=ko) == "2026. 3. 2."
    assert _render("{{ '2026-03-01' | date('long') }}", customer=de) == "1. März 2026"
    assert "2026" in _render("{{ '2026-03-01T20:00:00Z' | datetime }}", customer=ko)
    # The template's locale (set by the composer) wins over the profile's.
    assert _render("{{ 1234.5 | number }}", customer=de, locale="en") == "1,234.5"
    # Not a number or date: shown as is, the message is not lost.
    assert _render("{{ 'soon' | money('USD') }} {{ 'later' | date }}", customer=ko) == "soon later"
    assert _render("{{ 5 | money('USD') }}", customer={"locale": "xx-nowhere"}) == "$5.00"


# ----------------------------------------------------------------------------------- layout


def test_derived_text_keeps_jinja_and_links_and_drops_head_and_preheader() -> None:
    source = (
        "<html><head><style>p {color: red}</style><title>x</title></head><body>"
        '<div class="preheader" style="display:none">{% block preheader %}Hi{% endblock %}</div>'
        "<p>Hello {{ customer.first_name }},</p>"
        "<table><tr><td>Total</td><td>{{ total | money('EUR') }}</td></tr></table>"
        '<p><a href="{{ url }}">Complete your order</a> &amp; more</p>'
        "{% if n < 3 %}<p>few</p>{% endif %}</body></html>"
    )
    text = derive_text(source)
    assert "color" not in text and "preheader" not in text and "<" not in text.replace(" < ", "")
    rendered = _render(text, customer={"first_name": "Ann"}, total=5, url="https://x/y", n=1)
    assert [line for line in rendered.split("\n") if line] == [
        "Hello Ann,",
        "Total €5.00",
        "Complete your order (https://x/y) & more",
        "few",
    ]


def _project(tmp_path: Path, files: dict[str, str]) -> TemplateStore:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return TemplateStore(tmp_path)


LAYOUT = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><style>.card {color: #123456}</style>"
    "</head><body><div class='card'>{% block content %}{% endblock %}</div>"
    "{% if message_kind != 'transactional' %}<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe"
    "</a></p>{% endif %}<p>{{ sender.name }} · {{ sender.address }}</p></body></html>"
)


def test_templates_extend_partials_only(tmp_path: Path) -> None:
    store = _project(
        tmp_path,
        {
            "_layout.html": LAYOUT,
            "hello.html": "---\nsubject: Hi\n---\n{% extends '_layout.html' %}"
            "{% block content %}<p>Hi</p>{% endblock %}",
            "other.html": "---\nsubject: Other\n---\n<p>other</p>",
            "sneaky.html": "---\nsubject: S\n---\n{% include 'other.html' %}",
        },
    )
    assert store.names() == ["hello", "other", "sneaky"]  # partials are not messages
    ctx = {"sender": {"name": "Shop", "address": "1 Main St"}, "unsubscribe_url": "https://u"}
    message = store.for_locale("hello", "en").render(ctx)
    assert "<p>Hi</p>" in message.html and "Unsubscribe" in message.html
    assert [line for line in message.text.split("\n") if line][:3] == [
        "Hi",
        "Unsubscribe (https://u)",
        "Shop · 1 Main St",
    ]
    with pytest.raises(TemplateError, match="only partials"):
        store.for_locale("sneaky", "en").render(ctx)


def test_the_text_part_is_derived_once_per_template(tmp_path: Path) -> None:
    store = _project(tmp_path, {"a.html": "---\nsubject: A\n---\n<p>{{ n }}</p>"})
    compiled = store.for_locale("a", "en")
    assert compiled.text is not None  # compiled from the HTML source, not from each message
    assert [compiled.render({"n": i}).text for i in (1, 2)] == ["1", "2"]
    assert store.for_locale("a", "en") is compiled


def test_template_front_matter_declares_the_kind(tmp_path: Path) -> None:
    store = _project(
        tmp_path,
        {
            "receipt.html": "---\nsubject: Receipt\nkind: transactional\n---\n<p>x</p>",
            "promo.html": "---\nsubject: Promo\n---\n<p>x</p>",
            "bad.html": "---\nsubject: Bad\nkind: spam\n---\n<p>x</p>",
        },
    )
    assert store.kind("receipt") == "transactional"
    assert store.kind("promo") is None
    with pytest.raises(TemplateError, match="kind 'spam' is not valid") as caught:
        store.kind("bad")
    assert caught.value.line == 3


# --------------------------------------------------------------------------------- composer


def _compose(store: TemplateStore, name: str, **kw: Any) -> Any:
    customer = {"id": "c-1", "first_name": "Mina", "locale": kw.get("locale", "en")}
    ctx = {"customer": customer, "event": {"data": {}}}
    kw.setdefault("channel", "email")
    return Composer(SETTINGS).compose(
        store.for_locale(name, kw.get("locale")), ctx, customer_id="c-1", at=NOW, **kw
    )


def test_marketing_email_is_a_full_document_with_inlined_css_and_unsubscribe_headers(
    tmp_path: Path,
) -> None:
    store = _project(
        tmp_path,
        {
            "_layout.html": LAYOUT,
            "promo.html": "---\nsubject: '{{ customer.first_name }}, 10% off'\n---\n"
            "{% extends '_layout.html' %}{% block content %}<p>Hi</p>{% endblock %}",
        },
    )
    message = _compose(store, "promo")
    assert message.subject == "Mina, 10% off"
    assert message.html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in message.html
    assert 'class="card" style="color: #123456;"' in message.html  # inlined
    assert "Example Shop · 1 Main St, Springfield" in message.html
    unsubscribe = message.headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<http://localhost:8000/unsubscribe/")
    assert unsubscribe.endswith(", <mailto:unsubscribe@example.com?subject=unsubscribe>")
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.headers["From"] == "Example Shop <shop@example.com>"
    assert unsubscribe.split(",")[0].strip("<>") in message.html  # the footer link is the same


def test_transactional_email_has_no_unsubscribe(tmp_path: Path) -> None:
    store = _project(
        tmp_path,
        {
            "_layout.html": LAYOUT,
            "receipt.html": "---\nsubject: Receipt\n---\n"
            "{% extends '_layout.html' %}{% block content %}<p>Paid</p>{% endblock %}",
        },
    )
    message = _compose(store, "receipt", kind="transactional")
    assert "List-Unsubscribe" not in message.headers and "Unsubscribe" not in message.html


def test_korean_advertising_prefix_and_journey_sender(tmp_path: Path) -> None:
    store = _project(tmp_path, {"promo.ko.html": "---\nsubject: 할인 소식\n---\n<p>안녕하세요</p>"})
    message = _compose(
        store, "promo", locale="ko-KR", sender={"name": "VIP 팀", "reply_to": "vip@example.com"}
    )
    assert message.subject == "(광고) 할인 소식"
    assert message.headers["From"] == "=?utf-8?b?VklQIO2MgA==?= <shop@example.com>"
    assert message.headers["Reply-To"] == "vip@example.com"
    assert _compose(store, "promo", locale="ko", kind="transactional").subject == "할인 소식"
    assert ad_prefix(Settings(ad_subject_prefix={}), "ko") == ""
    sms = _compose(store, "promo", locale="ko", channel="sms")
    assert sms.text.startswith("(광고) 안녕하세요") and sms.html is None and not sms.headers


def test_test_sends_are_marked(tmp_path: Path) -> None:
    store = _project(tmp_path, {"promo.html": "---\nsubject: Sale\n---\n<p>x</p>"})
    message = _compose(store, "promo", test=True, subject="Override for {{ customer.first_name }}")
    assert message.subject == "[TEST] Override for Mina"
    assert message.headers["X-Journeys-Test"] == "true"
    assert "X-Journeys-Test" not in email_headers(SETTINGS, "c-1", "marketing", at=NOW)


def test_example_templates_compose_in_both_languages() -> None:
    store = TemplateStore(EXAMPLES)
    ctx = {
        "customer": {"id": "c-1", "first_name": "민아", "locale": "ko"},
        "event": {
            "data": {
                "items": [{"name": "Mug", "price": 45000}],
                "cart_total": 45000,
                "currency": "KRW",
            }
        },
    }
    composer = Composer(SETTINGS)
    for locale, total, footer in (("ko", "₩45,000", "수신 거부"), ("en", "₩45,000", "Unsubscribe")):
        message = composer.compose(
            store.for_locale("cart_reminder", locale),
            ctx,
            customer_id="c-1",
            at=NOW,
            channel="email",
            locale=locale,
        )
        assert total in message.html and total in message.text
        assert footer in message.html and "1 Main St, Springfield" in message.text
        assert message.html.startswith("<!DOCTYPE html>") and "<style>" in message.html
