"""The one checkpoint loader: full models and PEFT adapters, and the tokenizer rule with its fit check."""

from __future__ import annotations

import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.checkpoints import check_tokenizer_fits, load_checkpoint, resolve_dtype
from minimind_hf.cli import main
from minimind_hf.tokenization import load_tokenizer, save_tokenizer
from tests.paths import ROOT

IDS = torch.tensor([[1, 5, 9, 300, 2]])


@pytest.fixture
def base(saved_tiny):
    return saved_tiny


@pytest.fixture
def adapter(base, tmp_path):
    """A LoRA adapter with non-zero weights (so merging changes the logits), saved without a tokenizer."""
    torch.manual_seed(1)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(base), config)
    path = tmp_path / "runs" / "lora"
    lora.save_pretrained(path)
    return path


def _logits(model):
    with torch.no_grad():
        return model(input_ids=IDS).logits


def test_a_full_model_loads_with_its_own_tokenizer(base, tiny_model):
    loaded = load_checkpoint(base, dtype="float32")
    assert (loaded.kind, loaded.base) == ("model", None) and not loaded.model.training
    assert (_logits(loaded.model) - _logits(tiny_model)).abs().max() < 1e-6
    assert len(loaded.tokenizer) == 6400 and loaded.tokenizer.eos_token == "<|im_end|>"
    assert load_checkpoint(base, dtype="bfloat16").model.dtype == torch.bfloat16
    assert resolve_dtype("auto", "cpu") == torch.float32
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float8")


def test_an_adapter_loads_on_its_recorded_base_merged_or_not(base, adapter):
    expected = _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval())
    merged = load_checkpoint(adapter, dtype="float32")
    assert merged.kind == "peft-adapter" and merged.base == str(base)
    assert not isinstance(merged.model, PeftModel)
    assert (_logits(merged.model) - expected).abs().max() < 1e-5
    unmerged = load_checkpoint(adapter, dtype="float32", merge_adapter=False)
    assert isinstance(unmerged.model, PeftModel) and (_logits(unmerged.model) - expected).abs().max() < 1e-6
    assert (_logits(merged.model) - _logits(load_checkpoint(base).model)).abs().max() > 1e-4  # the adapter counts
    # the adapter has no tokenizer files: its base model's tokenizer is used
    assert not (adapter / "tokenizer_config.json").exists() and len(merged.tokenizer) == 6400


def test_the_recorded_base_is_found_relative_to_the_adapter(base, adapter, tmp_path):
    config_file = adapter / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = "../../ckpt"  # relative to the adapter directory
    config_file.write_text(json.dumps(config))
    assert load_checkpoint(adapter).base == str(adapter / "../../ckpt")
    config["base_model_name_or_path"] = "nowhere/base"
    config_file.write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="'nowhere/base' is not a local model directory"):
        load_checkpoint(adapter)


def test_an_explicit_base_and_tokenizer_win(base, adapter, tmp_path, tokenizer):
    other = tmp_path / "other-base"
    torch.manual_seed(3)
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).save_pretrained(other)
    loaded = load_checkpoint(adapter, base=other, tokenizer=base)
    assert loaded.base == str(other) and len(loaded.tokenizer) == 6400
    assert (_logits(loaded.model) - _logits(load_checkpoint(adapter).model)).abs().max() > 1e-4


def test_a_tokenizer_that_does_not_fit_is_refused_naming_both_sizes(tmp_path, tokenizer):
    converted = tmp_path / "converted"  # e.g. a 32,000-token Llama converted to MiniMind, saved without tokenizer
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=32000)).save_pretrained(converted)
    with pytest.raises(ValueError, match=r"vocab_size is 32000 .* shipped with minimind_hf has 6400 tokens"):
        load_checkpoint(converted)
    assert load_checkpoint(converted, tokenizer=tokenizer).kind == "model"  # a tokenizer given on purpose fits
    small = tmp_path / "small"
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny", vocab_size=4000)).save_pretrained(small)
    save_tokenizer(tokenizer, small)
    with pytest.raises(ValueError, match="tokenizer has 6400 tokens but the model's vocab_size is 4000"):
        load_checkpoint(small)
    check_tokenizer_fits(MiniMindConfig.from_preset("tiny"), tokenizer, shipped=True)


def test_missing_and_empty_directories_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither config.json"):
        load_checkpoint(tmp_path / "empty")


def test_the_commands_load_adapters_through_the_same_loader(adapter, capsys):
    """`minimind translate` on an adapter directory streams what the merged adapter generates."""
    from minimind_hf.prompts import translation_messages

    assert main(["translate", str(adapter), "The rate.", "--max-new-tokens", "3"]) == 0
    printed = capsys.readouterr().out.strip("\n")
    model, tok = load_checkpoint(adapter, dtype="float32")[:2]
    ids = tok.apply_chat_template(
        translation_messages("The rate."), add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False, pad_token_id=0, eos_token_id=2
    )
    assert printed == tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_a_tokenizer_saved_under_another_transformers_class_name_still_loads(tmp_path, tokenizer):
    """A checkpoint written by transformers 5 ("TokenizersBackend") must load in the transformers 4 (COMET) env."""
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["tokenizer_class"] = "ClassFromAnotherVersion"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    loaded = load_tokenizer(tmp_path)
    chat = [{"role": "user", "content": "Net present value 淨現值"}]
    assert loaded.apply_chat_template(chat, add_generation_prompt=True) == tokenizer.apply_chat_template(
        chat, add_generation_prompt=True
    )


def test_auto_means_one_thing_for_training_loading_and_benchmarks(monkeypatch):
    """``auto``: bf16 where the device computes it natively.

    The training arguments autocast in it, the benchmarks default to it, and the loader keeps CPU weights in float32
    (bf16 there is a training autocast).
    """
    import argparse
    import sys

    from minimind_hf import checkpoints

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import settle_arguments

    for native in (True, False):
        monkeypatch.setattr(checkpoints, "cpu_has_native_bf16", lambda native=native: native)
        assert checkpoints.auto_precision("cpu") == ("bf16" if native else "fp32")
        assert resolve_dtype("auto", "cpu") == torch.float32
        for weights, expected in ((False, "bf16" if native else "fp32"), (True, "fp32")):
            args = argparse.Namespace(device="cpu", quick=False, dtype=None, threads=None)
            settle_arguments(args, {}, {}, {}, weights=weights)
            assert args.dtype == expected


def _run_with_adapter(root, seed):
    """A run folder as `make` leaves it.

    Out/sft and out/lora, the adapter recording its base as "out/sft" (relative to the directory the run was started
    in).
    """
    from minimind_hf.checkpoints import record_adapter_base

    torch.manual_seed(seed)
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).save_pretrained(root / "out" / "sft")
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(root / "out" / "sft"), config)
    lora.peft_config["default"].base_model_name_or_path = "out/sft"
    lora.save_pretrained(root / "out" / "lora")
    record_adapter_base(root / "out" / "lora", base=root / "out" / "sft")
    return root / "out" / "lora"


def test_an_adapter_loads_on_its_own_runs_base_not_the_current_directorys(tmp_path, monkeypatch):
    """Evaluating another run's out/lora from this run's folder must not merge it into this run's out/sft.

    The shapes are the same, so nothing else would complain.
    """
    theirs = _run_with_adapter(tmp_path / "their-run", seed=1)
    _run_with_adapter(tmp_path / "this-run", seed=2)
    monkeypatch.chdir(tmp_path / "this-run")
    loaded = load_checkpoint(theirs, dtype="float32")
    assert loaded.base == str(tmp_path / "their-run" / "out" / "sft")
    expected = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tmp_path / "their-run" / "out" / "sft"), theirs
    ).eval()
    assert (_logits(loaded.model) - _logits(expected)).abs().max() < 1e-5


def test_a_base_that_is_not_the_one_the_adapter_was_trained_on_is_refused(tmp_path, monkeypatch):
    theirs = _run_with_adapter(tmp_path / "their-run", seed=1)
    torch.manual_seed(5)  # their base replaced by another model of the same shape
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).save_pretrained(tmp_path / "their-run" / "out" / "sft")
    with pytest.raises(ValueError) as info:
        load_checkpoint(theirs)
    message = str(info.value)
    assert str(theirs) in message and str(tmp_path / "their-run" / "out" / "sft") in message
    assert "not the base this adapter was trained on" in message
    other = tmp_path / "other"
    torch.manual_seed(6)
    MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).save_pretrained(other)
    with pytest.raises(ValueError, match="not the base this adapter was trained on"):
        load_checkpoint(theirs, base=other)  # an explicit base is checked too
