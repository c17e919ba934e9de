"""Normalising what people sign in with: email addresses and Indian mobile numbers (E.164).

Pure functions used by the schemas and the service, so `Asha@Example.com` and `+91 98450 12345`
find the same account as `asha@example.com` and `+919845012345`.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

_INDIAN_MOBILE = re.compile(r"^\+91[6-9]\d{9}$")


def normalize_phone(raw: str) -> str:
    """`98450 12345`, `098450-12345`, `+91 98450 12345` -> `+919845012345`; ValueError otherwise."""
    digits = re.sub(r"[\s\-().]", "", raw)
    if digits.startswith("+"):
        candidate = digits
    elif digits.startswith("0091"):
        candidate = "+" + digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        candidate = "+91" + digits[1:]
    elif len(digits) == 12 and digits.startswith("91"):
        candidate = "+" + digits
    else:
        candidate = "+91" + digits
    if not _INDIAN_MOBILE.match(candidate):
        raise ValueError("must be an Indian mobile number, e.g. +919845012345")
    return candidate


def normalize_email(raw: str) -> str:
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized.lower()


def classify(identifier: str) -> tuple[str, str]:
    """("email" | "phone", normalised value) for a login identifier; ValueError if neither."""
    text = identifier.strip()
    if "@" in text:
        return "email", normalize_email(text)
    return "phone", normalize_phone(text)
