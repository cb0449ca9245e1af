"""Output health, floors, the semantic score, test-set layouts and the decoding knobs of `minimind eval`."""

from __future__ import annotations

import json

import pytest

from minimind_hf.evaluation import corpus_scores, floors, generate_translations, load_test_pairs, output_health
from minimind_hf.evaluation.quality import derangement, is_looping, is_untranslated
from minimind_hf.evaluation.report import course_bars_table
from minimind_hf.evaluation.translate import length_cap


@pytest.mark.parametrize("text", ["在在在在", "輸入 URL.org.org.org", "的檔案的檔案的檔案", "abcabcabc"])
def test_loops_are_found(text):
    assert is_looping(text)


@pytest.mark.parametrize("text", ["每期的利率。", "1000000", "……", "=F.INV(0.5;5;10)", "哈哈", "2. 2. 2."])
def test_ordinary_text_is_not_a_loop(text):
    assert not is_looping(text)


def test_untranslated_and_health_shares():
    sources = ["Open the file", "Save", "Close"]
    references = ["開啟檔案", "儲存", "關閉"]
    hypotheses = ["Open the file", "", "關閉關閉關閉關閉關閉關閉關閉關閉關閉"]
    assert is_untranslated("Open the file", "Open the file", "開啟檔案")
    assert is_untranslated("Save it", "Save", "儲存") and not is_untranslated(
        "開啟 GnuCash", "Open GnuCash", "開啟 GnuCash"
    )
    health = output_health(hypotheses, sources, references)
    assert health["untranslated_share"] == pytest.approx(1 / 3) and health["empty_share"] == pytest.approx(1 / 3)
    assert health["looping_share"] == pytest.approx(1 / 3) and health["over_long_share"] == pytest.approx(1 / 3)
    assert health["length_ratio"] == pytest.approx((13 + 0 + 18) / 8)


def test_derangement_moves_everything():
    for n in (2, 3, 10, 101):
        perm = derangement(n, seed=n)
        assert sorted(perm) == list(range(n)) and all(perm[i] != i for i in range(n))


def test_floors_score_the_copied_source_and_shuffled_references():
    sources = ["GnuCash 4.13", "Open", "Print"]
    references = ["GnuCash 4.13 版", "開啟", "列印"]
    result = floors(corpus_scores, references, sources, references)
    assert result["copy_source"]["chrf"] > 0  # names and numbers stay Latin in zh-TW references
    assert result["shuffled_references"]["chrf"] < corpus_scores(references, references)["chrf"] == 100


def test_semantic_score_separates_matched_from_mismatched_pairs():
    from minimind_hf.evaluation.semantic import separation, similarities

    sources = ["The interest rate per period.", "Open the file.", "The weather is cold today.", "Print the page."]
    references = ["每期的利率。", "開啟檔案。", "今天天氣很冷。", "列印此頁。"]
    sims = similarities(references, references)
    assert sims == pytest.approx([1.0] * 4, abs=1e-5)
    result = separation(sources, references, derangement(4))
    assert result["matched_mean"] > result["mismatched_mean"] + 0.2 and result["auc"] > 0.8
    assert similarities(["", "開啟檔案。"], ["開啟檔案。", "開啟檔案。"])[0] == 0.0


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_flores_and_wmt_layouts(tmp_path):
    flores = _jsonl(
        tmp_path / "flores.jsonl", [{"id": 1, "sentence_eng_Latn": "Hello.", "sentence_zho_Hant": "你好。"}]
    )
    [pair], _, notes = load_test_pairs(flores)
    assert (pair["en"], pair["zh"], notes) == ("Hello.", "你好。", [])
    wmt = _jsonl(
        tmp_path / "wmt.jsonl",
        [{"translation": {"en": "The software.", "zh": "软件。"}}, {"translation": {"en": "", "zh": "空"}}],
    )
    pairs, dropped, notes = load_test_pairs(wmt)
    assert pairs[0]["zh"] == "軟體。" and pairs[0]["zh_original"] == "软件。"  # s2twp: Taiwan vocabulary too
    assert dropped == {"empty_en_or_zh": 1} and "OpenCC s2twp" in notes[0]


def test_parquet_test_files_and_unknown_layouts(tmp_path):
    import datasets

    path = tmp_path / "flores.parquet"
    datasets.Dataset.from_list([{"sentence_eng_Latn": "Bonds", "sentence_zho_Hans": "债券"}]).to_parquet(str(path))
    [pair], _, notes = load_test_pairs(path)
    assert pair["zh"] == "債券" and notes
    bad = _jsonl(tmp_path / "bad.jsonl", [{"source": "x"}])
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not a translation pair"):
        load_test_pairs(bad)
    with pytest.raises(FileNotFoundError, match="neither a local test file nor a loadable Hub dataset"):
        load_test_pairs("no-such-user/no-such-dataset")


def test_length_cap():
    assert length_cap(10, 2.0, 128) == 28 and length_cap(100, 2.0, 64) == 64 and length_cap(5, None, 64) == 64


def test_candidates_and_the_length_cap(tiny_model, tokenizer):
    sources = ["The rate.", "Open the file now please."]
    greedy = generate_translations(tiny_model, tokenizer, sources, max_new_tokens=40, show_progress=False)
    capped = generate_translations(
        tiny_model, tokenizer, sources, max_new_tokens=40, length_ratio=0.5, show_progress=False
    )
    for _full, short, src in zip(greedy, capped, sources, strict=True):
        n = len(tokenizer(src)["input_ids"])
        assert len(tokenizer(short[0], add_special_tokens=False)["input_ids"]) <= length_cap(n, 0.5, 40) + 1
    sampled = generate_translations(
        tiny_model,
        tokenizer,
        sources,
        do_sample=True,
        num_return_sequences=3,
        temperature=1.0,
        max_new_tokens=8,
        show_progress=False,
    )
    assert [len(c) for c in sampled] == [3, 3]


def test_course_bars_say_not_measured_without_comet():
    results = [
        {"label": "pretrain", "stage": "pretrain", "validation": {"perplexity": 12.0}, "translation": None},
        {"label": "sft", "stage": "sft", "validation": None, "translation": {"comet": None}},
        {"label": "dpo", "stage": "dpo", "validation": None, "translation": {"comet": 0.71}},
        {"label": "lora", "stage": "lora", "validation": None, "translation": {"comet": 0.5}},
    ]
    table = course_bars_table(results)
    assert "| pretrain | pretrain | validation perplexity < 15 on the pretraining validation text | 12 | met |" in table
    assert "| sft | sft | COMET > 0.6 on the general test set | – | not measured (no COMET checkpoint given) |" in table
    assert "| 0.71 | met |" in table and "| 0.5 | not met |" in table


def test_a_course_bar_applies_only_on_its_own_test_set():
    """The SFT bar is on the general test set: SFT scored on the finance test set is not held to it."""
    results = [
        {"label": "sft-general", "stage": "sft", "translation": {"comet": 0.61, "file": "data/sample/sft.test.jsonl"}},
        {"label": "sft-finance", "stage": "sft", "translation": {"comet": 0.3, "file": "data/sample/lora.test.jsonl"}},
    ]
    table = course_bars_table(results)
    assert "| sft-general | sft | COMET > 0.6 on the general test set | 0.61 | met |" in table
    assert (
        "| sft-finance | sft | – | – | no bar on `lora.test.jsonl` (the sft bar, COMET > 0.6, is on the general "
        "test set) |"
    ) in table
