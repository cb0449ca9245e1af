"""COMP4901B HW1's pretraining here: BabyLM raw-text directories, test_files, llama2-42m, warmup then constant."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from data_tools import babylm
from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.data import (
    DataFormatError,
    build_pretrain_dataset,
    build_sft_dataset,
    load_jsonl_dataset,
)
from minimind_hf.data.layout import COMPLETE_MARKER
from minimind_hf.training.runner import parse_args, run
from minimind_hf.training.trainers import MiniMindTrainer
from tests.data_helpers import make_byte_tokenizer
from tests.paths import ROOT

SAMPLE = ROOT / "data" / "sample"


def _babylm(tmp_path: Path) -> Path:
    root = tmp_path / "babylm"
    (root / "train_10M").mkdir(parents=True)
    (root / "dev").mkdir()
    (root / "train_10M" / "a.train").write_text("the first document\n\nthe second one\n", encoding="utf-8")
    (root / "train_10M" / "b.train").write_text("a third document, from another file\n", encoding="utf-8")
    (root / "train_10M" / "notes.md").write_text("not part of the corpus\n", encoding="utf-8")
    (root / "dev" / "dev.txt").write_text("held out text\nmore held out text\n", encoding="utf-8")
    return root


def test_raw_text_directories_and_files(tmp_path):
    root = _babylm(tmp_path)
    rows, stats = load_jsonl_dataset(root / "train_10M", kind="pretrain", cache_dir=tmp_path / "c", return_stats=True)
    assert rows["text"] == ["the first document", "the second one", "a third document, from another file"]
    assert stats["sources"] == [str(root / "train_10M" / "a.train"), str(root / "train_10M" / "b.train")]
    assert stats["blank_lines"] == 1 and stats["rows_in"] == 3
    single = load_jsonl_dataset(root / "dev" / "dev.txt", kind="pretrain", cache_dir=tmp_path / "c")
    assert single["text"] == ["held out text", "more held out text"]
    built, stats = build_pretrain_dataset(
        make_byte_tokenizer(), root / "train_10M", root / "dev", block_size=8, cache_dir=tmp_path / "c"
    )
    assert set(built) == {"train", "validation"} and stats["validation"]["rows_out"] == 2
    # 18 + 14 + 35 bytes of text, each document followed by <|endoftext|>
    assert stats["train"]["tokens"] == 18 + 14 + 35 + 3


def test_raw_text_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.train"
    bad.write_bytes(b"fine\n\xff\xfe broken\nfine again\n")
    with pytest.raises(DataFormatError, match=r"bad\.train:2.*UTF-8"):
        load_jsonl_dataset(bad, kind="pretrain", cache_dir=tmp_path)
    rows, stats = load_jsonl_dataset(bad, kind="pretrain", skip_bad_rows=True, cache_dir=tmp_path, return_stats=True)
    assert rows["text"] == ["fine", "fine again"] and stats["dropped"] == {"invalid_utf8": 1}
    with pytest.raises(DataFormatError, match="pretraining documents, not chat"):
        build_sft_dataset(make_byte_tokenizer(), tmp_path / "bad.train", cache_dir=tmp_path)


def test_babylm_writer_and_the_recipe(tmp_path, monkeypatch):
    out = tmp_path / "data" / "babylm"
    assert (
        babylm.main(
            [str(SAMPLE / "pretrain.jsonl"), str(out), "--validation", str(SAMPLE / "pretrain.validation.jsonl")]
        )
        == 0
    )
    documents = len((SAMPLE / "pretrain.jsonl").read_text(encoding="utf-8").splitlines())
    assert documents > 500 and len((out / "train_10M" / "sample.train").read_text().splitlines()) == documents
    assert (out / "dev" / "sample.dev").exists() and (out / "test" / "sample.test").exists()
    monkeypatch.chdir(tmp_path)
    stage_args, training_args = parse_args([str(ROOT / "recipes" / "babylm" / "pretrain.yaml")])
    assert stage_args.model.preset == "llama2-42m" and training_args.lr_scheduler_type == "constant_with_warmup"
    assert stage_args.data.test_files == ["data/babylm/test"] and stage_args.data.cache_dir == "out/babylm-cache"


def test_llama2_42m_preset():
    config = MiniMindConfig.from_preset("llama2-42m")
    assert (
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.vocab_size,
        config.intermediate_size,
    ) == (512, 8, 8, 8, 32000, 1376)
    with torch.device("meta"):
        assert sum(p.numel() for p in MiniMindForCausalLM(config).parameters()) == 41_689_600


def _lr_per_step(argv: list[str], steps: int) -> list[float]:
    _, args = parse_args(argv + ["--eval_strategy", "no", "--load_best_model_at_end", "false"])
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny"))
    trainer = MiniMindTrainer(model=model, args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    rates = []
    for _ in range(steps):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return rates


def test_warmup_then_constant_step_by_step(tmp_path):
    argv = [
        str(ROOT / "recipes" / "babylm" / "pretrain.yaml"),
        "--output_dir",
        str(tmp_path),
        "--report_to",
        "none",
        "--learning_rate",
        "1e-3",
        "--warmup_steps",
        "4",
        "--max_steps",
        "10",
    ]
    rates = _lr_per_step(argv, 10)
    assert rates == pytest.approx([0.0, 2.5e-4, 5e-4, 7.5e-4] + [1e-3] * 6)


def test_warmup_as_a_fraction_of_the_run(tmp_path):
    """transformers 5 takes the warmup ratio as a float warmup_steps (warmup_ratio on 4.x)."""
    argv = [
        str(ROOT / "recipes" / "babylm" / "pretrain.yaml"),
        "--output_dir",
        str(tmp_path),
        "--report_to",
        "none",
        "--learning_rate",
        "1e-3",
        "--max_steps",
        "10",
    ]
    _, probe = parse_args(argv)
    fraction = (
        ["--warmup_steps", "0.2"]
        if not hasattr(probe, "warmup_ratio")
        else ["--warmup_ratio", "0.2", "--warmup_steps", "0"]
    )
    rates = _lr_per_step(argv + fraction, 10)
    assert rates == pytest.approx([0.0, 5e-4] + [1e-3] * 8)


def test_explicit_epochs_beat_the_recipes_max_steps(tmp_path):
    recipe = ROOT / "recipes" / "tiny" / "pretrain.yaml"  # says max_steps: 200
    _, args = parse_args([str(recipe), "--output_dir", str(tmp_path)])
    assert args.max_steps == 200
    _, args = parse_args([str(recipe), "--output_dir", str(tmp_path), "--num_train_epochs", "3"])
    assert args.max_steps == -1 and args.num_train_epochs == 3
    _, args = parse_args([str(recipe), "--output_dir", str(tmp_path), "--num_train_epochs", "3", "--max_steps", "7"])
    assert args.max_steps == 7  # both on the command line: max_steps decides, as in transformers


def test_test_files_are_scored_once_at_the_end(tmp_path, caplog):
    root = _babylm(tmp_path)
    (root / "test").mkdir()
    (root / "test" / "t.test").write_text("a test document\nanother test document\n" * 4, encoding="utf-8")
    out = tmp_path / "out"
    argv = [
        str(ROOT / "recipes" / "tiny" / "pretrain.yaml"),
        "--output_dir",
        str(out),
        "--preset",
        "tiny",
        "--train_files",
        str(root / "train_10M"),
        "--validation_files",
        str(root / "dev"),
        "--test_files",
        str(root / "test"),
        "--cache_dir",
        str(tmp_path / "cache"),
        "--block_size",
        "8",
        "--max_steps",
        "2",
        "--eval_steps",
        "2",
        "--save_steps",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--report_to",
        "none",
        "--tokenizer_name_or_path",
        str(_saved_byte_tokenizer(tmp_path)),
    ]
    with caplog.at_level(logging.INFO, logger="minimind_hf.data.splits"):
        summary = run(*parse_args(argv))
    test_lines = [r.getMessage() for r in caplog.records if "t.test" in r.getMessage()]
    assert len(test_lines) == 1 and test_lines[0].startswith("pretrain test data: ")  # not "train data"
    metrics = json.loads((out / COMPLETE_MARKER).read_text())["metrics"]
    assert metrics == summary["metrics"]
    assert metrics["test_perplexity"] == pytest.approx(torch.tensor(metrics["test_loss"]).exp().item(), rel=1e-4)
    assert summary["data"]["test"]["sources"] == [str(root / "test" / "t.test")]
    assert any((tmp_path / "cache").iterdir())  # the recipe's cache_dir holds the tokenised data


def _saved_byte_tokenizer(tmp_path: Path) -> Path:
    from minimind_hf.tokenization import save_tokenizer

    path = tmp_path / "byte-tokenizer"
    tok = make_byte_tokenizer()
    save_tokenizer(tok, path)
    return path
