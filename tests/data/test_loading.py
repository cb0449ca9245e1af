"""minimind_hf.data.loading: files, globs, gzip, dataset directories, Hub names, skipped rows."""

from __future__ import annotations

import gzip
import logging
import re
import shutil

import pytest
from tests.data_helpers import FIXTURES, GOOD_CHAT, chat, make_byte_tokenizer, write_jsonl

from minimind_hf.data import DataFormatError, build_pretrain_dataset, build_sft_dataset, load_jsonl_dataset, loading
from minimind_hf.prompts import TRANSLATION_PROMPTS


def test_bad_settings_are_rejected(byte_tok, tmp_path):
    for prompt_id in (len(TRANSLATION_PROMPTS), -1, "random", True):
        with pytest.raises(ValueError, match="prompt_id"):
            build_sft_dataset(byte_tok, FIXTURES / "lora.jsonl", prompt_id=prompt_id, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="block_size"):
        build_pretrain_dataset(byte_tok, FIXTURES / "pretrain.jsonl", block_size=1, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown record kind"):
        load_jsonl_dataset(FIXTURES / "sft.jsonl", kind="sft")


def test_empty_files_are_errors(tmp_path):
    with pytest.raises(DataFormatError, match="no records") as info:
        load_jsonl_dataset(FIXTURES / "empty.jsonl", kind="pretrain", cache_dir=tmp_path)
    assert str(FIXTURES / "empty.jsonl") in str(info.value)
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n\n")
    with pytest.raises(DataFormatError, match="no records"):
        load_jsonl_dataset(blank, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        load_jsonl_dataset(tmp_path / "missing.jsonl")
    empty_docs = write_jsonl(tmp_path / "e.jsonl", [{"text": ""}, {"text": " "}])
    with pytest.raises(DataFormatError, match="every document is empty"):
        build_pretrain_dataset(make_byte_tokenizer(), empty_docs, block_size=4, cache_dir=tmp_path)


def test_skip_bad_rows_counts_and_logs(byte_tok, tmp_path, caplog):
    rows = [GOOD_CHAT, "not json", {"conversations": chat(("user", "Hi"), ("bot", "x"))}, GOOD_CHAT, "", {"en": "a"}]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="minimind_hf.data"):
        dataset, stats = load_jsonl_dataset(
            path, skip_bad_rows=True, kind="chat", cache_dir=tmp_path, return_stats=True
        )
    assert len(dataset) == 2 and stats["rows_in"] == 5 and stats["rows_out"] == 2
    assert stats["dropped"] == {"invalid_json": 1, "wrong_role": 1, "missing_field": 1}
    assert stats["blank_lines"] == 1
    assert f"{path}:2" in caplog.text and "skipped 3 bad record(s)" in caplog.text

    built, sft_stats = build_sft_dataset(byte_tok, path, skip_bad_rows=True, cache_dir=tmp_path)
    assert len(built["train"]) == 2
    assert sft_stats["train"]["dropped"] == {"invalid_json": 1, "wrong_role": 1, "missing_field": 1}
    assert sft_stats["train"]["rows_in"] - sum(sft_stats["train"]["dropped"].values()) == sft_stats["train"]["rows_out"]
    with pytest.raises(DataFormatError, match=f"{re.escape(str(path))}:2"):
        build_sft_dataset(byte_tok, path, cache_dir=tmp_path)

    all_bad = write_jsonl(tmp_path / "all_bad.jsonl", ["{", "["])
    with pytest.raises(DataFormatError, match="every one of its 2 records is bad"):
        load_jsonl_dataset(all_bad, skip_bad_rows=True, cache_dir=tmp_path)


def test_load_glob_and_gzip(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "one"}, {"text": "two"}])
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write('{"text": "three"}\n')
    dataset, stats = load_jsonl_dataset(
        str(tmp_path / "*.jsonl*"), kind="pretrain", cache_dir=tmp_path / "c", return_stats=True
    )
    assert list(dataset["text"]) == ["one", "two", "three"]
    assert stats["rows_in"] == 3 and len(stats["sources"]) == 2
    with pytest.raises(FileNotFoundError, match="no file matches"):
        load_jsonl_dataset(str(tmp_path / "*.none"))


def test_dataset_directory_uses_split_and_row_ids(tmp_path):
    """A dataset directory goes through the same path as a Hub dataset; errors name the row."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(FIXTURES / "sft.jsonl", repo / "train.jsonl")
    write_jsonl(repo / "validation.jsonl", [GOOD_CHAT, {"conversations": chat(("user", "x"), ("robot", "y"))}])
    train = load_jsonl_dataset(str(repo), split="train", kind="chat", cache_dir=tmp_path / "c")
    assert len(train) == 3
    with pytest.raises(DataFormatError, match=r"\[validation\] row 1: .*'robot'"):
        load_jsonl_dataset(str(repo), split="validation", kind="chat", cache_dir=tmp_path / "c")
    kept, stats = load_jsonl_dataset(
        str(repo), split="validation", kind="chat", skip_bad_rows=True, cache_dir=tmp_path / "c", return_stats=True
    )
    assert len(kept) == 1 and stats["dropped"] == {"wrong_role": 1}


def test_hub_names_reach_load_dataset(monkeypatch, tmp_path):
    seen = {}
    real = loading.datasets.Dataset.from_list([{"text": "hello"}])

    def fake_load_dataset(path, name=None, split=None, cache_dir=None):
        seen.update(path=path, name=name, split=split)
        return real

    monkeypatch.setattr(loading.datasets, "load_dataset", fake_load_dataset)
    dataset = load_jsonl_dataset("someone/finance-corpus:zh_tw", split="validation", kind="pretrain")
    assert seen == {"path": "someone/finance-corpus", "name": "zh_tw", "split": "validation"}
    assert list(dataset["text"]) == ["hello"]
    with pytest.raises(FileNotFoundError):
        load_jsonl_dataset("data/missing.jsonl")  # looks like owner/name, but is a missing file
