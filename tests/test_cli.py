"""The `minimind` command on a tiny saved checkpoint."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from minimind_hf.cli import main


@pytest.fixture
def checkpoint(saved_tiny):
    return saved_tiny


def test_generate_streams_the_greedy_continuation(checkpoint, tokenizer, tiny_model, capsys):
    assert main(["generate", str(checkpoint), "Hello", "--max-new-tokens", "5"]) == 0
    printed = capsys.readouterr().out.strip("\n")
    ids = tokenizer("Hello", return_tensors="pt")["input_ids"]
    expected = tiny_model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0, eos_token_id=2)
    assert printed == tokenizer.decode(expected[0, ids.shape[1]:], skip_special_tokens=True)


def test_translate_uses_the_chat_prompt(checkpoint, tokenizer, monkeypatch):
    from minimind_hf import cli
    from minimind_hf.prompts import FINANCE_SYSTEM_PROMPT, translation_messages

    prompts = []
    monkeypatch.setattr(cli, "_stream", lambda model, tok, ids, kwargs: prompts.append(tok.decode(ids[0])))
    assert main(["translate", str(checkpoint), "The rate.", "Another one.", "--finance"]) == 0
    expected = [tokenizer.apply_chat_template(translation_messages(s, system=FINANCE_SYSTEM_PROMPT), tokenize=False,
                                              add_generation_prompt=True) for s in ("The rate.", "Another one.")]
    assert prompts == expected


def test_export_to_llama_gives_the_same_logits(checkpoint, tmp_path, tiny_model):
    out = tmp_path / "llama"
    assert main(["export", str(checkpoint), str(out), "--to", "llama"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]
    assert config["rope_theta"] == 1e6 and (out / "tokenizer.json").exists()
    llama = AutoModelForCausalLM.from_pretrained(out).eval()
    assert isinstance(llama, LlamaForCausalLM)
    ids = torch.randint(0, 6400, (1, 12))
    with torch.no_grad():
        assert (llama(input_ids=ids).logits - tiny_model(input_ids=ids).logits).abs().max() < 1e-5


def test_info_and_tokenizer_report(checkpoint, tmp_path, capsys):
    assert main(["info", str(checkpoint)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_type"] == "minimind" and info["parameters"] == sum(
        p.numel() for p in AutoModelForCausalLM.from_pretrained(checkpoint).parameters())
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(json.dumps({"en": "The interest rate.", "zh": "利率。"}, ensure_ascii=False) + "\n")
    assert main(["tokenizer", "report", str(pairs)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["en"]["chars"] == 18 and 0 < report["zh-TW"]["tokens_per_char"] <= 1.5
