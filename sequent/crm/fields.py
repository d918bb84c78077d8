"""Pure normalisation of contact and account values, shared by forms, API and import.

Each function returns the normalised value or raises ``ValueError`` with a reason
a user can act on.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from dateutil import parser as date_parser
from email_validator import EmailNotValidError, validate_email

TRUE_WORDS = {"true", "yes", "y", "1", "on", "x"}
FALSE_WORDS = {"false", "no", "n", "0", "off", ""}


def normalize_email(value: str) -> str:
    """A syntactically valid address, lower-cased; '' stays ''."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid email address ({exc})") from None
    return result.normalized.lower()


def normalize_phone(value: str, country: str = "") -> str:
    """E.164 form of *value*, read in *country* (ISO alpha-2) when it has no +prefix."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, (country or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_time_zone(value: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    if value not in zoneinfo.available_timezones():
        raise ValueError(f"{value!r} is not an IANA time zone such as Europe/London")
    return value


def parse_date(value: Any) -> dt.date:
    """A calendar date from a date, an ISO string or a common written form."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        raise ValueError("a date is required")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return date_parser.parse(text, dayfirst=False, yearfirst=True).date()
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def parse_number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got true/false")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().replace(",", "")
        try:
            number = float(Decimal(text))
        except (InvalidOperation, ValueError):
            raise ValueError(f"{value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"{value!r} is not yes/no or true/false")


def coerce_custom_value(field_type: str, value: Any, choices: list[str] | None = None) -> Any:
    """The JSON value stored for a custom field of *field_type*, or None for empty input.

    Dates are stored as ISO strings so they compare correctly as text on every database.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if field_type == "text":
        return str(value).strip()
    if field_type == "number":
        number = parse_number(value)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if field_type == "date":
        return parse_date(value).isoformat()
    if field_type == "boolean":
        return parse_bool(value)
    if field_type == "choice":
        text = str(value).strip()
        allowed = choices or []
        for choice in allowed:
            if choice.lower() == text.lower():
                return choice
        raise ValueError(f"{text!r} is not one of: {', '.join(allowed)}")
    raise ValueError(f"unknown field type {field_type!r}")
