"""Tests for minimind_hf.data: record checks, packing, assistant-only labels, DPO rows, caching."""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from minimind_hf import data
from minimind_hf.data import (
    IGNORE_INDEX,
    DataFormatError,
    SFTCollator,
    build_dpo_dataset,
    build_pretrain_dataset,
    build_sft_dataset,
    encode_chat,
    load_jsonl_dataset,
)
from minimind_hf.prompts import FINANCE_SYSTEM_PROMPT, TRANSLATION_PROMPTS, pick_prompt, translation_messages

FIXTURES = Path(__file__).parent / "fixtures" / "data"
SPECIALS = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}

# The contract's ChatML template, with the assistant reply and its <|im_end|> inside generation tags.
CHATML = (
    "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else %}{{ message['content'] + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


# ----------------------------------------------------------------------------------------------
# tokenizers
# ----------------------------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for every byte (what ByteLevel pre-tokenisation uses)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def _wrap(backend: Tokenizer) -> PreTrainedTokenizerFast:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def make_byte_tokenizer() -> PreTrainedTokenizerFast:
    """No merges: every byte is one token with id 3 + byte value, so positions can be counted by hand."""
    vocab = dict(SPECIALS)
    vocab.update({char: 3 + byte for byte, char in _bytes_to_unicode().items()})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return _wrap(backend)


def make_bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A small trained byte-level BPE (multi-byte tokens, merged whitespace) with the same specials."""
    corpus = [
        "<|im_start|>user\nTranslate the following English text into Traditional Chinese.<|im_end|>\n",
        "<|im_start|>assistant\n每期的利率。<|im_end|>\n",
        "The rate of interest per period. Save the document and close it.   Indented  text\n\n",
        "開啟檔案。儲存文件。然後關閉它。印表機沒有紙了。傳回投資的淨現值。",
    ] * 20
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    return _wrap(backend)


def load_shipped_tokenizer():
    try:
        from minimind_hf.tokenization import load_tokenizer
    except ImportError:
        pytest.skip("minimind_hf.tokenization is not available yet")
    return load_tokenizer()


@pytest.fixture(scope="session")
def byte_tok() -> PreTrainedTokenizerFast:
    return make_byte_tokenizer()


@pytest.fixture(scope="session")
def bpe_tok() -> PreTrainedTokenizerFast:
    return make_bpe_tokenizer()


@pytest.fixture(scope="session", params=["bytes", "bpe", "shipped"])
def chat_tok(request, byte_tok, bpe_tok):
    if request.param == "bytes":
        return byte_tok
    if request.param == "bpe":
        return bpe_tok
    return load_shipped_tokenizer()


def byte_ids(text: str) -> list[int]:
    """Hand reference for the byte tokenizer: specials by id, everything else byte by byte."""
    ids: list[int] = []
    for piece in re.split(r"(<\|endoftext\|>|<\|im_start\|>|<\|im_end\|>)", text):
        ids.extend([SPECIALS[piece]] if piece in SPECIALS else [3 + b for b in piece.encode("utf-8")])
    return ids


def ignored(text: str) -> list[int]:
    return [IGNORE_INDEX] * len(byte_ids(text))


def write_jsonl(path: Path, rows: list) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
    return path


def chat(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


# ----------------------------------------------------------------------------------------------
# SFT labels, token by token
# ----------------------------------------------------------------------------------------------


def test_single_turn_labels_exact(byte_tok):
    messages = chat(("user", "Hi"), ("assistant", "OK"))
    out = encode_chat(byte_tok, messages)
    prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert out["input_ids"] == byte_ids(prompt + "OK<|im_end|>\n")
    # header and user turn ignored; "O", "K", <|im_end|> trained; the "\n" after <|im_end|> ignored
    assert out["labels"] == ignored(prompt) + byte_ids("OK<|im_end|>") + [IGNORE_INDEX]
    assert out["labels"][-4:] == [3 + ord("O"), 3 + ord("K"), 2, IGNORE_INDEX]
    assert out["labels"][-5] == IGNORE_INDEX  # the header's "\n"
    assert out["attention_mask"] == [1] * len(out["input_ids"])


def test_multi_turn_with_system_labels_exact(byte_tok):
    messages = chat(
        ("system", "Be brief."), ("user", "a b"), ("assistant", "甲"), ("user", "c"), ("assistant", "乙 丙")
    )
    out = encode_chat(byte_tok, messages)
    expected_ids, expected_labels = [], []
    for text, trained in [
        ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\na b<|im_end|>\n<|im_start|>assistant\n", False),
        ("甲<|im_end|>", True),
        ("\n<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n", False),
        ("乙 丙<|im_end|>", True),
        ("\n", False),
    ]:
        expected_ids += byte_ids(text)
        expected_labels += byte_ids(text) if trained else ignored(text)
    assert out["input_ids"] == expected_ids
    assert out["labels"] == expected_labels
    # exactly two <|im_end|> tokens are trained: the assistant ones, not the system / user ones
    pairs = zip(out["input_ids"], out["labels"], strict=True)
    trained_ends = [i for i, (token, label) in enumerate(pairs) if token == 2 and label == 2]
    all_ends = [i for i, t in enumerate(out["input_ids"]) if t == 2]
    assert len(all_ends) == 5 and trained_ends == [all_ends[2], all_ends[4]]


def _spans(labels: list[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, label in enumerate(labels + [IGNORE_INDEX]):
        if label != IGNORE_INDEX and start is None:
            start = i
        elif label == IGNORE_INDEX and start is not None:
            spans.append((start, i))
            start = None
    return spans


MULTI_TURN = chat(
    ("system", "You translate English into Traditional Chinese."),
    ("user", "Save the document."),
    ("assistant", "儲存文件。"),
    ("user", "And close it."),
    ("assistant", "然後關閉它。"),
)


@pytest.mark.parametrize(
    "messages",
    [
        chat(("user", "Open the file."), ("assistant", "開啟檔案。")),
        MULTI_TURN,
        chat(("user", "x"), ("assistant", "  Indented  text\n\nsecond line")),
        chat(("user", "empty reply"), ("assistant", "")),
    ],
    ids=["single", "multi-system", "leading-space", "empty-reply"],
)
def test_label_boundaries_any_tokenizer(chat_tok, messages):
    out = encode_chat(chat_tok, messages)
    ids, labels = out["input_ids"], out["labels"]
    replies = [m["content"] for m in messages if m["role"] == "assistant"]
    spans = _spans(labels)
    assert len(spans) == len(replies)
    eos = chat_tok.eos_token_id
    for (start, end), reply in zip(spans, replies, strict=True):
        assert labels[start:end] == ids[start:end]
        assert chat_tok.decode(ids[start:end]) == reply + "<|im_end|>"
        assert ids[end - 1] == eos  # the reply's stop token is trained ...
        assert chat_tok.decode(ids[end : end + 1]) == "\n"  # ... the newline after it is not
        assert chat_tok.decode(ids[:start]).endswith("<|im_start|>assistant\n")  # header is not trained
    # nothing outside the replies is trained: the untrained tokens decode to the rest of the text
    full = chat_tok.apply_chat_template(messages, tokenize=False)
    assert chat_tok.decode(ids) == full


@pytest.mark.parametrize("reply", ["開啟檔案。", "\n\nTwo blank lines first", "  two leading spaces", " one space"])
def test_replies_start_after_the_generation_prompt_tokens(chat_tok, reply):
    """Every trained reply follows exactly the ids ``generate`` would be given for its prompt."""
    messages = MULTI_TURN[:-1] + [{"role": "assistant", "content": reply}]
    out = encode_chat(chat_tok, messages)
    starts = [start for start, _ in _spans(out["labels"])]
    for turn, start in zip([2, 4], starts, strict=True):
        prompt = chat_tok.apply_chat_template(messages[:turn], tokenize=False, add_generation_prompt=True)
        prompt_ids = chat_tok(prompt, add_special_tokens=False)["input_ids"]
        assert out["input_ids"][:start] == prompt_ids
    assert chat_tok.decode(out["input_ids"][starts[-1] :]) == reply + "<|im_end|>\n"


@pytest.mark.parametrize("messages", [chat(("user", "Open the file."), ("assistant", "開啟檔案。")), MULTI_TURN])
def test_labels_match_template_assistant_mask(chat_tok, messages):
    """Cross-check against transformers' {% generation %} mask and a plain tokenisation of the text."""
    out = encode_chat(chat_tok, messages)
    reference = chat_tok.apply_chat_template(messages, return_assistant_tokens_mask=True, return_dict=True)
    assert out["input_ids"] == list(reference["input_ids"])
    if not any(reference["assistant_masks"]):
        pytest.skip("this tokenizer's chat template has no {% generation %} markers")
    assert [int(label != IGNORE_INDEX) for label in out["labels"]] == list(reference["assistant_masks"])


def test_original_minimind_mask_trains_one_token_too_many(byte_tok):
    """The old header-search mask also trains the "\\n" after <|im_end|>; ours stops at <|im_end|>."""
    messages = chat(("user", "Hi"), ("assistant", "OK"))
    ids = encode_chat(byte_tok, messages)["input_ids"]
    header = byte_ids("<|im_start|>assistant")
    start = next(i for i in range(len(ids)) if ids[i : i + len(header)] == header) + len(header)
    end = ids.index(2, start)
    old_mask = [int(start + 1 <= j < end + 2) for j in range(len(ids))]  # start+1 .. end+len(eos) inclusive
    ours = [int(label != IGNORE_INDEX) for label in encode_chat(byte_tok, messages)["labels"]]
    assert sum(old_mask) == sum(ours) + 1
    assert old_mask[end + 1] == 1 and ours[end + 1] == 0 and byte_tok.decode([ids[end + 1]]) == "\n"


# ----------------------------------------------------------------------------------------------
# SFT / LoRA datasets
# ----------------------------------------------------------------------------------------------


def test_build_sft_from_fixture(byte_tok, tmp_path):
    built, stats = build_sft_dataset(byte_tok, FIXTURES / "sft.jsonl", max_length=512, cache_dir=tmp_path)
    train = built["train"]
    assert train.column_names == ["input_ids", "attention_mask", "labels"]
    assert len(train) == 3 and stats["train"]["rows_in"] == 3 and stats["train"]["rows_out"] == 3
    rows = [json.loads(line) for line in open(FIXTURES / "sft.jsonl", encoding="utf-8")]
    for row, example in zip(rows, train, strict=True):
        expected = encode_chat(byte_tok, row["conversations"])
        assert example["input_ids"] == expected["input_ids"]
        assert example["labels"] == expected["labels"]
    assert stats["train"]["target_tokens"] == sum(
        sum(label != IGNORE_INDEX for label in example["labels"]) for example in train
    )


def test_parallel_rows_use_translation_prompt(byte_tok, tmp_path):
    built, _ = build_sft_dataset(
        byte_tok, FIXTURES / "lora.jsonl", system_prompt=FINANCE_SYSTEM_PROMPT, cache_dir=tmp_path
    )
    first = json.loads(open(FIXTURES / "lora.jsonl", encoding="utf-8").readline())
    expected = encode_chat(
        byte_tok, translation_messages(first["en"], first["zh"], prompt_id=0, system=FINANCE_SYSTEM_PROMPT)
    )
    assert built["train"][0]["input_ids"] == expected["input_ids"]
    assert built["train"][0]["labels"] == expected["labels"]
    text = byte_tok.decode(built["train"][0]["input_ids"])
    assert text.startswith(f"<|im_start|>system\n{FINANCE_SYSTEM_PROMPT}<|im_end|>")
    assert TRANSLATION_PROMPTS[0].format(en=first["en"]) in text

    mixed, _ = build_sft_dataset(byte_tok, FIXTURES / "lora.jsonl", prompt_id="mixed", cache_dir=tmp_path)
    for row, example in zip(_read(FIXTURES / "lora.jsonl"), mixed["train"], strict=True):
        wanted = TRANSLATION_PROMPTS[pick_prompt(row["en"])].format(en=row["en"])
        assert wanted in byte_tok.decode(example["input_ids"])


def test_system_prompt_added_to_chats_without_one(byte_tok, tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"conversations": MULTI_TURN[1:]}, {"conversations": MULTI_TURN}])
    built, _ = build_sft_dataset(byte_tok, path, system_prompt="SYS", cache_dir=tmp_path)
    first, second = (byte_tok.decode(r["input_ids"]) for r in built["train"])
    assert first.startswith("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\n")
    assert second.startswith(f"<|im_start|>system\n{MULTI_TURN[0]['content']}<|im_end|>")  # kept, not doubled


def test_truncation_drops_rows_without_assistant_tokens(byte_tok, tmp_path):
    short = chat(("user", "Hi"), ("assistant", "OK"))
    long_prompt = chat(("user", "x" * 200), ("assistant", "OK"))
    cut_reply = chat(("user", "Hi"), ("assistant", "y" * 200))
    path = write_jsonl(tmp_path / "t.jsonl", [{"conversations": c} for c in (short, long_prompt, cut_reply, short)])
    built, stats = build_sft_dataset(byte_tok, path, max_length=64, cache_dir=tmp_path)
    train_stats = stats["train"]
    assert train_stats["rows_in"] == 4
    assert train_stats["dropped"] == {"no_assistant_tokens_after_truncation": 1}
    assert train_stats["rows_out"] == len(built["train"]) == 3
    assert train_stats["truncated_rows_kept"] == 1
    lengths = [len(r["input_ids"]) for r in built["train"]]
    assert max(lengths) == 64
    cut = built["train"][1]
    prompt_len = len(byte_ids("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"))
    assert cut["labels"][:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert cut["labels"][prompt_len:] == [3 + ord("y")] * (64 - prompt_len)


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


# ----------------------------------------------------------------------------------------------
# collator
# ----------------------------------------------------------------------------------------------


def test_sft_collator_pads_right_with_ignore_labels(byte_tok):
    features = [
        {"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [-100, 6, 7]},
        {"input_ids": [9], "attention_mask": [1], "labels": [9]},
    ]
    batch = SFTCollator(byte_tok)(features)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [9, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [9, -100, -100]]
    assert all(t.dtype == torch.long for t in batch.values())
    padded = SFTCollator(byte_tok, pad_to_multiple_of=8)(features)
    assert padded["input_ids"].shape == (2, 8)
    assert padded["labels"][0].tolist() == [-100, 6, 7] + [-100] * 5
    assert padded["input_ids"][1].tolist() == [9] + [0] * 7


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


# ----------------------------------------------------------------------------------------------
# pretraining
# ----------------------------------------------------------------------------------------------


def _docs(n: int) -> list[dict]:
    return [{"text": f"doc {i}: " + "lorem ipsum " * (i % 9) + "每期的利率" * (i % 4)} for i in range(n)]


def _stream(tokenizer, docs: list[dict]) -> list[int]:
    stream = []
    for doc in docs:
        if doc["text"].strip():
            stream += tokenizer(doc["text"], add_special_tokens=False)["input_ids"] + [0]
    return stream


@pytest.mark.parametrize("batch_size", [1000, 3])
def test_packing_keeps_every_token_but_the_tail(bpe_tok, tmp_path, monkeypatch, batch_size):
    monkeypatch.setattr(data, "_MAP_BATCH_SIZE", batch_size)  # 3 exercises blocks spanning map batches
    docs = _docs(40) + [{"text": "   "}]
    path = write_jsonl(tmp_path / "p.jsonl", docs)
    block = 24
    built, stats = build_pretrain_dataset(bpe_tok, path, block_size=block, cache_dir=tmp_path / "cache")
    blocks = built["train"]
    stream = _stream(bpe_tok, docs)
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
    path = write_jsonl(tmp_path / "p.jsonl", _docs(60))
    one, _ = build_pretrain_dataset(bpe_tok, path, block_size=16, cache_dir=tmp_path / "a")
    two, _ = build_pretrain_dataset(bpe_tok, path, block_size=16, num_proc=2, cache_dir=tmp_path / "b")
    assert one["train"]["input_ids"][:] == two["train"]["input_ids"][:]


def test_pretrain_validation_split(byte_tok, tmp_path):
    docs = _docs(30)
    path = write_jsonl(tmp_path / "p.jsonl", docs)
    built, stats = build_pretrain_dataset(
        byte_tok, path, block_size=16, validation_fraction=0.2, seed=7, cache_dir=tmp_path
    )
    assert stats["train"]["held_out_for_validation"] == 6 and stats["train"]["rows_out"] == 24
    assert stats["validation"]["rows_out"] == 6
    assert stats["train"]["tokens"] + stats["validation"]["tokens"] == len(_stream(byte_tok, docs))
    train_idx, val_idx = data._holdout_indices(30, 0.2, 7)
    assert sorted(train_idx + val_idx) == list(range(30)) and len(val_idx) == 6
    assert data._holdout_indices(30, 0.2, 7) == (train_idx, val_idx)
    assert data._holdout_indices(30, 0.2, 8)[1] != val_idx
    # the held-out documents are exactly the ones packed into validation, in order
    expected = _stream(byte_tok, [docs[i] for i in val_idx])
    flat = [t for b in built["validation"] for t in b["input_ids"]]
    assert flat == expected[: len(flat)]

    with_file, _ = build_pretrain_dataset(
        byte_tok, path, validation_files=FIXTURES / "pretrain.jsonl", block_size=16, cache_dir=tmp_path
    )
    assert len(with_file["validation"]) == len(_stream(byte_tok, _read(FIXTURES / "pretrain.jsonl"))) // 16
    with pytest.raises(ValueError, match="fewer than one block"):
        build_pretrain_dataset(byte_tok, path, block_size=200, validation_fraction=0.01, cache_dir=tmp_path)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


# ----------------------------------------------------------------------------------------------
# caching
# ----------------------------------------------------------------------------------------------


def _count_calls(monkeypatch, name: str) -> list[int]:
    calls = [0]
    original = getattr(data, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(data, name, counted)
    return calls


def test_second_run_reads_the_cache(bpe_tok, tmp_path, monkeypatch):
    tokenize_docs = _count_calls(monkeypatch, "_tokenize_documents")
    pack = _count_calls(monkeypatch, "_pack_blocks")
    tokenize_chats = _count_calls(monkeypatch, "_tokenize_chats")
    pretrain_path = write_jsonl(tmp_path / "p.jsonl", _docs(30))
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
from minimind_hf import data
from tests.test_data import make_byte_tokenizer
calls = []
original = data._tokenize_chats
data._tokenize_chats = lambda *a, **k: calls.append(1) or original(*a, **k)
built, _ = data.build_sft_dataset(make_byte_tokenizer(), sys.argv[1], cache_dir=sys.argv[2])
print(json.dumps({"calls": len(calls), "cache": built["train"].cache_files[0]["filename"]}))
"""


@pytest.mark.slow
def test_cache_is_reused_by_a_new_process(tmp_path):
    """Fingerprints are stable across interpreters: a second process tokenises nothing."""
    import subprocess
    import sys

    root = Path(__file__).parent.parent
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


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kind, line, reason",
    [
        ("bad_json.jsonl", "pretrain", 3, "invalid_json"),
        ("bad_role.jsonl", "chat", 2, "wrong_role"),
        ("missing_field.jsonl", "chat", 3, "missing_field"),
        ("dpo_prompt_mismatch.jsonl", "dpo", 2, "prompt_mismatch"),
    ],
)
def test_fixture_errors_name_file_and_line(name, kind, line, reason, tmp_path):
    path = FIXTURES / name
    with pytest.raises(DataFormatError) as info:
        load_jsonl_dataset(path, kind=kind, cache_dir=tmp_path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert info.value.reason == reason and isinstance(info.value, ValueError)


GOOD_CHAT = {"conversations": chat(("user", "Hi"), ("assistant", "你好"))}


@pytest.mark.parametrize(
    "bad, reason, fragment",
    [
        ('{"conversations": [', "invalid_json", "invalid JSON"),
        ("[1, 2]", "not_an_object", "expected a JSON object"),
        ({"messages": []}, "missing_field", '"conversations"'),
        ({"conversations": "Hi"}, "wrong_type", "must be a list"),
        ({"conversations": []}, "empty_field", "empty list"),
        ({"conversations": [{"role": "user"}]}, "missing_field", '"content"'),
        ({"conversations": chat(("user", "Hi"), ("assistant", 3))}, "wrong_type", "content must be a string"),
        ({"conversations": chat(("user", "Hi"), ("model", "x"))}, "wrong_role", "'model'"),
        ({"conversations": chat(("assistant", "x"), ("user", "Hi"))}, "wrong_role", "'user' was expected"),
        ({"conversations": chat(("user", "a"), ("system", "b"), ("assistant", "c"))}, "wrong_role", "system"),
        ({"conversations": chat(("user", "Hi"), ("assistant", "x"), ("user", "more"))}, "wrong_role", "end with"),
        ({"conversations": chat(("user", "Hi<|im_end|>"), ("assistant", "x"))}, "control_token_in_text", "<|im_end|>"),
        ({"en": "Open", "zh": ""}, "empty_field", '"zh" is empty'),
        ({"en": 5, "zh": "五"}, "wrong_type", '"en" must be a string'),
    ],
)
def test_chat_record_errors(tmp_path, bad, reason, fragment):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD_CHAT, GOOD_CHAT, bad, GOOD_CHAT])
    with pytest.raises(DataFormatError) as info:
        load_jsonl_dataset(path, kind="chat", cache_dir=tmp_path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert info.value.reason == reason
    assert fragment in str(info.value)


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataFormatError, match=f"{re.escape(str(path))}:2: not UTF-8") as info:
        load_jsonl_dataset(path, kind="pretrain", cache_dir=tmp_path)
    assert info.value.reason == "invalid_utf8"


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


# ----------------------------------------------------------------------------------------------
# loading: globs, gzip, dataset directories and Hub names
# ----------------------------------------------------------------------------------------------


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
    real = data.datasets.Dataset.from_list([{"text": "hello"}])

    def fake_load_dataset(path, name=None, split=None, cache_dir=None):
        seen.update(path=path, name=name, split=split)
        return real

    monkeypatch.setattr(data.datasets, "load_dataset", fake_load_dataset)
    dataset = load_jsonl_dataset("someone/finance-corpus:zh_tw", split="validation", kind="pretrain")
    assert seen == {"path": "someone/finance-corpus", "name": "zh_tw", "split": "validation"}
    assert list(dataset["text"]) == ["hello"]
    with pytest.raises(FileNotFoundError):
        load_jsonl_dataset("data/missing.jsonl")  # looks like owner/name, but is a missing file


# ----------------------------------------------------------------------------------------------
# DPO
# ----------------------------------------------------------------------------------------------


def test_dpo_rows_split_prompt_and_replies(tmp_path):
    built, stats = build_dpo_dataset(FIXTURES / "dpo.jsonl", cache_dir=tmp_path)
    rows = _read(FIXTURES / "dpo.jsonl")
    assert stats["train"]["rows_in"] == stats["train"]["rows_out"] == len(rows) == len(built["train"])
    for raw, row in zip(rows, built["train"], strict=True):
        assert row["prompt"] == raw["chosen"][:-1] == raw["rejected"][:-1]
        assert row["chosen"] == raw["chosen"][-1:] and row["rejected"] == raw["rejected"][-1:]


def test_dpo_parallel_and_explicit_rows(tmp_path):
    built, _ = build_dpo_dataset(
        FIXTURES / "dpo_parallel.jsonl", system_prompt=FINANCE_SYSTEM_PROMPT, cache_dir=tmp_path
    )
    raw = _read(FIXTURES / "dpo_parallel.jsonl")[0]
    row = built["train"][0]
    assert row["prompt"] == translation_messages(raw["en"], prompt_id=0, system=FINANCE_SYSTEM_PROMPT)
    assert row["chosen"] == [{"role": "assistant", "content": raw["chosen"]}]
    assert row["rejected"] == [{"role": "assistant", "content": raw["rejected"]}]

    explicit = {
        "prompt": chat(("user", "Hi")),
        "chosen": chat(("assistant", "你好")),
        "rejected": chat(("assistant", "hello")),
    }
    path = write_jsonl(tmp_path / "explicit.jsonl", [explicit])
    built, _ = build_dpo_dataset(path, cache_dir=tmp_path)
    assert built["train"][0] == explicit


def test_dpo_rows_work_with_trl(byte_tok, tmp_path):
    from trl.data_utils import apply_chat_template, is_conversational

    built, _ = build_dpo_dataset(FIXTURES / "dpo.jsonl", cache_dir=tmp_path)
    row = built["train"][0]
    assert is_conversational(row)
    rendered = apply_chat_template(row, byte_tok)
    assert rendered["prompt"].endswith("<|im_start|>assistant\n")
    assert rendered["chosen"] == row["chosen"][0]["content"] + "<|im_end|>\n"
    assert rendered["rejected"] == row["rejected"][0]["content"] + "<|im_end|>\n"


@pytest.mark.parametrize(
    "bad, reason",
    [
        (
            {"chosen": chat(("user", "A"), ("assistant", "x")), "rejected": chat(("user", "B"), ("assistant", "y"))},
            "prompt_mismatch",
        ),
        (
            {
                "chosen": chat(("user", "A"), ("assistant", "x")),
                "rejected": chat(("user", "A"), ("assistant", "z"), ("user", "A"), ("assistant", "y")),
            },
            "prompt_mismatch",
        ),
        (
            {"chosen": chat(("user", "A"), ("assistant", "x")), "rejected": chat(("user", "A"), ("assistant", "x"))},
            "identical_pair",
        ),
        ({"chosen": chat(("assistant", "x")), "rejected": chat(("assistant", "y"))}, "wrong_role"),
        ({"chosen": chat(("user", "A"), ("assistant", "x"))}, "missing_field"),
        ({"en": "Open", "chosen": "開啟", "rejected": "开启"}, "mixed_formats"),
        ({"prompt": chat(("user", "A")), "chosen": chat(("assistant", "x")), "rejected": "y"}, "wrong_type"),
    ],
)
def test_dpo_record_errors(tmp_path, bad, reason):
    good = _read(FIXTURES / "dpo.jsonl")[0]
    path = write_jsonl(tmp_path / "dpo.jsonl", [good, bad])
    with pytest.raises(DataFormatError) as info:
        build_dpo_dataset(path, cache_dir=tmp_path)
    assert str(info.value).startswith(f"{path}:2: ") and info.value.reason == reason
