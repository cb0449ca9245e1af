"""Source adapters of the corpus build, on small fixtures."""

from __future__ import annotations

import json
import pickle

import polib
import pytest

from data_tools.corpus.adapters import (
    read_account_templates,
    read_catalog,
    read_cldr,
    read_html_by_id,
    read_html_by_order,
    read_hub_parallel,
    read_hub_text,
    read_i18n_json,
    read_i18n_tree,
    read_text_files,
)
from data_tools.corpus.records import CorpusError
from data_tools.stats import Stats
from tests.paths import FIXTURES

FIX = FIXTURES / "corpus"


# ---- gettext ---------------------------------------------------------------------------------------


def test_po_catalog_skips_and_counts_fuzzy_obsolete_untranslated():
    tally = Stats()
    pairs = list(read_catalog(FIX / "gettext" / "demo.po", "demo", tally=tally))
    by_en = {p.en: p.zh for p in pairs}
    assert by_en["_Open File"] == "開啟檔案(_O)"
    assert by_en["Save the current document under a new name"] == "以新名稱儲存目前的文件"  # msgctxt kept
    assert by_en["%d files were deleted"] == "已刪除 %d 個檔案"  # plural: the general form
    assert "Print the selected pages" not in by_en and "Untranslated message" not in by_en
    dropped = tally.step("adapter.gettext").dropped
    assert dropped["fuzzy"] == 1 and dropped["untranslated"] == 1 and dropped["obsolete"] == 1
    assert tally.step("adapter.gettext").notes["plural_entries"] == 1
    assert tally.step("adapter.gettext").notes["with_msgctxt"] == 1
    assert all(p.origin.startswith("demo.po:line ") for p in pairs)


def test_mo_catalog_round_trip(tmp_path):
    po = polib.pofile(str(FIX / "gettext" / "demo.po"))
    mo = tmp_path / "demo.mo"
    po.save_as_mofile(str(mo))
    pairs = list(read_catalog(mo, "demo"))
    by_en = {p.en: p.zh for p in pairs}
    assert by_en["The rate of interest per period."] == "每期的利率。"
    assert by_en["%d files were deleted"] == "已刪除 %d 個檔案"
    assert "Untranslated message" not in by_en


def test_malformed_mo_names_the_file(tmp_path):
    bad = tmp_path / "broken.mo"
    bad.write_bytes(b"this is not a gettext catalog at all")
    with pytest.raises(CorpusError, match="broken.mo"):
        list(read_catalog(bad, "x"))


def test_missing_catalog_names_the_file(tmp_path):
    with pytest.raises(CorpusError, match="nowhere.mo.*not found"):
        list(read_catalog(tmp_path / "nowhere.mo", "x"))


# ---- HTML --------------------------------------------------------------------------------------------


def test_html_by_id_aligns_segments_and_counts_missing():
    tally = Stats()
    pairs = list(
        read_html_by_id(FIX / "help" / "en-US", FIX / "help" / "zh-TW", "help", glob="text/**/*.html", tally=tally)
    )
    by_en = {p.en: p.zh for p in pairs}
    assert by_en["Rate is the discount rate for a period."] == "Rate 是一個週期的貼現率。"
    # inline markup inside a segment is kept as text
    assert by_en[
        "Returns the present value of an investment based on a series of periodic cash flows and a discount rate."
    ].startswith("根據")
    # a repeated id pairs by occurrence: first "Syntax" heading with the first translation
    assert by_en["Syntax"] == "語法" and by_en["Example"] == "範例"
    assert by_en["Navigation text"] == "導覽文字"  # any element whose id matches the pattern pairs
    assert tally.step("adapter.html_by_id").dropped["id_missing_in_zh"] == 1  # par_id77
    assert by_en["Choose Tools - Options - Calc."] == "選擇工具 - 選項 - Calc。"  # the macOS variant is dropped


def test_html_by_id_missing_tree():
    with pytest.raises(CorpusError, match="not found"):
        list(read_html_by_id(FIX / "help" / "nope", FIX / "help" / "zh-TW", "x"))


def test_html_by_order_whole_and_by_section():
    tally = Stats()
    pairs = list(
        read_html_by_order(FIX / "book", FIX / "book", "book", "*.en.html", (".en.html", ".zh-tw.html"), tally=tally)
    )
    by_en = {p.en: p.zh for p in pairs}
    assert (
        by_en["Now you are in the shell. The shell interprets your commands."]
        == "現在，你就在 shell 下。shell 解析你的指令。"
    )
    assert by_en["Open a terminal window to start working."] == "開啟一個終端機視窗開始工作。"  # CJK line break joined
    assert by_en["Type ls to list the files."] == "輸入 ls 列出檔案。"  # inline code kept, <pre> dropped
    # section s2 has an extra English paragraph: it cannot be aligned and is dropped, counted
    assert "Each package is installed with the package manager." not in by_en
    # dropped: the three blocks of s2 and the page <title>, which lies outside any section
    assert tally.step("adapter.html_by_order").dropped["section_not_aligned"] == 4
    assert tally.step("adapter.html_by_order").notes["pages_aligned_by_section"] == 1


# ---- MediaWiki i18n JSON ------------------------------------------------------------------------------


def test_i18n_json_pairs_and_skips_metadata():
    tally = Stats()
    pairs = list(read_i18n_json(FIX / "i18n/core/en.json", FIX / "i18n/core/zh-hant.json", "wiki", tally=tally))
    by_en = {p.en: p.zh for p in pairs}
    assert by_en["Main Page"] == "首頁"
    assert "Only in English" not in by_en
    assert tally.step("adapter.i18n_json").dropped["untranslated"] == 1
    assert all("@metadata" not in p.origin for p in pairs)


def test_i18n_tree_finds_language_files():
    pairs = list(read_i18n_tree(FIX / "i18n", "wiki", zh_name="zh-hans.json", script="hans"))
    assert {p.en for p in pairs} == {"Main Page", "Only in English"}
    assert all(p.script == "hans" for p in pairs)


def test_bad_json_reports_file_and_line(tmp_path):
    (tmp_path / "en.json").write_text('{\n  "a": "Hello",\n  "b": "World"\n}\n', encoding="utf-8")
    (tmp_path / "zh-hant.json").write_text('{\n  "a": "你好",\n  "b": "世界"\n  "c": "x"\n}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"zh-hant\.json:4:\d+: invalid JSON"):
        list(read_i18n_json(tmp_path / "en.json", tmp_path / "zh-hant.json", "x"))


# ---- CLDR, GnuCash templates ----------------------------------------------------------------------


def test_cldr_pairs_codes_named_in_both(tmp_path):
    en = {"currency_names": {"CHF": "Swiss Franc", "TWD": "New Taiwan Dollar", "XXX": "Unknown Currency"}}
    zh = {"currency_names": {"CHF": "瑞士法郎", "TWD": "新台幣"}}
    for name, data in (("en.dat", en), ("zh_Hant.dat", zh)):
        (tmp_path / name).write_bytes(pickle.dumps(data))
    tally = Stats()
    pairs = list(read_cldr(tmp_path / "en.dat", tmp_path / "zh_Hant.dat", "cldr", tally=tally))
    assert [(p.en, p.zh) for p in pairs] == [("Swiss Franc", "瑞士法郎"), ("New Taiwan Dollar", "新台幣")]
    assert tally.step("adapter.cldr").dropped["currency_names_missing_in_zh"] == 1
    (tmp_path / "bad.dat").write_bytes(b"garbage")
    with pytest.raises(CorpusError, match="bad.dat"):
        list(read_cldr(tmp_path / "bad.dat", tmp_path / "zh_Hant.dat", "cldr"))


def test_gnucash_account_templates_align_by_id():
    tally = Stats()
    pairs = list(read_account_templates(FIX / "accounts/C", FIX / "accounts/zh_TW", "acct", tally=tally))
    by_en = {}
    for p in pairs:
        by_en.setdefault(p.en, set()).add(p.zh)
    assert by_en["Investment Accounts"] == {"投資科目"}
    assert "股利收入" in by_en["Dividend Income"]
    assert "資產" in by_en["Assets"]
    assert tally.step("adapter.gnucash_accounts").dropped["key_missing_in_zh"] == 1  # "Only English"


# ---- monolingual text ----------------------------------------------------------------------------


def test_rst_keeps_prose_and_drops_markup():
    docs = list(read_text_files([FIX / "text/guide.rst"], "rst", "en", fmt="rst", min_par_chars=10))
    text = "\n".join(d.text for d in docs)
    assert "A guide explains how to do one thing. See the index and code samples for more details." in text
    assert "A note's body is prose and is kept." in text
    assert "An example follows:" in text
    for gone in ("int main", "$ make docs", "interactive", "SPDX", "=====", "| a", "Short."):
        assert gone not in text


def test_tagged_corpora_strip_tags():
    pd = list(read_text_files([FIX / "text/peoples_daily.txt"], "pd", "zh", fmt="tagged", min_par_chars=5))
    assert pd[0].text.split("\n") == ["迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）", "中国政府发表讲话。"]
    brown = list(read_text_files([FIX / "text/brown_ca01"], "brown", "en", fmt="tagged", min_par_chars=5))
    lines = brown[0].text.split("\n")
    assert lines[0].startswith('The Fulton County Grand Jury said Friday an investigation produced " no evidence')
    assert lines[0].endswith("took place.")
    assert lines[1] == "It didn't say, however."


def test_json_list_roff_and_docbook():
    docs = list(read_text_files([FIX / "text/doc-0.json"], "nlp", "en", fmt="json_list"))
    assert docs[0].text.split("\n") == [
        "A mat of the weed can be quickly eliminated in heavy infestation.",
        "Japan should play a greater role in preserving the common good.",
    ]
    man = list(read_text_files([FIX / "text/ls.1.gz"], "man", "zh", fmt="roff", min_par_chars=4))
    text = man[0].text
    assert "列出 FILE 的資訊（預設為目前目錄）。 -a 不要忽略以 . 開頭的項目。" in text
    assert ".TH" not in text and "\\f" not in text
    book = list(read_text_files([FIX / "text/guide.xml"], "gnc", "en", fmt="docbook", min_par_chars=4))
    text = book[0].text
    assert "GnuCash is a personal finance manager. A transaction moves money between accounts." in text
    assert "A nested note paragraph." in text
    assert "&unknown;" not in text


def test_text_packs_paragraphs_into_documents(tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("\n\n".join(f"Paragraph number {i} has enough characters." for i in range(10)), encoding="utf-8")
    docs = list(read_text_files([src], "t", "en", fmt="plain", max_chars=100))
    assert len(docs) == 5 and all(len(d.text) <= 100 for d in docs)
    assert sum(d.text.count("Paragraph") for d in docs) == 10


def test_text_errors_name_the_file(tmp_path):
    with pytest.raises(CorpusError, match="missing.txt"):
        list(read_text_files([tmp_path / "missing.txt"], "t", "en"))
    bad = tmp_path / "bad.json"
    bad.write_text('["ok",\n  oops]\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.json:2:\d+"):
        list(read_text_files([bad], "t", "en", fmt="json_list"))
    gz = tmp_path / "bad.rst.gz"
    gz.write_bytes(b"not gzip")
    with pytest.raises(CorpusError, match="bad.rst.gz"):
        list(read_text_files([gz], "t", "en", fmt="rst"))


# ---- Hub datasets, read from local files in the Hub layout -------------------------------------------


def _opus_rows():
    return [
        {"translation": {"en": "Good morning.", "zh": "早上好。"}},
        {"translation": {"en": "The bank raised interest rates.", "zh": "银行提高了利率。"}},
        {"translation": {"en": "", "zh": "空"}},
    ]


def test_hub_parallel_from_local_jsonl(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in _opus_rows()), encoding="utf-8")
    tally = Stats()
    pairs = list(read_hub_parallel("json", "opus", data_files={"train": str(path)}, tally=tally))
    assert [(p.en, p.zh) for p in pairs] == [
        ("Good morning.", "早上好。"),
        ("The bank raised interest rates.", "银行提高了利率。"),
    ]
    assert all(p.script == "hans" for p in pairs)
    assert tally.step("adapter.hub").dropped["missing_field"] == 1


def test_hub_parallel_from_local_parquet(tmp_path):
    import datasets

    path = tmp_path / "train-00000-of-00001.parquet"
    datasets.Dataset.from_list(_opus_rows()).to_parquet(str(path))
    pairs = list(read_hub_parallel("parquet", "opus", data_files={"train": str(path)}, limit=1))
    assert [(p.en, p.zh) for p in pairs] == [("Good morning.", "早上好。")]


def test_hub_text_and_missing_dataset(tmp_path):
    path = tmp_path / "c4.jsonl"
    path.write_text('{"text": "A web page."}\n{"text": ""}\n', encoding="utf-8")
    docs = list(read_hub_text("json", "c4", "en", data_files={"train": str(path)}))
    assert [d.text for d in docs] == ["A web page."]
    with pytest.raises(CorpusError, match="cannot load dataset"):
        list(read_hub_parallel("json", "x", data_files={"train": str(tmp_path / "absent.jsonl")}))


def test_json_list_unescapes_html_and_drops_ref_tags(tmp_path):
    path = tmp_path / "doc-1.json"
    path.write_text(json.dumps(["Research &amp; development.&lt;ref&gt;&lt;/ref&gt; It grew."]), encoding="utf-8")
    docs = list(read_text_files([path], "nlp", "en", fmt="json_list"))
    assert docs[0].text == "Research & development. It grew."


def test_cldr_unpickler_refuses_foreign_globals(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "evil.dat").write_bytes(pickle.dumps({"currency_names": {"X": Evil()}}))
    (tmp_path / "zh.dat").write_bytes(pickle.dumps({"currency_names": {}}))
    with pytest.raises(CorpusError, match="unexpected global"):
        list(read_cldr(tmp_path / "evil.dat", tmp_path / "zh.dat", "cldr"))
