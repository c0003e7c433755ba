"""The event catalogue: which event types a project's journeys may name, and their data.

Three sources, merged: the well-known types journeys itself knows (:data:`WELL_KNOWN`), the
project's own types declared under ``events:`` in ``journeys.yaml`` (optionally with their
``data`` fields and types), and, when ``journeys validate --database`` is given, the types of
the events already stored. A journey naming any other type gets a did-you-mean diagnostic
(``unknown-event``): a typo in ``wait_for: {event: order.placd}`` would otherwise wait forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

DataType = Literal["string", "number", "integer", "boolean", "datetime", "list", "object", "any"]
"""The types a declared ``data`` field may have (``journeys.yaml``: ``{sku: string}``)."""
DATA_TYPES: tuple[str, ...] = get_args(DataType)

WELL_KNOWN: dict[str, str] = {
    "customer.created": "a new customer; data = profile traits (creates the customer)",
    "customer.signed_up": "a customer signed up; data = profile traits (creates the customer)",
    "customer.updated": "profile traits changed; data = the traits to upsert",
    "product.viewed": "a product page was viewed (data: sku, name, price …)",
    "cart.updated": "the cart changed (data: cart_total, items, currency)",
    "order.placed": "an order (data: order_id, total, currency, items); counts orders",
    "order.delivered": "an order arrived (data: order_id)",
    "email.delivered": "a message reached the inbox (provider feedback)",
    "email.opened": "a message was opened",
    "email.clicked": "a link in a message was clicked",
    "email.bounced": "a message bounced; stops email to the customer",
    "email.unsubscribed": "the customer unsubscribed; stops marketing email",
    "email.complained": "the customer reported spam; stops email to the customer",
    "survey.answered": "a survey answer (data: journey, step, score, comment)",
    "stage.entered": "the customer entered a lifecycle stage (data: stage, from)",
}
"""Event types journeys knows without a declaration, with what they mean (docs/events.md)."""

Origin = Literal["well-known", "declared", "stored"]


@dataclass(frozen=True)
class EventInfo:
    """One known event type; ``data`` maps declared data fields to their types (``None``:
    the fields are not declared, so any field may be used)."""

    name: str
    origin: Origin
    data: Mapping[str, str] | None = None


@dataclass
class EventCatalogue:
    """Every event type a project knows (see the module docstring)."""

    types: dict[str, EventInfo] = field(default_factory=dict)
    declared_in: str = "journeys.yaml"
    """Where project types are declared (for messages)."""

    @classmethod
    def build(
        cls,
        declared: Mapping[str, Mapping[str, str] | None] | None = None,
        stored: Iterable[str] = (),
        declared_in: str = "journeys.yaml",
    ) -> EventCatalogue:
        """Well-known types, then ``declared`` (type → data fields or None), then ``stored``
        types. A declaration of a well-known type adds its data fields."""
        catalogue = cls(declared_in=declared_in)
        for name in WELL_KNOWN:
            catalogue.types[name] = EventInfo(name, "well-known")
        for name, data in (declared or {}).items():
            catalogue.types[name] = EventInfo(
                name, "declared", dict(data) if data is not None else None
            )
        for name in stored:
            catalogue.types.setdefault(name, EventInfo(name, "stored"))
        return catalogue

    def knows(self, name: str) -> bool:
        """Whether ``name`` is a known event type."""
        return name in self.types

    def names(self) -> list[str]:
        """Every known type, sorted."""
        return sorted(self.types)

    def data_fields(self, name: str) -> Mapping[str, str] | None:
        """The declared data fields of ``name`` (None when not declared or unknown)."""
        info = self.types.get(name)
        return info.data if info is not None else None
