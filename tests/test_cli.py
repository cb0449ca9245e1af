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
    expected = tiny_model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0, eos_token_id=[2, 0])
    assert printed == tokenizer.decode(expected[0, ids.shape[1] :], skip_special_tokens=True)


def test_translate_uses_the_chat_prompt(checkpoint, tokenizer, monkeypatch):
    from minimind_hf import cli
    from minimind_hf.prompts import FINANCE_SYSTEM_PROMPT, translation_messages

    prompts = []
    monkeypatch.setattr(cli, "_stream", lambda model, tok, ids, kwargs: prompts.append(tok.decode(ids[0])))
    assert main(["translate", str(checkpoint), "The rate.", "Another one.", "--finance"]) == 0
    expected = [
        tokenizer.apply_chat_template(
            translation_messages(s, system=FINANCE_SYSTEM_PROMPT), tokenize=False, add_generation_prompt=True
        )
        for s in ("The rate.", "Another one.")
    ]
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
        p.numel() for p in AutoModelForCausalLM.from_pretrained(checkpoint).parameters()
    )
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(json.dumps({"en": "The interest rate.", "zh": "利率。"}, ensure_ascii=False) + "\n")
    assert main(["tokenizer", "report", str(pairs)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["en"]["chars"] == 18 and 0 < report["zh-TW"]["tokens_per_char"] <= 1.5


def test_generate_writes_one_file_per_temperature(checkpoint, tokenizer, tiny_model, tmp_path, capsys):
    """HW1's deliverable: greedy and temperature 0.5 from the same prefix, each in a file with its settings."""
    out = tmp_path / "generations"
    assert (
        main(
            [
                "generate",
                str(checkpoint),
                "Hello",
                "--max-new-tokens",
                "6",
                "--temperature",
                "0",
                "0.5",
                "--output-dir",
                str(out),
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["temperature_0.5.txt", "temperature_0.txt"]
    greedy = (out / "temperature_0.txt").read_text()
    ids = tokenizer("Hello", return_tensors="pt")["input_ids"]
    expected = tiny_model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=[2, 0])
    assert greedy.startswith("prompt: Hello\n") and "decoding: greedy" in greedy
    assert greedy.rstrip("\n").endswith(
        "Hello" + tokenizer.decode(expected[0, ids.shape[1] :], skip_special_tokens=True)
    )
    sampled = (out / "temperature_0.5.txt").read_text()
    assert "temperature: 0.5" in sampled and "top_k: None" in sampled and "top_p: None" in sampled


def test_sampling_knobs_apply_only_when_asked(checkpoint, monkeypatch):
    from minimind_hf import cli

    calls = []
    monkeypatch.setattr(cli, "_stream", lambda model, tok, ids, kwargs: calls.append(kwargs) or "")
    assert main(["generate", str(checkpoint), "Hi", "--temperature", "0.7"]) == 0
    assert main(["generate", str(checkpoint), "Hi", "--temperature", "0.7", "--top-p", "0.9", "--top-k", "20"]) == 0
    assert main(["generate", str(checkpoint), "Hi"]) == 0
    plain, narrowed, greedy = calls
    assert (plain["top_k"], plain["top_p"], plain["temperature"]) == (0, 1.0, 0.7)  # nothing narrows the sampling
    assert (narrowed["top_k"], narrowed["top_p"]) == (20, 0.9)
    assert greedy["do_sample"] is False and "top_p" not in greedy


def test_plain_temperature_sampling_matches_softmax_sampling(tiny_model):
    """With top_k=0 and top_p=1.0 generate draws from softmax(logits / T) over the whole vocabulary."""
    ids = torch.tensor([[1, 5, 9]])
    with torch.no_grad():
        probs = torch.softmax(tiny_model(input_ids=ids).logits[0, -1] / 0.5, -1)
    torch.manual_seed(0)
    drawn = tiny_model.generate(
        ids.repeat(4000, 1), max_new_tokens=1, do_sample=True, temperature=0.5, top_k=0, top_p=1.0, pad_token_id=0
    )[:, -1]
    counts = torch.bincount(drawn, minlength=probs.numel()).float() / 4000
    support = (counts > 0).sum().item()
    assert support > 50  # a top-k of 50 (transformers 4's default) would cap this at 50
    assert (counts - probs).abs().max().item() < 0.03


def test_info_on_an_adapter_folder(checkpoint, tmp_path, capsys):
    """`minimind info out/lora` describes the adapter and its base.

    Instead of failing on a folder without config.json.
    """
    from minimind_hf.training.lora import wrap_with_lora

    base = AutoModelForCausalLM.from_pretrained(checkpoint)
    adapter = tmp_path / "lora"
    wrap_with_lora(base, r=4, alpha=8).save_pretrained(adapter)
    assert main(["info", str(adapter)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "peft-adapter" and info["base_model"] == str(checkpoint)
    assert info["adapter"]["r"] == 4 and info["adapter_parameters"] > 0
    assert info["parameters"] == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(checkpoint).parameters())
