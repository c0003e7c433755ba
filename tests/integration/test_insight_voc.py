"""Voice of the customer: sentiment and keywords of survey comments, on a labelled set of Korean
and English comments written for this test, and stored in bulk on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Engine, insert, select

from journeys.insight.voc import analyse, analyse_stored, language
from journeys.store.tables import customers, survey_answers

# (comment, label) — written as customers of a web shop write them, before looking at what the
# analyser says about them; neither set was tuned afterwards.
EN = [
    ("Fast delivery and the shoes fit perfectly. Thank you!", "positive"),
    ("Great quality for the price, I will order again.", "positive"),
    ("The support team solved my problem in minutes, very helpful.", "positive"),
    ("Love the new app, checkout is so easy now", "positive"),
    ("Excellent service as always", "positive"),
    ("The coupon was a nice surprise, thanks", "positive"),
    ("Packaging was beautiful, perfect as a gift", "positive"),
    ("Really happy with my order", "positive"),
    ("Best online shop I know, highly recommend", "positive"),
    ("The jacket is warm and looks amazing", "positive"),
    ("Friendly driver and quick delivery", "positive"),
    ("Everything arrived in good condition, well done", "positive"),
    ("I am satisfied with the product", "positive"),
    ("Wonderful experience from start to finish", "positive"),
    ("Delivery took two weeks, way too slow.", "negative"),
    ("The box arrived damaged and one item was missing", "negative"),
    ("Terrible customer service, nobody answers the phone", "negative"),
    ("The app keeps crashing when I try to pay", "negative"),
    ("Very disappointed, the colour is nothing like the photo", "negative"),
    ("Refund still not processed after a month. Awful.", "negative"),
    ("Too expensive for such poor quality", "negative"),
    ("Wrong size sent twice, I'm annoyed", "negative"),
    ("The discount code did not work and support was rude", "negative"),
    ("Worst purchase this year", "negative"),
    ("Broken zipper after two days", "negative"),
    ("I hate the new website, it is confusing", "negative"),
    ("Shipping costs are ridiculous", "negative"),
    ("Not happy with the delivery at all", "negative"),
    ("I received the parcel on Tuesday.", "neutral"),
    ("Ordered a blue shirt in size M.", "neutral"),
    ("It was a gift for my sister.", "neutral"),
    ("I usually buy shoes here.", "neutral"),
    ("Delivered by the post office", "neutral"),
    ("I have not opened the box yet", "neutral"),
    ("Paid by card", "neutral"),
    ("Second order this month", "neutral"),
    ("The parcel came in two boxes", "neutral"),
    ("I live in Busan", "neutral"),
    ("Bought it for the summer holiday", "neutral"),
    ("I will use it next week", "neutral"),
    ("My husband ordered it", "neutral"),
    ("The order number is 4411", "neutral"),
    ("Came on Friday afternoon", "neutral"),
]

KO = [
    ("배송이 빨라서 좋았어요. 감사합니다!", "positive"),
    ("가격 대비 품질이 정말 훌륭해요", "positive"),
    ("고객센터 상담원이 친절하게 해결해 주셨어요", "positive"),
    ("포장이 꼼꼼하고 깔끔했어요", "positive"),
    ("선물용으로 샀는데 너무 예뻐요", "positive"),
    ("재구매 의사 있습니다. 추천해요", "positive"),
    ("생각보다 훨씬 좋네요 ㅎㅎ", "positive"),
    ("쿠폰 덕분에 저렴하게 잘 샀어요", "positive"),
    ("사이즈도 딱 맞고 마음에 들어요", "positive"),
    ("앱이 편리해서 주문하기 쉬웠어요", "positive"),
    ("항상 만족하는 쇼핑몰입니다", "positive"),
    ("기사님이 친절하셨어요", "positive"),
    ("최고예요!", "positive"),
    ("맛있고 신선해요", "positive"),
    ("배송이 너무 늦어요. 일주일 넘게 기다렸어요", "negative"),
    ("상품이 파손되어 왔어요 ㅠㅠ", "negative"),
    ("고객센터에 전화해도 연결이 안 돼요", "negative"),
    ("사진과 색상이 달라서 실망했습니다", "negative"),
    ("환불 처리가 한 달째 안 되고 있어요", "negative"),
    ("품질에 비해 너무 비싸요", "negative"),
    ("사이즈가 잘못 와서 짜증나요", "negative"),
    ("직원이 불친절했어요", "negative"),
    ("앱이 자꾸 오류가 나서 결제를 못 했어요", "negative"),
    ("두 번 입고 지퍼가 고장났어요", "negative"),
    ("다시는 안 살 거예요", "negative"),
    ("포장이 엉망이었어요", "negative"),
    ("배송비가 너무 비싸요", "negative"),
    ("별로예요", "negative"),
    ("화요일에 받았습니다", "neutral"),
    ("파란색 M 사이즈로 주문했어요", "neutral"),
    ("동생 선물로 샀어요", "neutral"),
    ("보통이에요", "neutral"),
    ("아직 안 써봤어요", "neutral"),
    ("카드로 결제했습니다", "neutral"),
    ("이번 달 두 번째 주문이에요", "neutral"),
    ("택배가 두 상자로 나눠서 왔어요", "neutral"),
    ("부산에 살아요", "neutral"),
    ("여름휴가 때 쓰려고 샀어요", "neutral"),
    ("다음 주에 사용할 예정입니다", "neutral"),
    ("남편이 주문했어요", "neutral"),
    ("주문번호는 4411입니다", "neutral"),
    ("금요일 오후에 도착했어요", "neutral"),
    ("그냥 그래요", "neutral"),
]


def _accuracy(samples: list[tuple[str, str]], locale: str) -> tuple[float, float, list[str]]:
    wrong = []
    hits = 0
    for comment, label in samples:
        got = analyse(comment, locale).sentiment
        if got == label:
            hits += 1
        else:
            wrong.append(f"{comment!r}: {label}, got {got}")
    neutral = Counter(label for _c, label in samples)["neutral"]
    return hits / len(samples), neutral / len(samples), wrong


@pytest.mark.parametrize(("samples", "locale"), [(EN, "en-US"), (KO, "ko-KR")], ids=["en", "ko"])
def test_sentiment_beats_always_neutral(samples: list[tuple[str, str]], locale: str) -> None:
    assert len(samples) >= 40
    accuracy, baseline, wrong = _accuracy(samples, locale)
    # Shown with `pytest -s` (and in docs/metrics.md): the measured accuracy.
    print(
        f"\n{locale}: accuracy {accuracy:.1%} on {len(samples)} comments "
        f"(always-neutral {baseline:.1%}); misses: " + "; ".join(wrong)
    )
    assert accuracy >= baseline + 0.35, wrong
    assert accuracy >= 0.75, wrong


def test_keywords_name_topics() -> None:
    en = analyse("Delivery was late and the box was damaged", "en")
    assert en.sentiment == "negative" and -1 <= en.score < 0
    assert "delivery" in en.keywords and "box" in en.keywords
    assert "damaged" not in en.keywords  # a sentiment word, not a topic
    ko = analyse("고객센터 응대가 느리고 배송도 늦었어요", "ko")
    assert ko.sentiment == "negative"
    assert "배송" in ko.keywords and "응대" in ko.keywords
    great = analyse("Great coupon, thanks!", None)
    assert great.keywords == ("coupon",)
    assert analyse("   ", "ko") == analyse("", None)
    assert analyse("", None).sentiment == "neutral"


def test_negation_and_contrast_in_korean() -> None:
    assert analyse("배송이 빠르지 않았어요").sentiment == "negative"
    assert analyse("문제 없이 잘 받았습니다").sentiment == "positive"
    assert analyse("안 좋아요").sentiment == "negative"
    assert analyse("디자인은 예쁜데 너무 비싸요").score < analyse("디자인이 예뻐요").score
    assert analyse("ㅠㅠ", "ko").sentiment == "negative"


def test_language_follows_the_script_then_the_locale() -> None:
    assert language("배송이 빨라요", "en") == "ko"
    assert language("fast delivery", "ko-KR") == "en"
    assert language("^^", "ko-KR") == "ko" and language("^^", None) == "en"


def test_stored_comments_are_analysed_in_bulk(db_engine: Engine) -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 3, 1, tzinfo=UTC)
    with db_engine.begin() as conn:
        conn.execute(
            insert(customers),
            [
                {
                    "id": "k",
                    "locale": "ko-KR",
                    "attributes": {},
                    "created_at": at,
                    "updated_at": at,
                },
                {"id": "e", "locale": "en", "attributes": {}, "created_at": at, "updated_at": at},
            ],
        )
        rows = [
            ("k", 2, "배송이 너무 늦어요"),
            ("e", 10, "Great service, fast delivery"),
            ("e", 8, None),
            ("k", 9, ""),
        ]
        conn.execute(
            insert(survey_answers),
            [
                {
                    "event_id": f"a{i}",
                    "customer_id": cid,
                    "journey": "post",
                    "step": "nps",
                    "kind": "nps",
                    "score": score,
                    "category": "promoter" if score >= 9 else "detractor",
                    "comment": comment,
                    "answered_at": at,
                }
                for i, (cid, score, comment) in enumerate(rows)
            ],
        )
    assert analyse_stored(db_engine) == 2
    assert analyse_stored(db_engine) == 0  # already analysed
    with db_engine.connect() as conn:
        stored = conn.execute(
            select(
                survey_answers.c.customer_id,
                survey_answers.c.sentiment,
                survey_answers.c.sentiment_score,
                survey_answers.c.keywords,
            ).order_by(survey_answers.c.id)
        ).all()
    assert stored[0].sentiment == "negative" and stored[0].keywords == ["배송"]
    assert stored[0].sentiment_score < 0
    assert stored[1].sentiment == "positive" and "delivery" in stored[1].keywords
    assert stored[2].sentiment is None and stored[3].sentiment is None
