"""HTML -> text: charset detection and main-content extraction with both extractors."""

from __future__ import annotations

import pytest

from data_tools.web.clean import clean_text
from data_tools.web.extract import EXTRACTORS, decode_html, html_to_text
from data_tools.web.read import read_html_pages
from tests import paths

FIXTURES = paths.FIXTURES / "warc"

ARTICLE = [
    "When market interest rates rise, the price of an existing bond falls, because its fixed coupon "
    "is now less attractive than the coupons of newly issued bonds.",
    "The size of the move depends on the bond's duration: a longer duration means a larger price "
    "change for the same change in rates.",
    "Investors who hold a bond to maturity still receive its face value, whatever happened to its price in between.",
]
BOILERPLATE = ["About us", "Ten tips for saving", "All rights reserved", "var x"]

PAGE = f"""<!DOCTYPE html><html><head><title>Bond basics</title>
<script>var x = {{a: 1}};</script><style>p {{color: red}}</style></head>
<body><header><nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li>
<li><a href="/contact">Contact</a></li></ul></nav></header>
<main><article><h1>How bond prices move</h1>{"".join(f"<p>{p}</p>" for p in ARTICLE)}</article></main>
<aside class="sidebar"><h3>Related</h3><ul><li><a href="/x">Ten tips for saving</a></li>
<li><a href="/y">Best credit cards 2024</a></li></ul></aside>
<footer><p>Copyright 2024 Example Finance. All rights reserved.</p></footer></body></html>"""


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_main_content_kept_boilerplate_removed(extractor):
    text = html_to_text(PAGE, extractor)
    for paragraph in ARTICLE:
        assert paragraph in text
    for junk in BOILERPLATE:
        assert junk not in text
    # one paragraph per line
    assert len([line for line in text.splitlines() if line.strip()]) == len(ARTICLE) + 1


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_real_iana_page(extractor):
    page = next(p for p in read_html_pages(FIXTURES / "iana-subset.warc.gz") if p.url == "http://www.iana.org/about")
    text = html_to_text(page.payload, extractor, http_charset=page.http_charset)
    assert "The Internet Assigned Numbers Authority (IANA) is a department of ICANN" in text
    assert "<div" not in text and "function(" not in text


def test_unknown_extractor():
    with pytest.raises(ValueError, match="unknown extractor 'lxml'"):
        html_to_text(PAGE, "lxml")  # type: ignore[arg-type]


ZH = "這是一個繁體中文的測試頁面，用來檢查編碼偵測是否正確。債券價格與利率呈反向關係，利率上升時債券價格下跌。"


@pytest.mark.parametrize(
    ("encoding", "meta", "header", "expected"),
    [
        ("big5", '<meta charset="big5">', None, "big5"),  # <meta charset>
        ("big5", '<meta http-equiv="Content-Type" content="text/html; charset=big5">', None, "big5"),
        ("big5", "", "Big5", "big5"),  # HTTP header
        ("gbk", "", None, "gb18030"),  # no declaration: statistical detection
        ("utf-8", "", None, "utf-8"),
    ],
)
def test_charset_detection(encoding, meta, header, expected):
    html = f"<html><head>{meta}<title>測試</title></head><body><p>{ZH}</p></body></html>"
    payload = html.encode(encoding)
    text, used = decode_html(payload, header)
    assert used == expected
    assert ZH in text
    assert ZH in html_to_text(payload, http_charset=header)


def test_wrong_utf8_header_falls_back_to_detection():
    payload = f"<html><body><p>{ZH}</p></body></html>".encode("big5")
    text, used = decode_html(payload, "utf-8")  # not valid UTF-8 -> detector decides
    assert used != "utf-8"
    assert ZH in text


@pytest.mark.parametrize("body", [ZH, "Café crème and a naïve façade, déjà vu."])
def test_wrong_latin1_header_is_repaired(body):
    # A UTF-8 page served as ISO-8859-1: either the bytes do not decode as windows-1252 and the
    # detector takes over, or they do and ftfy repairs the mojibake in clean_text.
    payload = f"<html><body><p>{body}</p></body></html>".encode()
    assert body in clean_text(html_to_text(payload, http_charset="iso-8859-1"))


def test_latin1_page_and_bad_bytes():
    payload = "<html><body><p>Café crème, naïve façade.</p></body></html>".encode("cp1252")
    assert "Café crème, naïve façade." in html_to_text(payload)
    broken = b"<html><body><p>ok \xff\xfe\xfa text</p></body></html>"
    assert "ok" in html_to_text(broken)  # never raises on undecodable bytes
