"""minimind_hf.data.splits: held-out validation splits and the fingerprinted cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.data_helpers import FIXTURES, chat, make_docs, read_rows, token_stream, write_jsonl

from minimind_hf.data import build_pretrain_dataset, build_sft_dataset, pretrain, sft, splits
from tests.paths import ROOT


def test_sft_validation_file_and_fraction(byte_tok, tmp_path):
    rows = [{"conversations": chat(("user", f"q{i}"), ("assistant", f"a{i}"))} for i in range(20)]
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    built, stats = build_sft_dataset(byte_tok, path, validation_files=FIXTURES / "sft.jsonl", cache_dir=tmp_path)
    assert len(built["train"]) == 20 and len(built["validation"]) == 3
    assert stats["validation"]["sources"] == [str(FIXTURES / "sft.jsonl")]

    a, sa = build_sft_dataset(byte_tok, path, validation_fraction=0.25, seed=1, cache_dir=tmp_path)
    b, _ = build_sft_dataset(byte_tok, path, validation_fraction=0.25, seed=1, cache_dir=tmp_path)
    c, _ = build_sft_dataset(byte_tok, path, validation_fraction=0.25, seed=2, cache_dir=tmp_path)
    assert len(a["validation"]) == 5 and len(a["train"]) == 15
    assert sa["train"]["held_out_for_validation"] == 5 and sa["train"]["rows_out"] == 15
    val_a = [tuple(r["input_ids"]) for r in a["validation"]]
    assert val_a == [tuple(r["input_ids"]) for r in b["validation"]]
    assert val_a != [tuple(r["input_ids"]) for r in c["validation"]]
    assert not set(val_a) & {tuple(r["input_ids"]) for r in a["train"]}
    with pytest.raises(ValueError, match="not both"):
        build_sft_dataset(byte_tok, path, validation_files=path, validation_fraction=0.1, cache_dir=tmp_path)


def test_pretrain_validation_split(byte_tok, tmp_path):
    docs = make_docs(30)
    path = write_jsonl(tmp_path / "p.jsonl", docs)
    built, stats = build_pretrain_dataset(
        byte_tok, path, block_size=16, validation_fraction=0.2, seed=7, cache_dir=tmp_path
    )
    assert stats["train"]["held_out_for_validation"] == 6 and stats["train"]["rows_out"] == 24
    assert stats["validation"]["rows_out"] == 6
    assert stats["train"]["tokens"] + stats["validation"]["tokens"] == len(token_stream(byte_tok, docs))
    train_idx, val_idx = splits.holdout_indices(30, 0.2, 7)
    assert sorted(train_idx + val_idx) == list(range(30)) and len(val_idx) == 6
    assert splits.holdout_indices(30, 0.2, 7) == (train_idx, val_idx)
    assert splits.holdout_indices(30, 0.2, 8)[1] != val_idx
    # the held-out documents are exactly the ones packed into validation, in order
    expected = token_stream(byte_tok, [docs[i] for i in val_idx])
    flat = [t for b in built["validation"] for t in b["input_ids"]]
    assert flat == expected[: len(flat)]

    with_file, _ = build_pretrain_dataset(
        byte_tok, path, validation_files=FIXTURES / "pretrain.jsonl", block_size=16, cache_dir=tmp_path
    )
    assert len(with_file["validation"]) == len(token_stream(byte_tok, read_rows(FIXTURES / "pretrain.jsonl"))) // 16
    with pytest.raises(ValueError, match="fewer than one block"):
        build_pretrain_dataset(byte_tok, path, block_size=200, validation_fraction=0.01, cache_dir=tmp_path)


def _count_calls(monkeypatch, module, name: str) -> list[int]:
    calls = [0]
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_second_run_reads_the_cache(bpe_tok, tmp_path, monkeypatch):
    tokenize_docs = _count_calls(monkeypatch, pretrain, "_tokenize_documents")
    pack = _count_calls(monkeypatch, pretrain, "_pack_blocks")
    tokenize_chats = _count_calls(monkeypatch, sft, "_tokenize_chats")
    pretrain_path = write_jsonl(tmp_path / "p.jsonl", make_docs(30))
    cache = tmp_path / "cache"

    first, _ = build_pretrain_dataset(bpe_tok, pretrain_path, block_size=16, cache_dir=cache)
    sft_first, _ = build_sft_dataset(bpe_tok, FIXTURES / "sft.jsonl", cache_dir=cache)
    assert tokenize_docs[0] > 0 and pack[0] > 0 and tokenize_chats[0] > 0
    before = (tokenize_docs[0], pack[0], tokenize_chats[0])

    bpe_tok("warm the tokenizer with truncation", truncation=True, max_length=4)  # changes backend state
    second, second_stats = build_pretrain_dataset(bpe_tok, pretrain_path, block_size=16, cache_dir=cache)
    sft_second, _ = build_sft_dataset(bpe_tok, FIXTURES / "sft.jsonl", cache_dir=cache)
    assert (tokenize_docs[0], pack[0], tokenize_chats[0]) == before  # nothing tokenised or packed again
    assert second["train"]["input_ids"][:] == first["train"]["input_ids"][:]
    assert sft_second["train"]["labels"][:] == sft_first["train"]["labels"][:]
    assert second["train"].cache_files == first["train"].cache_files
    assert second_stats["train"]["blocks"] == len(second["train"])

    build_sft_dataset(bpe_tok, FIXTURES / "sft.jsonl", max_length=16, cache_dir=cache)
    assert tokenize_chats[0] > before[2]  # other settings -> tokenised again


_CHILD = """
import json, sys
from minimind_hf.data import build_sft_dataset, sft
from tests.data_helpers import make_byte_tokenizer
calls = []
original = sft._tokenize_chats
sft._tokenize_chats = lambda *a, **k: calls.append(1) or original(*a, **k)
built, _ = build_sft_dataset(make_byte_tokenizer(), sys.argv[1], cache_dir=sys.argv[2])
print(json.dumps({"calls": len(calls), "cache": built["train"].cache_files[0]["filename"]}))
"""


@pytest.mark.slow
def test_cache_is_reused_by_a_new_process(tmp_path):
    """Fingerprints are stable across interpreters: a second process tokenises nothing."""
    import subprocess
    import sys

    root = ROOT
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _CHILD, str(FIXTURES / "sft.jsonl"), str(tmp_path)],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(2)
    ]
    assert runs[0]["calls"] > 0 and runs[1]["calls"] == 0
    assert runs[0]["cache"] == runs[1]["cache"]
