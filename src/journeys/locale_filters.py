"""Template filters that format numbers, money and dates in the customer's locale (Babel/CLDR).

``{{ order.total | money('KRW') }}`` is ``₩45,000`` for a ``ko`` customer, ``{{ 1234.5 |
number }}`` is ``1.234,5`` for ``de``, ``{{ event.occurred_at | date }}`` is ``2026. 3. 1.`` in
``ko`` and ``Mar 1, 2026`` in ``en``: whatever CLDR says for the locale. The locale is the
context's ``locale`` (the template's locale, set by the composer), else ``customer.locale``,
else English. Dates and times are shown in ``customer.timezone`` when the customer has one.

:func:`register_locale_filters` adds them to a sandboxed environment; values that are not
numbers or dates are returned as text rather than failing the message.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import pass_context
from jinja2.runtime import Context

FALLBACK = "en"


@functools.lru_cache(maxsize=512)
def babel_locale(name: str | None) -> Locale:
    """The Babel locale for ``ko-KR``/``ko_KR``/``ko``; English when unknown or empty."""
    if name:
        try:
            return Locale.parse(str(name).replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            pass
    return Locale.parse(FALLBACK)


def _customer(ctx: Context) -> Mapping[str, Any]:
    customer = ctx.get("customer")
    return customer if isinstance(customer, Mapping) else {}


def context_locale(ctx: Context) -> Locale:
    """The locale a template renders in (see the module docstring)."""
    name = ctx.get("locale")
    if not isinstance(name, str) or not name:
        name = _customer(ctx).get("locale")
    return babel_locale(name if isinstance(name, str) else None)


def _zone(ctx: Context) -> tzinfo:
    name = _customer(ctx).get("timezone")
    if isinstance(name, str) and name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


@pass_context
def money(ctx: Context, value: Any, currency: Any = "") -> str:
    """``45000 | money('KRW')`` → ``₩45,000`` (ko); without a currency, the amount with two
    decimals in the locale's digits."""
    amount = _decimal(value)
    if amount is None:
        return "" if value is None else str(value)
    return _money(amount, str(currency or "").strip().upper(), context_locale(ctx))


@functools.lru_cache(maxsize=4096)
def _money(amount: Decimal, code: str, locale: Locale) -> str:
    # Pure and dear (CLDR lookups, about 0.3 ms); a campaign repeats the same prices.
    if not code:
        return babel_numbers.format_decimal(amount, format="#,##0.00", locale=locale)
    return babel_numbers.format_currency(amount, code, locale=locale)


@pass_context
def number(ctx: Context, value: Any, decimals: Any = None) -> str:
    """``1234.5 | number`` → ``1,234.5`` (en), ``1.234,5`` (de); ``number(2)`` fixes the
    decimals."""
    amount = _decimal(value)
    if amount is None:
        return "" if value is None else str(value)
    locale = context_locale(ctx)
    if isinstance(decimals, int) and not isinstance(decimals, bool) and 0 <= decimals <= 10:
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return babel_numbers.format_decimal(amount, format=pattern, locale=locale)
    return babel_numbers.format_decimal(amount, locale=locale)


@pass_context
def percent(ctx: Context, value: Any) -> str:
    """``0.25 | percent`` → ``25%`` (en), ``25 %`` (de)."""
    amount = _decimal(value)
    if amount is None:
        return "" if value is None else str(value)
    return babel_numbers.format_percent(amount, locale=context_locale(ctx))


def _when(value: Any) -> date | datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_WIDTHS = ("short", "medium", "long", "full")


def _width(fmt: Any) -> str:
    return fmt if isinstance(fmt, str) and fmt in _WIDTHS else "medium"


@pass_context
def format_date(ctx: Context, value: Any, fmt: Any = "medium") -> str:
    """``"2026-03-01" | date`` → ``Mar 1, 2026`` (en), ``2026. 3. 1.`` (ko); ``date('long')``.
    A time is first moved to the customer's time zone, so the day is theirs."""
    when = _when(value)
    if when is None:
        return "" if value is None else str(value)
    if isinstance(when, datetime):
        when = when.astimezone(_zone(ctx)).date()
    return babel_dates.format_date(when, format=_width(fmt), locale=context_locale(ctx))


@pass_context
def format_datetime(ctx: Context, value: Any, fmt: Any = "medium") -> str:
    """A date and time in the customer's locale and time zone (``datetime('short')``)."""
    when = _when(value)
    if when is None:
        return "" if value is None else str(value)
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day, tzinfo=UTC)
    return babel_dates.format_datetime(
        when, format=_width(fmt), tzinfo=_zone(ctx), locale=context_locale(ctx)
    )


FILTERS = {
    "money": money,
    "number": number,
    "percent": percent,
    "date": format_date,
    "datetime": format_datetime,
}
"""Filter name → function, as templates use them."""


def register_locale_filters(env: Any) -> None:
    """Add :data:`FILTERS` to a Jinja environment (replacing a plain ``money``)."""
    env.filters.update(FILTERS)
