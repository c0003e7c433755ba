"""Sample survey comments for ``journeys demo`` (Korean and English, by answer category), so
the demo's dashboard and report have a voice of the customer to show."""

from __future__ import annotations

import random

COMMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "promoter": {
        "en": (
            "Fast delivery and great packaging, thank you!",
            "Love the quality, will order again",
            "The coupon was a nice surprise",
            "Support answered within minutes, excellent service",
            "Perfect fit, the size guide is accurate",
            "Easy checkout in the app",
        ),
        "ko": (
            "배송이 빨라서 좋았어요. 감사합니다!",
            "품질이 정말 좋아요. 재구매 의사 있어요",
            "쿠폰 덕분에 저렴하게 샀어요",
            "고객센터 상담이 친절했어요",
            "포장이 꼼꼼하고 깔끔해요",
            "앱으로 주문하기 편리해요",
        ),
    },
    "passive": {
        "en": (
            "Delivery was okay, a bit slow",
            "Good product but shipping costs are high",
            "Received it on Tuesday",
            "Fine, nothing special",
        ),
        "ko": (
            "배송이 조금 늦었지만 괜찮아요",
            "상품은 좋은데 배송비가 비싸요",
            "화요일에 받았어요",
            "보통이에요",
        ),
    },
    "detractor": {
        "en": (
            "Delivery took two weeks, way too slow",
            "The box arrived damaged",
            "Support never answered my email",
            "Refund still not processed, very disappointed",
            "Wrong size delivered twice",
            "The app keeps crashing at checkout",
        ),
        "ko": (
            "배송이 너무 늦어요. 일주일 넘게 기다렸어요",
            "상품이 파손되어 왔어요 ㅠㅠ",
            "고객센터 연결이 안 돼요",
            "환불 처리가 늦어서 실망했어요",
            "사이즈가 잘못 배송됐어요",
            "앱 결제 오류가 계속 나요",
        ),
    },
}


def sample_comment(rng: random.Random, category: str, locale: str | None) -> str | None:
    """A comment for an answer of ``category`` in the customer's language, or None (about
    half of the answers come without a comment)."""
    if rng.random() < 0.5:
        return None
    pool = COMMENTS.get(category, COMMENTS["passive"])
    return rng.choice(pool["ko" if (locale or "").startswith("ko") else "en"])
