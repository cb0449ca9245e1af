"""Replace personal data in text with fixed placeholders.

=============== ======================================================== ==================
kind            what is matched                                           placeholder
=============== ======================================================== ==================
e-mail          ``local@domain.tld``                                      ``<EMAIL>``
credit card     13-19 digits (one run, or grouped 4-4-4-x / 4-6-5),      ``<CREDIT_CARD>``
                a known issuer prefix **and** a valid Luhn checksum
US SSN          ``AAA-GG-SSSS`` with the SSA's impossible ranges excluded ``<SSN>``
IP address      IPv4 dotted quads and IPv6 (validated by ``ipaddress``)  ``<IP>``
phone number    North-American ``(555) 123-4567`` / ``555-123-4567``;     ``<PHONE>``
                international ``+CC ...``; Taiwan ``(02) 2345-6789``,
                ``0912-345-678``; mainland mobile ``138 0013 8000``
=============== ======================================================== ==================

Designed to leave ordinary numbers alone: years, dates (``2024-01-31``, ``31/01/2024``),
times (``12:30:45``), prices (``$1,234.56``), version numbers and plain integers of up to
ten digits do not match. Matching runs kind by kind in the order of the table; placeholders
contain no digits, so a replaced span can never be matched again.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable

PLACEHOLDERS: dict[str, str] = {
    "email": "<EMAIL>",
    "credit_card": "<CREDIT_CARD>",
    "ssn": "<SSN>",
    "ip": "<IP>",
    "phone": "<PHONE>",
}

EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
# 13-19 digits written as one run, in groups of four (4-4-4-1..7) or Amex/Diners style (4-6-4/5).
CARD_CANDIDATE_RE = re.compile(
    r"(?<!\d)(?<!\d[.,-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5})(?!\d|[.,-]\d)"
)
# Issuer prefixes: Visa 4; Mastercard 51-55, 2221-2720; Amex 34, 37; Diners 300-305, 36, 38-39;
# JCB 3528-3589; Discover 6011, 644-649, 65; UnionPay 62; Maestro 50, 56-58.
CARD_PREFIX_RE = re.compile(
    r"4|5[0-8]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|30[0-5]|3[689]|35(?:2[89]|[3-8]\d)|6(?:011|4[4-9]|5|2)"
)
SSN_RE = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
IPV4_CANDIDATE_RE = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)")
IPV6_CANDIDATE_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])"
)
_SEP = r"[ .-]"
PHONE_RES: tuple[re.Pattern[str], ...] = (
    # North America: (555) 123-4567, 555-123-4567, 555.123.4567, +1 555 123 4567
    re.compile(rf"(?<![\w+.-])(?:\+?1{_SEP}?)?(?:\(\d{{3}}\) ?|\d{{3}}{_SEP})\d{{3}}{_SEP}\d{{4}}(?![\w-]|\.\d)"),
    # International: +44 20 7946 0958, +886-2-2345-6789, +86 138 0013 8000
    re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-]|\.\d)"),
    # Taiwan landline (02) 2345-6789, 02-2345-6789 and mobile 0912-345-678, 0912 345 678
    re.compile(r"(?<![\w(])(?:\(0\d{1,2}\) ?|0\d{1,2}-)\d{3,4}-?\d{4}(?![\w-]|\.\d)"),
    re.compile(r"(?<![\w-])09\d{2}[ -]?\d{3}[ -]?\d{3}(?![\w-]|\.\d)"),
    # Mainland China mobile: 13800138000, 138 0013 8000, 138-0013-8000
    re.compile(r"(?<![\w-])1[3-9]\d(?:[ -]?\d{4}){2}(?![\w-]|\.\d)"),
)


def luhn_valid(digits: str) -> bool:
    """True if the digit string passes the Luhn checksum (card numbers do)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_card(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group())
    return 13 <= len(digits) <= 19 and CARD_PREFIX_RE.match(digits) is not None and luhn_valid(digits)


def _is_ipv4(match: re.Match[str]) -> bool:
    try:
        ipaddress.IPv4Address(match.group())
    except ValueError:
        return False
    return True


def _is_ipv6(match: re.Match[str]) -> bool:
    text = match.group()
    if not any(c.isdigit() or c.lower() in "abcdef" for c in text):
        return False  # "::" alone, or bare colons
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _phone_digits_ok(match: re.Match[str]) -> bool:
    n = sum(c.isdigit() for c in match.group())
    return 7 <= n <= 15


_RULES: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool] | None], ...] = (
    ("email", EMAIL_RE, None),
    ("credit_card", CARD_CANDIDATE_RE, _is_card),
    ("ssn", SSN_RE, None),
    ("ip", IPV6_CANDIDATE_RE, _is_ipv6),
    ("ip", IPV4_CANDIDATE_RE, _is_ipv4),
    *(("phone", rx, _phone_digits_ok) for rx in PHONE_RES),
)


def check_placeholders(placeholders: dict[str, str]) -> dict[str, str]:
    """Refuse an unknown PII kind or a placeholder with digits (a later rule could match it again)."""
    unknown = sorted(set(placeholders) - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(f"unknown PII kind(s) {unknown}; the kinds are {sorted(PLACEHOLDERS)}")
    for kind, value in placeholders.items():
        if not isinstance(value, str) or any(c.isdigit() for c in value):
            raise ValueError(f"PII placeholder for {kind} must be text without digits, got {value!r}")
    return placeholders


def replace_pii_counted(text: str, placeholders: dict[str, str] | None = None) -> tuple[str, Counter]:
    """Replace PII in ``text``; returns the new text and a count of replacements per kind."""
    placeholders = {**PLACEHOLDERS, **check_placeholders(placeholders or {})}
    counts: Counter = Counter()
    for kind, pattern, check in _RULES:

        def substitute(match: re.Match[str], kind: str = kind, check=check) -> str:
            if check is not None and not check(match):
                return match.group()
            counts[kind] += 1
            return placeholders[kind]

        text = pattern.sub(substitute, text)
    return text, counts


def replace_pii(text: str, placeholders: dict[str, str] | None = None) -> str:
    """``text`` with e-mails, phone numbers, IP addresses, US SSNs and card numbers replaced.

    See the module docstring for what is matched; ``placeholders`` overrides the defaults
    (keys ``email``, ``credit_card``, ``ssn``, ``ip``, ``phone``), e.g. ``{"ssn": "XXX-XX-XXXX"}`` as
    COMP4901B HW1 masks an SSN; a placeholder may not contain digits.
    """
    return replace_pii_counted(text, placeholders)[0]
