"""PII replacement: planted personal data never survives; ordinary numbers are left alone."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_tools.web.pii import PLACEHOLDERS, luhn_valid, replace_pii, replace_pii_counted

SETTINGS = settings(max_examples=150, deadline=None)

# --- strategies for planted PII ---------------------------------------------------------------

_local = st.from_regex(r"[a-z][a-z0-9]{0,8}(?:[._+-][a-z0-9]{1,6}){0,2}", fullmatch=True)
_domain = st.from_regex(r"[a-z][a-z0-9]{1,10}(?:-[a-z0-9]{1,5})?", fullmatch=True)
_tld = st.sampled_from(["com", "org", "net", "tw", "co.uk", "com.tw", "io", "info"])
emails = st.builds(lambda u, d, t: f"{u}@{d}.{t}", _local, _domain, _tld)

ipv4s = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6s = st.ip_addresses(v=6).map(str).filter(lambda s: s != "::")  # "::" alone is left as is

ssns = st.builds(
    lambda a, g, s: f"{a:03d}-{g:02d}-{s:04d}",
    st.integers(1, 899).filter(lambda a: a != 666),
    st.integers(1, 99),
    st.integers(1, 9999),
)


def _with_luhn(prefix_and_body: str) -> str:
    for check in "0123456789":
        if luhn_valid(prefix_and_body + check):
            return prefix_and_body + check
    raise AssertionError("unreachable")


def _card(prefix: str, length: int, rest: str, sep: str) -> str:
    number = _with_luhn((prefix + rest)[: length - 1])
    if sep and length == 16:
        return sep.join(number[i : i + 4] for i in range(0, 16, 4))
    if sep and length == 15:  # Amex grouping 4-6-5
        return sep.join([number[:4], number[4:10], number[10:]])
    return number


cards = st.one_of(
    st.builds(
        _card,
        st.sampled_from(["4", "51", "55", "2221", "6011", "65", "62"]),
        st.just(16),
        st.text("0123456789", min_size=20, max_size=20),
        st.sampled_from(["", " ", "-"]),
    ),
    st.builds(
        _card,
        st.sampled_from(["34", "37"]),
        st.just(15),
        st.text("0123456789", min_size=20, max_size=20),
        st.sampled_from(["", " "]),
    ),
    st.builds(
        _card, st.just("4"), st.sampled_from([13, 19]), st.text("0123456789", min_size=20, max_size=20), st.just("")
    ),
)

_d = lambda n: st.text("0123456789", min_size=n, max_size=n)  # noqa: E731
phones = st.one_of(
    st.builds(lambda a, b, c: f"({a}) {b}-{c}", _d(3), _d(3), _d(4)),
    st.builds(lambda a, b, c, s: f"{a}{s}{b}{s}{c}", _d(3), _d(3), _d(4), st.sampled_from(["-", ".", " "])),
    st.builds(lambda a, b, c: f"+1 {a} {b} {c}", _d(3), _d(3), _d(4)),
    st.builds(lambda cc, a, b, c: f"+{cc} {a} {b} {c}", st.integers(2, 99), _d(2), _d(4), _d(4)),
    st.builds(lambda a, b: f"(02) {a}-{b}", _d(4), _d(4)),
    st.builds(lambda a, b: f"0912-{a}-{b}", _d(3), _d(3)),
    st.builds(
        lambda p, a, b, c, s: f"1{p}{a}{s}{b}{s}{c}",
        st.sampled_from("3456789"),
        _d(1),
        _d(4),
        _d(4),
        st.sampled_from(["", " ", "-"]),
    ),
)

PII = {"email": emails, "ip": st.one_of(ipv4s, ipv6s), "ssn": ssns, "credit_card": cards, "phone": phones}

# Words without digits or '@' to build the text around the planted items.
words = st.lists(
    st.sampled_from(
        "the report was filed by our office on time and everyone agreed 報告 已經 送出 請 聯絡 我們".split()
    ),
    min_size=0,
    max_size=6,
).map(" ".join)


@pytest.mark.parametrize("kind", sorted(PII))
def test_planted_pii_never_survives(kind):
    @SETTINGS
    @given(before=words, item=PII[kind], after=words, punct=st.sampled_from(["", ".", ",", ";", ")", "。", "，"]))
    def check(before, item, after, punct):
        text = f"{before} {item}{punct} {after}".strip()
        out, counts = replace_pii_counted(text)
        assert item not in out
        assert PLACEHOLDERS[kind] in out, (text, out)
        # no run of 7+ digits of the planted item is left anywhere
        digits = re.sub(r"\D", "", item)
        if len(digits) >= 7:
            assert digits not in re.sub(r"\D", "", out)

    check()


@SETTINGS
@given(
    items=st.lists(
        st.sampled_from(sorted(PII)).flatmap(lambda k: PII[k].map(lambda v: (k, v))), min_size=1, max_size=5
    ),
    glue=words,
)
def test_several_kinds_in_one_text(items, glue):
    text = f" {glue} ".join(v for _, v in items)
    out = replace_pii(text)
    for _, value in items:
        assert value not in out


# --- ordinary numbers are left alone ----------------------------------------------------------

years = st.integers(1000, 2100).map(str)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
    st.dates().map(lambda d: d.strftime("%B %d, %Y")),
    st.dates().map(lambda d: f"{d.year}年{d.month}月{d.day}日"),
)
times = st.times().map(lambda t: t.strftime("%H:%M:%S"))
prices = st.one_of(
    st.decimals(0, 10**7, places=2).map(lambda x: f"${x:,.2f}"),
    st.integers(0, 10**6).map(lambda x: f"NT${x:,}"),
    st.decimals(0, 10**5, places=2).map(lambda x: f"€{x}"),
    st.integers(0, 10**6).map(lambda x: f"{x:,} 元"),
)
integers = st.integers(0, 9_999_999_999).map(str)
grouped = st.integers(0, 10**12).map(lambda x: f"{x:,}")
decimals = st.floats(0, 1e6, allow_nan=False).map(lambda x: f"{x:.3f}")
percents = st.integers(0, 100).map(lambda x: f"{x}%")
versions = st.tuples(st.integers(0, 20), st.integers(0, 99), st.integers(0, 99)).map(lambda t: "v{}.{}.{}".format(*t))
ordinary = st.one_of(years, dates, times, prices, integers, grouped, decimals, percents, versions)


@SETTINGS
@given(before=words, item=ordinary, after=words)
def test_ordinary_numbers_are_left_alone(before, item, after):
    text = f"{before} {item} {after}".strip()
    assert replace_pii(text) == text


@SETTINGS
@given(items=st.lists(ordinary, min_size=2, max_size=6))
def test_lists_of_ordinary_numbers_are_left_alone(items):
    text = "In the table: " + ", ".join(items) + "."
    assert replace_pii(text) == text


# --- examples ---------------------------------------------------------------------------------


def test_examples():
    text = (
        "Write to jane.doe+news@example.co.uk or call (555) 123-4567; server 192.168.0.1 and fe80::1; "
        "SSN 078-05-1120; card 4111 1111 1111 1111. 台北 (02) 2345-6789，手機 0912-345-678。"
    )
    out, counts = replace_pii_counted(text)
    assert out == (
        "Write to <EMAIL> or call <PHONE>; server <IP> and <IP>; SSN <SSN>; card <CREDIT_CARD>. "
        "台北 <PHONE>，手機 <PHONE>。"
    )
    assert counts == {"email": 1, "phone": 3, "ip": 2, "ssn": 1, "credit_card": 1}


def test_luhn_and_card_checks():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert replace_pii("card 4111 1111 1111 1112") == "card 4111 1111 1111 1112"  # fails Luhn
    assert replace_pii("id 1111111111111117") == "id 1111111111111117"  # Luhn-valid, no issuer prefix
    assert replace_pii("SSN 666-12-3456 or 000-12-3456") == "SSN 666-12-3456 or 000-12-3456"  # never issued
    assert replace_pii("addr 999.1.1.1 and 1.2.3") == "addr 999.1.1.1 and 1.2.3"
    assert replace_pii("time 12:30:45, ratio 3:2, std::vector") == "time 12:30:45, ratio 3:2, std::vector"


def test_custom_placeholders():
    assert replace_pii("mail a@b.org", {"email": "[email]"}) == "mail [email]"


def test_hw1_ssn_mask_and_placeholder_checks():
    assert replace_pii("SSN 123-45-6789 on file", {"ssn": "XXX-XX-XXXX"}) == "SSN XXX-XX-XXXX on file"
    with pytest.raises(ValueError, match="without digits"):
        replace_pii("x", {"ssn": "000-00-0000"})
    with pytest.raises(ValueError, match="unknown PII kind"):
        replace_pii("x", {"passport": "<P>"})
