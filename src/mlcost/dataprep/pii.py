"""PII redaction: e-mail addresses, phone numbers, IPv4/IPv6 addresses and credit-card-like numbers.

Matches are replaced by a placeholder (``<EMAIL>``, ``<PHONE>``, ``<IP_ADDRESS>``, ``<CREDIT_CARD>``), never
dropped, and counted by kind. A digit run only counts as a card number when it has 13-19 digits and passes
the Luhn checksum (ISO/IEC 7812-1), which rules out most order numbers and timestamps; a phone number needs
9-15 digits (ITU-T E.164 allows at most 15) and separators in phone-like places. Regular expressions are the
usual approach (BigCode's and datatrove's PII formatters do the same); they miss free-form PII such as names
and addresses, which needs a named-entity model.
"""

from __future__ import annotations

import ipaddress
import re

PLACEHOLDERS = {
    "email": "<EMAIL>",
    "credit_card": "<CREDIT_CARD>",
    "ip_address": "<IP_ADDRESS>",
    "phone": "<PHONE>",
}

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?|\d{2,4}[ .-])\d{2,4}[ .-]?\d{3,4}(?![\w])"
)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a digit string (every second digit from the right doubled)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group())
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _ipv4(m: re.Match[str]) -> bool:
    try:
        ipaddress.IPv4Address(m.group())
    except ValueError:
        return False
    return True


def _ipv6(m: re.Match[str]) -> bool:
    text = m.group()
    if text.count(":") < 2 or not any(c.isalnum() for c in text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _phone(m: re.Match[str]) -> bool:
    # Part of a longer digit-group run (e.g. a 16-digit number that failed the Luhn check) is not a phone.
    before, after = m.string[max(0, m.start() - 2) : m.start()], m.string[m.end() : m.end() + 2]
    if re.fullmatch(r"\d[ .-]", before) or re.fullmatch(r"[ .-]\d", after):
        return False
    return 9 <= sum(c.isdigit() for c in m.group()) <= 15


_RULES = (
    ("email", _EMAIL, None),
    ("credit_card", _CARD, _card),
    ("ip_address", _IPV4, _ipv4),
    ("ip_address", _IPV6, _ipv6),
    ("phone", _PHONE, _phone),
)


def redact(text: str) -> tuple[str, dict[str, int]]:
    """The text with PII replaced by placeholders, and the number of replacements by kind."""
    counts: dict[str, int] = {}
    for kind, pattern, valid in _RULES:

        def sub(m: re.Match[str], kind: str = kind, valid=valid) -> str:  # type: ignore[no-untyped-def]
            if valid is not None and not valid(m):
                return m.group()
            counts[kind] = counts.get(kind, 0) + 1
            return PLACEHOLDERS[kind]

        text = pattern.sub(sub, text)
    return text, counts
