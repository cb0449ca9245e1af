"""clean_text: mojibake repair, Unicode normalisation, whitespace and control characters."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from data_tools.web.clean import clean_text


def test_mojibake_is_repaired():
    assert clean_text("The cafÃ© serves crÃ¨me brÃ»lÃ©e.") == "The café serves crème brûlée."
    assert clean_text("â€œQuotedâ€\x9d text") == "“Quoted” text"
    zh = "債券價格與利率呈反向關係。"
    assert clean_text(zh.encode("utf-8").decode("cp1252", errors="replace")) != zh  # lossy: not repairable
    assert clean_text(zh.encode("utf-8").decode("latin-1")) == zh


def test_normalisation_forms():
    decomposed = "Cafe\u0301 se\u0301ance"
    assert clean_text(decomposed) == "Café séance"
    assert clean_text(decomposed) == unicodedata.normalize("NFC", decomposed)
    # NFC keeps full-width Chinese punctuation and compatibility characters; NFKC folds them
    assert clean_text("你好，世界！ｆｉｌｅ①") == "你好，世界！ｆｉｌｅ①"
    assert clean_text("你好，世界！ｆｉｌｅ①", normalization="NFKC") == "你好,世界!file1"


def test_whitespace_and_control_characters():
    raw = "  Line one\t\tstill\u00a0one \r\n\r\n\r\n\r\nLine\x07 two\u200b\x00 \n\x1b[31mred\x1b[0m\n\n"
    assert clean_text(raw) == "Line one still one\n\nLine two\nred"
    assert clean_text("soft\u00adhyphen and zero\ufeffwidth") == "softhyphen and zerowidth"
    assert clean_text("") == ""
    assert clean_text(" \n\t\n ") == ""


def test_mojibake_repair_can_be_turned_off():
    assert clean_text("cafÃ©", fix_mojibake=False) == "cafÃ©"


text_with_junk = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=5),
        st.sampled_from(
            ["\n", "\r\n", "\t", " ", "\u00a0", "\u200b", "\x00", "\x1f", "\x7f", "\x85", "Ã©", "，", "。"]
        ),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(text_with_junk)
def test_output_invariants(text):
    out = clean_text(text)
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b\ufeff]", out)  # no control chars but \n
    assert "\n\n\n" not in out
    assert out == out.strip("\n")
    for line in out.split("\n"):
        assert line == line.strip()
        assert "  " not in line
    assert unicodedata.is_normalized("NFC", out)
    # whitespace / normalisation clean-up is idempotent (ftfy's heuristics need not be on
    # contrived input such as "\xa0Â\x80", which it repairs in two steps)
    assert clean_text(out, fix_mojibake=False) == out
