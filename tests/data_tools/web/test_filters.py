"""Quality filters: every rule drops what it should and keeps good English and Chinese text."""

from __future__ import annotations

import pytest

from data_tools.web.filters import (
    FILTER_CLASSES,
    BadWordsFilter,
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    default_filters,
    load_word_list,
)
from data_tools.web.filters.text import count_sentences, ends_with_terminal_punctuation, split_words

GOOD_EN = """Bond prices and interest rates move in opposite directions, and this is one of the first ideas \
that a new investor has to learn.
When market rates rise, the fixed coupon of an existing bond becomes less attractive, so its price falls \
until its yield matches the market.
When rates fall, the opposite happens and the price of the bond goes up.
The size of the change depends on the duration of the bond, which measures how long it takes to be repaid.
A bond with a long duration reacts more strongly to a change in rates than a bond with a short duration.
Investors who hold a bond until it matures still receive its full face value, whatever happened to the price in between.
That is why many savers with a fixed goal choose bonds that mature close to the date when they need the money."""

GOOD_ZH = """債券價格與利率呈反向關係，這是投資人最先要了解的觀念之一。
當市場利率上升時，既有債券的固定票息變得比較沒有吸引力，所以價格會下跌，直到殖利率與市場一致。
當利率下降時，情況正好相反，債券的價格會上漲。
價格變動的幅度取決於債券的存續期間，也就是投資人收回本金所需的時間。
存續期間長的債券，對利率變化的反應比存續期間短的債券更強烈。
持有債券直到到期的投資人，仍然可以拿回全部面額，不論期間價格如何變動。
所以有固定目標的儲蓄者，常會選擇在需要用錢的時候剛好到期的債券。"""


@pytest.mark.parametrize("rule", default_filters(), ids=lambda r: r.name)
@pytest.mark.parametrize(("text", "lang"), [(GOOD_EN, "en"), (GOOD_ZH, "zh")], ids=["en", "zh"])
def test_good_text_passes_every_filter(rule, text, lang):
    result = rule.apply(text, lang)
    assert result.kept, (rule.name, result.reason)
    assert rule(text, lang) is None


def test_text_units():
    assert split_words("Hello, world. 你好，世界。") == ["Hello,", "world.", "你", "好，", "世", "界。"]
    assert split_words("NT$300 元") == ["NT$300", "元"]
    assert count_sentences("One. Two! Three? Four") == 4
    assert count_sentences("第一句。第二句！第三句？") == 3
    assert ends_with_terminal_punctuation('He said "yes."') and ends_with_terminal_punctuation("好。")
    assert not ends_with_terminal_punctuation("It trails off...") and not ends_with_terminal_punctuation("Menu")


# --- Gopher quality ---------------------------------------------------------------------------

LONG = " ".join(["reasonable"] * 5)


@pytest.mark.parametrize(
    ("text", "options", "reason"),
    [
        ("Too short to be a document.", {}, "too_few_words"),
        (GOOD_EN, {"max_doc_words": 50}, "too_many_words"),
        (" ".join(["it is an ox to go by me so"] * 8) + " the and", {}, "mean_word_length_low"),
        (" ".join(["extraordinarily incomprehensible"] * 30) + " the and", {}, "mean_word_length_high"),
        (GOOD_EN + "\n" + " ".join(["#finance #bonds"] * 12), {}, "hash_ratio"),
        (GOOD_EN + "\n" + " ".join(["wait..."] * 25), {}, "ellipsis_ratio"),
        ("\n".join(["• the price of the bond and the rate"] * 20), {}, "bullet_lines"),
        (GOOD_EN + "\n" + "\n".join(["and so the story goes on…"] * 5), {}, "ellipsis_lines"),
        (GOOD_EN + "\n" + " ".join(["12.5 33 0.75 -- 1,000 42"] * 12), {}, "alpha_words_ratio"),
        (" ".join(["market prices rise quickly during periods when investors panic"] * 6), {}, "too_few_stop_words"),
    ],
)
def test_gopher_quality_rules(text, options, reason):
    assert GopherQualityFilter().with_options(**options)(text) == reason


def test_gopher_quality_chinese():
    rule = GopherQualityFilter()
    assert rule(GOOD_ZH, "zh") is None
    assert rule("債券價格下跌。", "zh") == "too_few_words"
    no_stop_chars = "市場利率上升時債券價格下跌投資人損失" * 5  # no 的 是 了 在 和 有 不 這
    assert rule(no_stop_chars, "zh") == "too_few_stop_words"
    # one-character "words": the mean-length rule does not apply to Chinese
    assert rule(GOOD_ZH, "en") == "mean_word_length_low"


def test_thresholds_can_be_turned_off_and_checked():
    text = "Too short to be a document."
    assert GopherQualityFilter(min_doc_words=None, min_stop_words=None)(text) is None
    with pytest.raises(TypeError, match="unknown option"):
        GopherQualityFilter().with_options(min_words=3)


# --- Gopher repetition ------------------------------------------------------------------------

SENTENCES = GOOD_EN.split("\n")


@pytest.mark.parametrize(
    ("text", "options", "reason"),
    [
        ("\n\n".join(SENTENCES[:3] * 2), {}, "dup_para_frac"),
        ("\n\n".join([SENTENCES[0] * 3] + SENTENCES[1:3] + [SENTENCES[0] * 3]), {}, "dup_para_char_frac"),
        ("\n".join(SENTENCES[:3] * 2), {}, "dup_line_frac"),
        ("\n".join([SENTENCES[0] * 3] + SENTENCES[1:5] + [SENTENCES[0] * 3]), {}, "dup_line_char_frac"),
        (GOOD_EN + " " + "interest rates " * 60, {}, "top_2gram_char_frac"),
        (
            " ".join([f"w{i}" for i in range(200)]) + " " + " ".join([f"w{i}" for i in range(60)]),
            {},
            "dup_5gram_char_frac",
        ),
    ],
)
def test_gopher_repetition_rules(text, options, reason):
    assert GopherRepetitionFilter().with_options(**options)(text) == reason


def test_gopher_repetition_top_ngram_needs_a_repeat():
    # a 3-word text: its only 2-gram covers most characters, but it occurs once
    assert GopherRepetitionFilter()("Bonds pay interest.") is None
    assert GopherRepetitionFilter()("   ") == "empty"


def test_gopher_repetition_chinese_characters_are_words():
    repeated = GOOD_ZH.replace("\n", "") + "債券價格與利率" * 20
    assert GopherRepetitionFilter()(repeated, "zh") is not None


# --- C4 ---------------------------------------------------------------------------------------


def test_c4_line_rules_edit_the_text():
    text = "\n".join(
        [
            "Home | About | Contact",
            SENTENCES[0] + "[1]",
            "Please enable JavaScript to view the comments powered by a widget.",
            SENTENCES[1],
            "This site uses cookies to improve your experience.",
            "Too short.",
            "A" * 1001 + " is a very long word.",
            *SENTENCES[2:5],
        ]
    )
    result = C4QualityFilter().apply(text)
    assert result.kept
    assert result.text == "\n".join([SENTENCES[0], *SENTENCES[1:5]])
    assert result.notes["lines_removed: no terminal punctuation"] == 1
    assert result.notes["lines_removed: javascript"] == 1
    assert result.notes["lines_removed: policy notice"] == 1
    assert result.notes["lines_removed: too few words"] == 1
    assert result.notes["lines_removed: word too long"] == 1
    assert result.notes["lines_kept"] == 5


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (GOOD_EN + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", "lorem_ipsum"),
        (GOOD_EN + "\nfunction price(rate) { return 100 / (1 + rate); }.", "curly_bracket"),
        ("\n".join(SENTENCES[:2]), "too_few_sentences"),
        ("Menu\nHome\nLogin", "too_few_sentences"),
    ],
)
def test_c4_page_rules(text, reason):
    assert C4QualityFilter().apply(text).reason == reason


def test_c4_chinese_terminal_punctuation():
    result = C4QualityFilter().apply(GOOD_ZH + "\n首頁 | 關於我們\n相關文章", "zh")
    assert result.kept and result.text == GOOD_ZH
    assert C4QualityFilter(filter_no_terminal_punct=False).apply("Menu item one\n" + GOOD_EN).text.startswith("Menu")


# --- FineWeb ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "options", "reason"),
    [
        (
            "\n".join(
                ["Products and services for every kind of investor"] * 1
                + [f"Section number {i} of the site map" for i in range(9)]
            ),
            {},
            "line_punct_ratio",
        ),
        ("\n".join(SENTENCES[:2] + [f"Item {i}." for i in range(8)]), {}, "short_line_ratio"),
        ("\n".join(SENTENCES + [SENTENCES[3]]), {}, "dup_line_char_ratio"),
        (
            "\n".join(
                ["Supercalifragilistic extraordinarily."] * 1
                + [f"Incomprehensibilities{i} notwithstanding." for i in range(9)]
            ),
            {},
            "list_ratio",
        ),
        ("", {}, "empty"),
    ],
)
def test_fineweb_rules(text, options, reason):
    assert FineWebQualityFilter().with_options(**options)(text) == reason


# --- bad words --------------------------------------------------------------------------------


def test_badwords_whole_words_and_chinese_substrings():
    rule = BadWordsFilter()
    assert rule("What the FUCK is this?") == "badword"
    assert rule("The Scunthorpe cockpit and a shiitake assessment.") is None  # no partial-word hits
    assert rule("這部片是色情片，請勿觀看。", "zh") == "badword"
    assert rule(GOOD_ZH, "zh") is None
    assert rule.hits("shit, shit and more shit") == 3
    assert BadWordsFilter(max_hits=3)("shit, shit and more shit") is None


def test_shipped_word_lists_and_custom_list(tmp_path):
    en, zh = load_word_list("badwords_en.txt"), load_word_list("badwords_zh.txt")
    assert len(en) >= 30 and len(zh) >= 20
    assert all(w == w.strip().lower() and not w.startswith("#") for w in en + zh)
    custom = tmp_path / "words.txt"
    custom.write_text("# comment\nBondage\n\nderivatives  # inline comment\n", encoding="utf-8")
    assert load_word_list(custom) == ("bondage", "derivatives")
    rule = BadWordsFilter(words_en=load_word_list(custom), words_zh=())
    assert rule("Credit derivatives are complex.") == "badword"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_word_list("nope.txt")


def test_filter_registry_and_order():
    assert list(FILTER_CLASSES) == ["gopher_repetition", "gopher_quality", "fineweb_quality", "c4_quality", "badwords"]
    assert [f.name for f in default_filters()] == list(FILTER_CLASSES)
