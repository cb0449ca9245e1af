"""minimind_hf.data.pretrain: documents tokenised and packed into blocks, nothing lost but the tail."""

from __future__ import annotations

import pytest
import torch
from tests.data_helpers import FIXTURES, make_docs, token_stream, write_jsonl

from minimind_hf.data import SFTCollator, build_pretrain_dataset, build_sft_dataset, pretrain


@pytest.mark.parametrize("batch_size", [1000, 3])
def test_packing_keeps_every_token_but_the_tail(bpe_tok, tmp_path, monkeypatch, batch_size):
    monkeypatch.setattr(pretrain, "MAP_BATCH_SIZE", batch_size)  # 3 exercises blocks spanning map batches
    docs = make_docs(40) + [{"text": "   "}]
    path = write_jsonl(tmp_path / "p.jsonl", docs)
    block = 24
    built, stats = build_pretrain_dataset(bpe_tok, path, block_size=block, cache_dir=tmp_path / "cache")
    blocks = built["train"]
    stream = token_stream(bpe_tok, docs)
    n_blocks = len(stream) // block
    assert len(blocks) == n_blocks == stats["train"]["blocks"]
    flat = [t for b in blocks for t in b["input_ids"]]
    assert flat == stream[: n_blocks * block]  # order kept, nothing lost mid-way
    assert stats["train"]["tail_tokens_dropped"] == len(stream) - n_blocks * block < block
    assert stats["train"]["tokens"] == len(stream)
    assert stats["train"]["dropped"] == {"empty_text": 1} and stats["train"]["rows_out"] == 40
    for b in blocks:
        assert len(b["input_ids"]) == block and b["labels"] == b["input_ids"] and b["attention_mask"] == [1] * block
    # separators sit exactly at the ends of documents
    ends, position = set(), -1
    for doc in docs[:40]:
        position += len(bpe_tok(doc["text"], add_special_tokens=False)["input_ids"]) + 1
        ends.add(position)
    assert {i for i, t in enumerate(flat) if t == 0} == {e for e in ends if e < len(flat)}


def test_packing_special_token_text_stays_text(byte_tok, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "a<|endoftext|>b"}] * 4)
    built, _ = build_pretrain_dataset(byte_tok, path, block_size=8, cache_dir=tmp_path)
    flat = [t for b in built["train"] for t in b["input_ids"]]
    # the literal "<|endoftext|>" is tokenised byte by byte; id 0 appears only as the separator
    assert flat == ([3 + b for b in b"a<|endoftext|>b"] + [0]) * 4


def test_packing_with_two_processes_matches_one(bpe_tok, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", make_docs(60))
    one, _ = build_pretrain_dataset(bpe_tok, path, block_size=16, cache_dir=tmp_path / "a")
    two, _ = build_pretrain_dataset(bpe_tok, path, block_size=16, num_proc=2, cache_dir=tmp_path / "b")
    assert one["train"]["input_ids"][:] == two["train"]["input_ids"][:]


def test_collated_batches_train_a_causal_lm(byte_tok, tmp_path):
    """SFT and pretrain batches feed MiniMind and give a finite loss."""
    from transformers import default_data_collator

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny"))
    sft, _ = build_sft_dataset(byte_tok, FIXTURES / "sft.jsonl", cache_dir=tmp_path)
    batch = SFTCollator(byte_tok, pad_to_multiple_of=8)([sft["train"][i] for i in range(3)])
    assert torch.isfinite(model(**batch).loss)
    pretrain, _ = build_pretrain_dataset(byte_tok, FIXTURES / "pretrain.jsonl", block_size=64, cache_dir=tmp_path)
    batch = default_data_collator([pretrain["train"][i] for i in range(2)])
    assert batch["input_ids"].shape == (2, 64) and torch.equal(batch["labels"], batch["input_ids"])
    assert torch.isfinite(model(**batch).loss)
