"""What the web app does, without HTTP: read links, store survey answers, unsubscribe, and turn
webhook and API payloads into events. The routers are thin shells over :class:`WebCore`.

Every event goes in through the service's ingest (validation, deduplication by id); the
runner (``journeys run``) or the workers match them on their next pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from journeys.insight import voc
from journeys.plan import SurveyStep, survey_category
from journeys.runtime.links import (
    SURVEY,
    UNSUBSCRIBE,
    BadToken,
    SurveyLink,
    UnsubscribeLink,
    read_survey_token,
    read_unsubscribe_token,
    verify,
)
from journeys.store import web as store
from journeys.web import keys as api_keys
from journeys.web.config import WebConfig
from journeys.web.sendgrid import SUPPRESSES, MappedEvent

if TYPE_CHECKING:
    from journeys.service import JourneyService, RecordReport

SCALES = {"nps": range(0, 11), "csat": range(1, 6)}
"""The scores each survey kind accepts."""
MAX_COMMENT = 2000
"""Characters of a survey comment that are kept."""


@dataclass(frozen=True)
class SurveyView:
    """An open survey: whose it is, what it asks, and the answer given so far."""

    link: SurveyLink
    customer_id: str
    kind: str
    locale: str
    score: int | None = None
    comment: str | None = None

    @property
    def scale(self) -> range:
        """The scores the question offers."""
        return SCALES[self.kind]


@dataclass(frozen=True)
class Subscriber:
    """The person behind an unsubscribe link, and what they are subscribed to."""

    link: UnsubscribeLink
    locale: str
    email_hint: str | None
    suppressed: str | None
    opted_out: frozenset[str] = frozenset()


@dataclass
class FeedbackReport:
    """What a webhook delivery did."""

    accepted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of the webhook."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "skipped": len(self.skipped),
        }


def mask_email(email: str | None) -> str | None:
    """``jane.doe@example.com`` → ``j•••@example.com``: enough for people to recognise their
    own address on a page, not enough to read someone else's."""
    if not email or "@" not in email:
        return None
    local, domain = email.split("@", 1)
    return f"{local[:1]}•••@{domain}"


class WebCore:
    """The web app's operations over one :class:`~journeys.service.JourneyService` (its own:
    the runner's service is not shared across threads) and its store."""

    def __init__(self, service: JourneyService, config: WebConfig) -> None:
        self.service = service
        self.db = service.db
        self.config = config
        self.plans = service.project.plans
        # The service is not thread-safe and requests run in a thread pool.
        self._ingest_lock = threading.Lock()
        self._touched: dict[int, datetime] = {}

    def now(self) -> datetime:
        """The service's clock (virtual in tests)."""
        return self.service.clock.now()

    def healthy(self) -> bool:
        """Whether the database answers."""
        try:
            store.ping(self.db)
        except Exception:
            return False
        return True

    def ingest(self, records: Iterable[Any], source: str, first_line: int = 0) -> RecordReport:
        """Store events through the service (validated, deduplicated by id); errors are
        reported by position (``first_line`` is the first record's)."""
        with self._ingest_lock:
            return self.service.ingest(records, source=source, first_line=first_line)

    def authenticate(self, presented: str) -> api_keys.ApiKey | None:
        """The active API key ``presented`` is, or None. Notes when a key was last used (at
        most once a minute per key, not a write per request)."""
        key = api_keys.authenticate(self.db, presented)
        if key is not None:
            now = self.now()
            last = self._touched.get(key.id)
            if last is None or (now - last).total_seconds() >= 60:
                self._touched[key.id] = now
                with self.db.begin() as conn:
                    store.touch_api_key(conn, key.id, now)
        return key

    def staff_key(self, key_id: int) -> api_keys.ApiKey | None:
        """The staff key a session was opened with, while it is not revoked."""
        key = api_keys.still_active(self.db, key_id)
        return key if key is not None and key.scope == "staff" else None

    def locale_of(self, customer_id: str) -> str:
        """The customer's locale, else the project default."""
        with self.db.connect() as conn:
            row = store.customer_brief(conn, customer_id)
        return (row or {}).get("locale") or self.config.default_locale

    # ------------------------------------------------------------------------------- links

    def read_link(self, salt: str, token: str) -> dict[str, Any]:
        """The payload of a survey or unsubscribe token; raises
        :class:`~journeys.runtime.links.BadToken`."""
        max_age = self.config.survey_max_age if salt == SURVEY else self.config.unsubscribe_max_age
        return verify(self.config.keys, salt, token, max_age=max_age, now=self.now())

    def locale_of_payload(self, salt: str, payload: dict[str, Any] | None) -> str | None:
        """The customer's locale from a genuine (perhaps expired) token, for its error page."""
        try:
            if payload is None:
                return None
            if salt == UNSUBSCRIBE:
                return self.locale_of(read_unsubscribe_token(payload).customer_id)
            link = read_survey_token(payload)
            with self.db.connect() as conn:
                enrollment = store.enrollment_brief(conn, link.enrollment_id)
            return self.locale_of(enrollment["customer_id"]) if enrollment else None
        except BadToken:
            return None

    # ----------------------------------------------------------------------------- surveys

    def survey(self, link: SurveyLink) -> SurveyView | None:
        """The survey a link answers, or None when no such enrollment and survey step
        exist (any more)."""
        plan = self.plans.get(link.journey)
        if plan is None or not plan.has_step(link.step):
            return None
        step = plan.step(link.step)
        if not isinstance(step, SurveyStep):
            return None
        with self.db.connect() as conn:
            enrollment = store.enrollment_brief(conn, link.enrollment_id)
            if enrollment is None or enrollment["journey"] != link.journey:
                return None
            answer = store.survey_answer(conn, _answer_id(link))
        customer = enrollment["customer_id"]
        return SurveyView(
            link,
            customer,
            step.survey,
            self.locale_of(customer),
            score=answer["score"] if answer else None,
            comment=answer["comment"] if answer else None,
        )

    def answer(self, view: SurveyView, score: int, comment: str | None) -> bool:
        """Store the answer and turn it into one ``survey.answered`` event. A second answer
        replaces the first (and the event's data while nothing has matched it yet) without a
        second event. True when this was the first answer."""
        if score not in view.scale:
            raise ValueError(f"score {score} is not on the {view.kind} scale")
        comment = (comment or "").strip()[:MAX_COMMENT] or None
        link, now = view.link, self.now()
        data: dict[str, Any] = {"journey": link.journey, "step": link.step, "score": score}
        if comment:
            data["comment"] = comment
        event_id = _answer_id(link)
        event = {
            "id": event_id,
            "type": "survey.answered",
            "customer_id": view.customer_id,
            "occurred_at": now,
            "data": data,
        }
        report = self.ingest([event], source="web")
        if report.errors:
            raise RuntimeError(f"survey answer refused: {report.errors[0][1]}")
        with self.db.begin() as conn:
            if not report.accepted:
                store.update_pending_event_data(conn, event_id, data)
            store.upsert_survey_answer(
                conn,
                {
                    "event_id": event_id,
                    "enrollment_id": link.enrollment_id,
                    "customer_id": view.customer_id,
                    "journey": link.journey,
                    "step": link.step,
                    "kind": view.kind,
                    "score": score,
                    "category": survey_category(view.kind, score),
                    "comment": comment,
                    "answered_at": now,
                    **_analysis(comment, view.locale),
                },
            )
        return bool(report.accepted)

    # ------------------------------------------------------------------------- unsubscribe

    def subscriber(self, link: UnsubscribeLink) -> Subscriber | None:
        """Who an unsubscribe link is for, or None when the customer is not known."""
        with self.db.connect() as conn:
            customer = store.customer_brief(conn, link.customer_id)
            if customer is None:
                return None
            suppressed = store.suppression_reason(conn, link.customer_id, link.channel)
            opted_out = store.topic_optouts_of(conn, link.customer_id)
        return Subscriber(
            link,
            customer.get("locale") or self.config.default_locale,
            mask_email(customer.get("email")) if link.channel == "email" else None,
            suppressed,
            frozenset(opted_out),
        )

    def unsubscribe(self, link: UnsubscribeLink, source: str) -> bool:
        """Suppress every marketing message to the customer on the link's channel, at once,
        and record it as one ``<channel>.unsubscribed`` event. False when already done."""
        now = self.now()
        with self.db.begin() as conn:
            row = {
                "customer_id": link.customer_id,
                "channel": link.channel,
                "reason": "unsubscribed",
                "created_at": now,
            }
            added = store.add_suppressions(conn, [row])
        if added:
            self.ingest(
                [
                    {
                        "id": f"unsubscribe:{link.customer_id}:{link.channel}",
                        "type": f"{link.channel}.unsubscribed",
                        "customer_id": link.customer_id,
                        "occurred_at": now,
                        "data": {"channel": link.channel, "source": source},
                    }
                ],
                source="web",
            )
        return bool(added)

    def set_topics(self, link: UnsubscribeLink, subscribed: Iterable[str], source: str) -> None:
        """Keep the customer on exactly the ``subscribed`` topics of the project; each change
        is recorded as a ``topic.unsubscribed`` / ``topic.subscribed`` event."""
        topics = set(self.config.topics)
        now = self.now()
        with self.db.begin() as conn:
            left, rejoined = store.set_topic_optouts(
                conn, link.customer_id, topics - set(subscribed), now
            )
        changes = [("topic.unsubscribed", t) for t in sorted(left)]
        changes += [("topic.subscribed", t) for t in sorted(rejoined)]
        if changes:
            self.ingest(
                [
                    {
                        "id": f"{etype}:{link.customer_id}:{topic}:{now.isoformat()}",
                        "type": etype,
                        "customer_id": link.customer_id,
                        "occurred_at": now,
                        "data": {"topic": topic, "channel": link.channel, "source": source},
                    }
                    for etype, topic in changes
                ],
                source="web",
            )

    # --------------------------------------------------------------------------- webhooks

    def record_feedback(
        self,
        mapped: list[MappedEvent],
        source: str,
        suppress: Mapping[str, str] = SUPPRESSES,
        skipped: Iterable[str] = (),
    ) -> FeedbackReport:
        """Store provider events that map back to our messages; the suppressing ones (as
        ``suppress`` says by event type) also suppress the customer's channel at once."""
        report = FeedbackReport(skipped=list(skipped))
        with self.db.connect() as conn:
            messages = store.messages_by_id(conn, (m.message_id for m in mapped))
        records, suppressions = [], []
        for item in mapped:
            message = messages.get(item.message_id)
            if message is None:
                report.skipped.append(f"message {item.message_id} is not one of ours")
                continue
            data = dict(item.record["data"])
            data.update(
                journey=message["journey"], step=message["step"], template=message["template"]
            )
            records.append({**item.record, "customer_id": message["customer_id"], "data": data})
            reason = suppress.get(item.record["type"])
            if reason:
                suppressions.append(
                    {
                        "customer_id": message["customer_id"],
                        "channel": message["channel"],
                        "reason": reason,
                        "created_at": item.record["occurred_at"],
                    }
                )
        if suppressions:
            with self.db.begin() as conn:
                report.suppressed = store.add_suppressions(conn, suppressions)
        ingested = self.ingest(records, source=source)
        report.accepted, report.duplicates = ingested.accepted, ingested.duplicates
        report.skipped.extend(message for _, message in ingested.errors)
        return report

    def message_for_provider_id(self, provider_id: str) -> int | None:
        """Our outbox id of the message a provider knows as ``provider_id``."""
        with self.db.connect() as conn:
            return store.message_by_provider_id(conn, provider_id)


def _answer_id(link: SurveyLink) -> str:
    """The event id of a survey answer: one per enrollment and survey step."""
    return f"survey:{link.enrollment_id}:{link.step}"


def _analysis(comment: str | None, locale: str | None) -> dict[str, Any]:
    """The stored analysis of a comment (the engine analyses the event the same way)."""
    if not comment:
        return {"sentiment": None, "sentiment_score": None, "keywords": None}
    found = voc.analyse(comment, locale)
    return {
        "sentiment": found.sentiment,
        "sentiment_score": found.score,
        "keywords": list(found.keywords),
    }
