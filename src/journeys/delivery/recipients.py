"""Where a message to a customer goes on each channel, or why it cannot go there.

Email goes to ``customer.email``; SMS to ``customer.phone`` validated and normalised to E.164
with ``phonenumbers`` (a number written without ``+`` is read in the region of
``channels.sms.default_region``, else of the customer's locale: ``ko-KR`` → KR, ``ko`` → KR
by CLDR's likely subtags); push to the ``push_token`` attribute. A customer without a usable
address is skipped with the reason, never sent to another channel's address.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.core import get_global

from journeys.settings import Settings

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class NoAddress(ValueError):
    """The customer has no usable address on the channel; the message says which and why."""


def recipient(customer: Mapping[str, Any], channel: str, settings: Settings) -> str | None:
    """The address to send ``channel`` messages to (None for channels that address nobody:
    ``webhook``, ``console``); :class:`NoAddress` when the customer has none that works."""
    if channel == "email":
        email = str(customer.get("email") or "").strip()
        if not email:
            raise NoAddress("no email address")
        if not _EMAIL.match(email):
            raise NoAddress(f"email {email!r} is not an email address")
        return email
    if channel == "sms":
        phone = str(customer.get("phone") or "").strip()
        if not phone:
            raise NoAddress("no phone number")
        return e164(phone, phone_region(customer, settings))
    if channel == "push":
        attributes = customer.get("attributes")
        token = customer.get("push_token") or (
            attributes.get("push_token") if isinstance(attributes, Mapping) else None
        )
        if not token:
            raise NoAddress("no push_token")
        return str(token)
    return None


def e164(phone: str, region: str | None) -> str:
    """``phone`` as E.164 (``+821012345678``); :class:`NoAddress` when it is not a valid
    number (national numbers need ``region``)."""
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region or phone.startswith("+") else " (write it as +<country code>…)"
        raise NoAddress(f"phone {phone!r} is not a phone number: {exc._msg}{hint}") from None
    if not phonenumbers.is_valid_number(parsed):
        where = f" in region {region}" if region and not phone.startswith("+") else ""
        raise NoAddress(f"phone {phone!r} is not a valid number{where}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_region(customer: Mapping[str, Any], settings: Settings) -> str | None:
    """The region national numbers are read in: the SMS channel's ``default_region``, else
    the territory of the customer's locale (or the project's default locale)."""
    configured = (settings.channels.get("sms") or {}).get("default_region")
    if configured:
        return str(configured).upper()
    return locale_territory(str(customer.get("locale") or settings.default_locale or ""))


@functools.lru_cache(maxsize=256)
def locale_territory(locale: str) -> str | None:
    """``ko-KR`` → ``KR``; ``ko`` → ``KR`` (CLDR likely subtags); None when unknown."""
    if not locale:
        return None
    try:
        parsed = Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return None
    if parsed.territory:
        return str(parsed.territory)
    subtags = get_global("likely_subtags")  # ko → ko_Kore_KR, zh_Hant → zh_Hant_TW
    key = f"{parsed.language}_{parsed.script}" if parsed.script else parsed.language
    likely = str(subtags.get(key) or subtags.get(parsed.language) or "")
    territory = likely.split("_")[-1] if likely.count("_") >= 1 else ""
    return territory if territory.isalpha() and territory.isupper() else None
