"""Evaluation: perplexity, batched translation, sacrebleu scores, the script check, COMET guard, reports, CLI.

The model is a tiny random MiniMind. For translation it is initialised with a wide spread and an
untied head, so that greedy decoding produces varied, non-empty text (a default-initialised tiny
model with tied embeddings just repeats its last token) and batch-size invariance means something.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math

import pytest
import torch

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.evaluation import (
    evaluate_checkpoint,
    load_test_pairs,
    load_validation_texts,
    main,
    perplexity,
    plot_comparison,
    register_eval_command,
    run_eval_command,
    script_check,
    translate,
    translation_scores,
)
from minimind_hf.evaluation.perplexity import _windows
from minimind_hf.evaluation.scores import CometUnavailableError, resolve_comet_checkpoint
from minimind_hf.evaluation.script_check import is_cjk, simplified_characters_in

TEXTS = [
    "The rate of interest per period.",
    "每期的利率。",
    "Returns the net present value of an investment based on a series of periodic cash flows and a discount rate.",
    "Hi",
    "債券的應計利息",
]
SOURCES = [
    "The rate of interest per period.",
    "Net present value",
    "Open the file and save it as a spreadsheet document, then close it.",
    "Hi",
    "Bonds",
    "The depreciation of an asset for a specified period.",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lively_model():
    """A tiny MiniMind whose greedy output is varied text, not one repeated token."""
    torch.manual_seed(0)
    config = MiniMindConfig.from_preset("tiny", initializer_range=0.2, tie_word_embeddings=False)
    return MiniMindForCausalLM(config).eval()


def _hand_mean_nll(model, tokenizer, texts):
    """Mean next-token NLL, one unpadded document at a time, with log_softmax and gather."""
    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            logp = torch.log_softmax(logits.double(), dim=-1)
            targets = torch.tensor(ids[1:])
            total -= logp[torch.arange(len(ids) - 1), targets].sum().item()
            count += len(ids) - 1
    return total / count, count


# --------------------------------------------------------------------------- perplexity


def test_perplexity_is_exp_of_hand_computed_mean_nll(tiny_model, tokenizer):
    expected_loss, expected_tokens = _hand_mean_nll(tiny_model, tokenizer, TEXTS)
    result = perplexity(tiny_model, tokenizer, TEXTS, batch_size=2, show_progress=False)
    assert result["tokens"] == expected_tokens
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(expected_loss), rel=1e-5)
    # an untrained model is close to uniform over the 6400-token vocabulary
    assert 0.5 * math.log(6400) < result["loss"] < 2 * math.log(6400)


def test_perplexity_ignores_padding(tiny_model, tokenizer):
    one_by_one = perplexity(tiny_model, tokenizer, TEXTS, batch_size=1, show_progress=False)
    padded = perplexity(tiny_model, tokenizer, TEXTS, batch_size=len(TEXTS), show_progress=False)
    assert padded["rows"] == one_by_one["rows"] == len(TEXTS)
    assert padded["tokens"] == one_by_one["tokens"]
    assert padded["loss"] == pytest.approx(one_by_one["loss"], rel=1e-5)


def test_windows_score_every_token_once():
    ids = list(range(23))
    for block in (2, 5, 8, 23, 40):
        windows = _windows(ids, block)
        assert all(2 <= len(w) <= block for w in windows)
        predicted = [t for w in windows for t in w[1:]]  # tokens that get a prediction
        assert predicted == ids[1:]


def test_long_documents_are_windowed_and_packing_adds_separators(tiny_model, tokenizer):
    whole = perplexity(tiny_model, tokenizer, TEXTS, show_progress=False)
    windowed = perplexity(tiny_model, tokenizer, TEXTS, block_size=6, show_progress=False)
    assert windowed["tokens"] == whole["tokens"] and windowed["rows"] > len(TEXTS)
    assert windowed["loss"] != pytest.approx(whole["loss"], rel=1e-9)  # shorter contexts change the figure

    n_tokens = sum(len(ids) for ids in tokenizer(TEXTS, add_special_tokens=False)["input_ids"])
    packed = perplexity(tiny_model, tokenizer, TEXTS, packed=True, block_size=16, show_progress=False)
    # one stream of all tokens plus one separator per document; all but the very first are scored
    assert packed["tokens"] == n_tokens + len(TEXTS) - 1
    assert math.isfinite(packed["perplexity"])


def test_plain_documents_keep_control_token_text_as_text(tiny_model, tokenizer):
    doc = ["Type <|im_end|> to finish."]
    as_text = perplexity(tiny_model, tokenizer, doc, split_special_tokens=True, show_progress=False)
    as_control = perplexity(tiny_model, tokenizer, doc, show_progress=False)
    n_plain = len(tokenizer(doc[0], add_special_tokens=False, split_special_tokens=True)["input_ids"])
    assert as_text["tokens"] == n_plain - 1 and as_text["tokens"] > as_control["tokens"]


def test_perplexity_accepts_a_dataset_and_rejects_bad_input(tiny_model, tokenizer):
    from datasets import Dataset

    as_list = perplexity(tiny_model, tokenizer, TEXTS, show_progress=False)
    as_dataset = perplexity(tiny_model, tokenizer, Dataset.from_dict({"text": TEXTS}), show_progress=False)
    assert as_dataset["loss"] == pytest.approx(as_list["loss"], rel=1e-6)
    with pytest.raises(KeyError, match="content"):
        perplexity(tiny_model, tokenizer, Dataset.from_dict({"text": TEXTS}), text_column="content")
    with pytest.raises(ValueError, match="nothing to score"):
        perplexity(tiny_model, tokenizer, ["", "a"], show_progress=False)
    with pytest.raises(TypeError):
        perplexity(tiny_model, tokenizer, "a single string")


# --------------------------------------------------------------------------- scores and script check


def test_identical_strings_score_100_and_unrelated_score_low():
    refs = ["這個銀行的利率是多少？", "每期的利率。", "按一下「儲存」以保存文件。"]
    same = translation_scores(refs, refs)
    assert same["bleu"] == pytest.approx(100.0)
    assert same["chrf"] == pytest.approx(100.0)
    assert "chrf++" not in same  # word bigrams mean nothing for unsegmented Chinese
    assert "tok:zh" in same["signatures"]["bleu"]
    unrelated = translation_scores(["蘋果香蕉橘子", "今天天氣晴朗", "我們去看電影吧"], refs)
    assert unrelated["bleu"] < 5 and unrelated["chrf"] < 10
    partial = translation_scores(["這個銀行的利息是多少？", "每期利率。", "按一下儲存。"], refs)
    assert unrelated["chrf"] < partial["chrf"] < 100
    with pytest.raises(ValueError, match="2 hypotheses but 3 references"):
        translation_scores(refs[:2], refs)


def test_script_check_flags_simplified_and_passes_traditional():
    assert simplified_characters_in("这个银行的利率是多少？") == ["这", "个", "银"]
    assert simplified_characters_in("這個銀行的利率是多少？") == []
    # characters that are at once a Simplified form and a standard Traditional character
    assert simplified_characters_in("台灣的皇后在三公里外干涉，人云亦云") == []
    # Taiwan forms that OpenCC's own Traditional standard writes differently (羣, 牀)
    assert simplified_characters_in("移除群組，起床") == []

    traditional = script_check(["這個銀行的利率是多少？", "每期的利率。", "台北"])
    assert traditional["simplified_output_rate"] == 0.0 and traditional["simplified_char_rate"] == 0.0
    assert traditional["cjk_share"] == 1.0
    assert traditional["method"] == "opencc-dictionary"
    mixed = script_check(["這個銀行", "这个银行", "The bank 銀行"])
    assert mixed["simplified_output_rate"] == pytest.approx(1 / 3)
    assert mixed["outputs_with_simplified"] == 1 and mixed["simplified_chars"] == 3
    assert mixed["cjk_share"] == pytest.approx(10 / 17)  # 10 Han characters among 17 letters
    assert script_check(["copied English source"])["cjk_share"] == 0.0
    assert is_cjk("銀") and not is_cjk("，") and not is_cjk("a")


def test_scores_carry_the_script_check_for_chinese_targets_only():
    zh = translation_scores(["这个银行"], ["這個銀行"])
    assert zh["script"]["simplified_output_rate"] == 1.0
    en = translation_scores(["the bank"], ["the bank"], target_lang="en")
    assert "script" not in en and "tok:13a" in en["signatures"]["bleu"]


def test_traditional_share_counts_only_outputs_that_contain_chinese():
    """Empty and English outputs are not Traditional.

    The share is over outputs holding CJK, and the empty / no-CJK / untranslated shares stand beside it.
    """
    from minimind_hf.evaluation.quality import output_health
    from minimind_hf.evaluation.report import comparison_table

    sources = ["Net income", "Tax rates", "Interest", "Open the file"]
    references = ["淨收入", "稅率", "利息", "開啟檔案"]
    outputs = ["Net income", "Tax Rates", "", "Open the file"]
    english = translation_scores(outputs, references, sources=sources)
    assert english["traditional_share"] is None  # no output holds Chinese: nothing to measure
    health = output_health(outputs, sources, references)
    assert health["empty_share"] == 0.25 and health["no_cjk_share"] == 0.75 and health["chinese_share"] == 0.0
    assert health["untranslated_share"] == 0.75
    mixed_outputs = ["淨收入", "税率", "", "Open the file"]
    mixed = translation_scores(mixed_outputs, references, sources=sources)
    assert mixed["traditional_share"] == 0.5  # 淨收入 of {淨收入, 税率}
    health = output_health(mixed_outputs, sources, references)
    assert health["chinese_share"] == 0.5 and health["no_cjk_share"] == 0.25
    table = comparison_table([{"label": "m", "translation": dict(english, health=health)}])
    assert "100.0%" not in table and "Traditional (of Chinese outputs)" in table and "no CJK" in table


def test_chinese_scores_do_not_depend_on_spaces_between_characters():
    """chrF++ counts a whole unsegmented Chinese sentence as one word, so spacing it changes the score.

    chrF and BLEU with the zh tokenizer do not move. The reported Chinese figures are the second kind.
    """
    from minimind_hf.evaluation.report import comparison_table, floors_table
    from minimind_hf.evaluation.summary import results_markdown

    refs = ["每期的利率。", "按一下儲存。"]
    joined = translation_scores(refs, refs, sources=["The rate per period.", "Click Save."])
    spaced = translation_scores([" ".join(r) for r in refs], refs, sources=["The rate per period.", "Click Save."])
    figures = [k for k, v in joined.items() if isinstance(v, float)]
    assert {"chrf", "bleu"} <= set(figures)
    assert {k: round(spaced[k], 6) for k in figures} == {k: round(joined[k], 6) for k in figures}
    result = {"label": "m", "translation": joined}
    assert "chrF++" not in comparison_table([result])
    assert "chrF++" not in floors_table(dict(result, translation=dict(joined, floors={})))
    joined["generation"], joined["file"] = {"system": None}, "t.jsonl"
    summary = {
        "device": "cpu",
        "date": "today",
        "stage_wall_s": 60,
        "stages": {},
        "evaluations": {"e": dict(result, stage="sft")},
    }
    assert "chrF++" not in results_markdown(summary) and "| chrF | BLEU |" in results_markdown(summary)


# --------------------------------------------------------------------------- COMET guard


def test_comet_is_skipped_with_a_note_when_not_asked_for():
    result = translation_scores(["每期的利率。"], ["每期的利率。"], sources=["The rate."])
    assert result["comet"] is None
    assert any("COMET skipped" in note for note in result["notes"])


def test_comet_requested_without_a_checkpoint_fails_clearly(tmp_path):
    missing = tmp_path / "wmt22-comet-da"
    with pytest.raises(CometUnavailableError) as info:
        translation_scores(["每期的利率。"], ["每期的利率。"], sources=["The rate."], comet_model=missing)
    if importlib.util.find_spec("comet") is not None:  # unbabel-comet imports: the checkpoint is what is missing
        assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    else:
        assert "unbabel-comet" in str(info.value)
    missing.mkdir()
    with pytest.raises(CometUnavailableError, match="checkpoints/model.ckpt"):
        resolve_comet_checkpoint(missing)
    (missing / "checkpoints").mkdir()
    (missing / "checkpoints" / "model.ckpt").write_bytes(b"")
    with pytest.raises(CometUnavailableError, match="hparams.yaml"):
        resolve_comet_checkpoint(missing)
    (missing / "hparams.yaml").write_text("class_identifier: regression_metric\n")
    assert resolve_comet_checkpoint(missing) == missing / "checkpoints" / "model.ckpt"
    assert resolve_comet_checkpoint(missing / "checkpoints" / "model.ckpt") == missing / "checkpoints" / "model.ckpt"
    with pytest.raises(CometUnavailableError, match="no sources"):
        translation_scores(["a"], ["a"], comet_model=missing)


# --------------------------------------------------------------------------- translation


def test_translate_is_batch_size_invariant_under_greedy_decoding(lively_model, tokenizer):
    one = translate(lively_model, tokenizer, SOURCES, batch_size=1, max_new_tokens=10, show_progress=False)
    four = translate(lively_model, tokenizer, SOURCES, batch_size=4, max_new_tokens=10, show_progress=False)
    assert len(one) == len(SOURCES) and all(isinstance(t, str) for t in one)
    assert all(one) and len(set(one)) > 1  # varied, non-empty output: the comparison means something
    assert four == one
    assert tokenizer.padding_side == "right"  # left padding was only borrowed
    assert translate(lively_model, tokenizer, [], show_progress=False) == []


def test_translate_is_batch_size_invariant_with_the_default_length_cap(lively_model, tokenizer):
    """The default ``length_ratio`` caps each row at its own source's length, not its batch's longest.

    Batch 1, 7 and 32 give the same outputs.
    """
    from minimind_hf.evaluation.run import EvalArguments

    defaults = EvalArguments()
    rows = (SOURCES + ["Tax", "Open the file", "A long sentence about the net present value of a series of bonds."]) * 2
    outputs = {
        size: translate(
            lively_model,
            tokenizer,
            rows,
            batch_size=size,
            max_new_tokens=defaults.max_new_tokens,
            length_ratio=defaults.length_ratio,
            show_progress=False,
        )
        for size in (1, 7, 32)
    }
    assert all(outputs[1]) and len(set(outputs[1])) > 1
    assert outputs[7] == outputs[1] and outputs[32] == outputs[1]


class _ScriptedModel(torch.nn.Module):
    """Stands in for a model: ``generate`` appends a fixed answer to every prompt."""

    def __init__(self, answer_ids):
        super().__init__()
        from transformers import GenerationConfig

        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.generation_config = GenerationConfig(max_new_tokens=4)
        self.answer = torch.tensor(answer_ids)
        self.seen = []

    def generate(self, input_ids, attention_mask, generation_config, **kwargs):
        self.seen.append((input_ids.clone(), attention_mask.clone(), generation_config))
        return torch.cat([input_ids, self.answer.expand(len(input_ids), -1)], dim=1)


def test_translate_decodes_only_new_tokens_and_stops_at_im_end(tokenizer):
    answer = tokenizer("每期的利率。", add_special_tokens=False)["input_ids"]
    after = tokenizer("garbage", add_special_tokens=False)["input_ids"]
    model = _ScriptedModel(answer + [tokenizer.convert_tokens_to_ids("<|im_end|>")] + after)
    out = translate(model, tokenizer, ["The rate of interest per period.", "Hi"], batch_size=2, show_progress=False)
    assert out == ["每期的利率。", "每期的利率。"]
    input_ids, attention_mask, config = model.seen[0]
    assert attention_mask[:, -1].all() and not attention_mask[:, 0].all()  # left padding
    assert config.eos_token_id == [tokenizer.convert_tokens_to_ids("<|im_end|>")] and config.do_sample is False
    prompt = tokenizer.decode(input_ids[1][attention_mask[1].bool()])
    assert prompt.endswith("<|im_start|>assistant\n") and "Hi" in prompt

    # the finance system prompt reaches the chat; sampling settings reach the generation config
    from minimind_hf.prompts import FINANCE_SYSTEM_PROMPT

    translate(
        model,
        tokenizer,
        ["Hi"],
        system=FINANCE_SYSTEM_PROMPT,
        do_sample=True,
        temperature=0.7,
        top_p=0.9,
        show_progress=False,
    )
    input_ids, _, config = model.seen[-1]
    assert tokenizer.decode(input_ids[0]).startswith(f"<|im_start|>system\n{FINANCE_SYSTEM_PROMPT}<|im_end|>")
    assert config.do_sample is True and config.temperature == 0.7 and config.top_p == 0.9


# --------------------------------------------------------------------------- data files, end to end, CLI


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def data_files(tmp_path):
    validation = _write_jsonl(
        tmp_path / "validation.jsonl",
        [
            {"conversations": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "你好"}]},
            {"en": "Bonds", "zh": "債券"},
            {"en": " ", "zh": "空"},
            {"chosen": [{"role": "user", "content": "Bonds?"}, {"role": "assistant", "content": "債券"}]},
        ],
    )
    test = _write_jsonl(
        tmp_path / "test.jsonl",
        [
            {"en": "The rate of interest per period.", "zh": "每期的利率。", "id": "calc-1"},
            {"en": "", "zh": "空"},
            {"en": "Net present value", "zh": "淨現值"},
            {"en": "Bonds", "zh": "債券"},
            {"en": "Hi", "zh": "你好"},
        ],
    )
    return {"validation": validation, "test": test}


def test_data_files_are_read_with_counted_drops_and_located_errors(tmp_path, tokenizer, data_files):
    texts, kind, dropped, conversations = load_validation_texts(data_files["validation"], tokenizer)
    assert kind == "chat" and len(texts) == 3 == len(conversations) and dropped == {"empty_en_or_zh": 1}
    assert conversations[1][-1] == {"role": "assistant", "content": "債券"}
    assert texts[0].startswith("<|im_start|>user\nHi<|im_end|>") and "債券<|im_end|>" in texts[1]
    plain = _write_jsonl(tmp_path / "plain.jsonl", [{"text": "The rate."}, {"text": "  "}, {"text": "利率"}])
    assert load_validation_texts(plain, tokenizer)[:3] == (["The rate.", "利率"], "text", {"empty_text": 1})
    _write_jsonl(plain, [{"text": "The rate."}, {"en": "Bonds", "zh": "債券"}])
    with pytest.raises(ValueError, match=r"plain\.jsonl:2: a chat row in a file of text rows"):
        load_validation_texts(plain, tokenizer)
    pairs, dropped, notes = load_test_pairs(data_files["test"], limit=2)
    assert notes == []
    assert [p["zh"] for p in pairs] == ["每期的利率。", "淨現值"] and dropped == {"empty_en_or_zh": 1}
    assert pairs[0]["id"] == "calc-1" and pairs[1]["id"].endswith("test.jsonl:3")

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"en": "a", "zh": "b"}\n{"en": "a",\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not valid JSON"):
        load_test_pairs(bad)
    _write_jsonl(bad, [{"en": "a", "zh": "b"}, {"text": "no pair"}])
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not a translation pair: expected 'en'/'zh'"):
        load_test_pairs(bad)
    _write_jsonl(bad, [{"conversations": [{"role": "robot", "content": "x"}]}])
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: the chat template rejected"):
        load_validation_texts(bad, tokenizer)


@pytest.fixture
def checkpoint(tmp_path, lively_model, tokenizer):
    path = tmp_path / "sft"
    lively_model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_evaluate_checkpoint_end_to_end(checkpoint, data_files, tokenizer):
    result = evaluate_checkpoint(
        checkpoint, data_files, limit=3, batch_size=2, max_new_tokens=6, num_examples=2, show_progress=False
    )
    for name in ("eval.json", "eval.md", "eval.png", "eval_translations.jsonl"):
        assert (checkpoint / name).is_file(), name
    assert (checkpoint / "eval.png").read_bytes().startswith(PNG_MAGIC)
    saved = json.loads((checkpoint / "eval.json").read_text(encoding="utf-8"))
    assert saved["label"] == "sft" and saved["kind"] == "model"
    assert saved["validation"]["documents"] == 3 and saved["validation"]["dropped"] == {"empty_en_or_zh": 1}
    assert saved["validation"]["kind"] == "chat" and saved["validation"]["scored"].startswith("assistant reply tokens")
    assert saved["validation"]["loss"] == pytest.approx(result["validation"]["loss"])
    tr = saved["translation"]
    assert tr["n"] == 3 and tr["dropped"] == {"empty_en_or_zh": 1}
    assert 0 <= tr["chrf"] <= 100 and 0 <= tr["bleu"] <= 100 and tr["comet"] is None
    assert tr["reference_script"]["simplified_output_rate"] == 0.0
    assert len(saved["examples"]) == 2 and saved["examples"][0]["reference"] == "每期的利率。"
    lines = (checkpoint / "eval_translations.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines][0] == "calc-1" and len(lines) == 3

    assert set(tr["health"]) >= {
        "empty_share",
        "looping_share",
        "untranslated_share",
        "over_long_share",
        "length_ratio",
    }
    assert (
        set(tr["floors"]) == {"copy_source", "shuffled_references"} and 0 <= tr["floors"]["copy_source"]["chrf"] <= 100
    )
    assert -1 <= tr["semantic"]["score"] <= 1 and tr["semantic"]["separation"]["pairs"] == 3
    assert tr["generation"]["decoding"] == "greedy" and tr["generation"]["length_ratio"] == 3.0
    row = json.loads(lines[0])
    assert {"chrf", "semantic", "flags", "hypothesis"} <= set(row) and "chrf++" not in row
    assert len(saved["best_examples"]) == 2 and saved["best_examples"][0]["chrf"] >= saved["worst_examples"][0]["chrf"]

    markdown = (checkpoint / "eval.md").read_text(encoding="utf-8")
    assert "| checkpoint | val loss | val ppl | chrF |" in markdown
    assert "## Against the floors" in markdown and "English source copied" in markdown
    assert "## Course bars" in markdown and "## Worst (sentence chrF)" in markdown
    assert f"{saved['validation']['perplexity']:.2f}" in markdown and "每期的利率。" in markdown
    assert "COMET skipped" in markdown


def test_cli_compares_a_model_and_a_peft_adapter(checkpoint, data_files, tmp_path, capsys):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(checkpoint)
    torch.manual_seed(1)
    lora = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False)
    )
    adapter = tmp_path / "runs" / "lora"
    lora.save_pretrained(adapter)

    out = tmp_path / "report"
    argv = [
        str(checkpoint),
        str(adapter),
        "--test",
        str(data_files["test"]),
        "--validation",
        str(data_files["validation"]),
        "--limit",
        "2",
        "--max-new-tokens",
        "4",
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    for name in ("comparison.md", "comparison.json", "comparison.png"):
        assert (out / name).is_file(), name
    assert (out / "sft" / "eval.json").is_file() and (out / "lora" / "eval.md").is_file()
    results = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert [r["kind"] for r in results] == ["model", "peft-adapter"]
    assert results[1]["base_model"] == str(checkpoint)
    assert results[0]["validation"]["loss"] != pytest.approx(results[1]["validation"]["loss"], rel=1e-6)
    printed = capsys.readouterr().out
    assert "| sft |" in printed and "| lora |" in printed

    # wired as a subcommand, as the minimind CLI does
    parser = argparse.ArgumentParser(prog="minimind")
    register_eval_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", str(checkpoint), "--limit", "200", "--system", "finance"])
    assert args.func is run_eval_command and args.limit == 200 and args.checkpoints == [str(checkpoint)]
    assert args.func(args) == 2  # neither --test nor --validation
    assert main([str(tmp_path / "nowhere"), "--test", str(data_files["test"])]) == 1


def test_a_broken_comet_checkpoint_names_the_file(tmp_path):
    pytest.importorskip("comet")  # runs where unbabel-comet is installed (the compat environment)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "model.ckpt").write_bytes(b"not a checkpoint")
    (tmp_path / "hparams.yaml").write_text("class_identifier: regression_metric\n")
    with pytest.raises(CometUnavailableError, match="could not load the COMET checkpoint"):
        translation_scores(["每期的利率。"], ["每期的利率。"], sources=["The rate."], comet_model=tmp_path)


def test_comet_from_the_environment_is_checked_before_any_work(checkpoint, data_files, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIMIND_COMET_MODEL", str(tmp_path / "no-comet-here"))
    with pytest.raises(CometUnavailableError):
        evaluate_checkpoint(checkpoint, data_files, show_progress=False)
    assert not (checkpoint / "eval.json").exists()
    # perplexity alone does not need COMET
    result = evaluate_checkpoint(checkpoint, {"validation": data_files["validation"]}, show_progress=False)
    assert result["translation"] is None and (checkpoint / "eval.json").is_file()
    assert not (checkpoint / "eval.png").exists()


def test_plot_comparison_draws_one_group_per_checkpoint(tmp_path):
    results = [
        {"label": name, "translation": {"chrf": chrf, "bleu": bleu, "n": 200}}
        for name, chrf, bleu in [("pretrain", 3.1, 0.2), ("sft", 21.5, 6.3), ("lora", 25.0, 8.8)]
    ]
    path = plot_comparison(results + [{"label": "no-test", "translation": None}], tmp_path / "plots" / "cmp.png")
    assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 5000
    with pytest.raises(ValueError, match="no result has translation scores"):
        plot_comparison([{"label": "x", "translation": None}], tmp_path / "none.png")


def test_perplexity_windows_follow_the_block_size_the_checkpoint_trained_at(checkpoint, tmp_path):
    """A model pretrained at 64 tokens is scored in 64-token windows (its run_recipe.json says so), not 512.

    Past its training length a model is not measured on what it learned.
    """
    text = " ".join(["The rate of interest per period is applied to the balance."] * 20)
    validation = _write_jsonl(tmp_path / "long.jsonl", [{"text": text}])
    (checkpoint / "run_recipe.json").write_text(json.dumps({"stage": "pretrain", "data": {"block_size": 64}}))
    result = evaluate_checkpoint(checkpoint, {"validation": validation}, check_generation=False, show_progress=False)
    assert result["validation"]["block_size"] == 64 and result["validation"]["block_size_from"] == "run_recipe.json"
    (checkpoint / "run_recipe.json").write_text(json.dumps({"stage": "sft", "training": {"max_length": 96}}))
    result = evaluate_checkpoint(checkpoint, {"validation": validation}, check_generation=False, show_progress=False)
    assert result["validation"]["block_size"] == 96
    given = evaluate_checkpoint(
        checkpoint, {"validation": validation}, block_size=32, check_generation=False, show_progress=False
    )
    assert given["validation"]["block_size"] == 32 and given["validation"]["block_size_from"] == "argument"
