"""minimind_hf.data.sft: assistant-only labels token by token, SFT / LoRA datasets, the collator."""

from __future__ import annotations

import json

import pytest
import torch
from tests.data_helpers import FIXTURES, MULTI_TURN, byte_ids, chat, ignored, read_rows, write_jsonl

from minimind_hf.data import IGNORE_INDEX, SFTCollator, build_sft_dataset, encode_chat
from minimind_hf.prompts import (
    FINANCE_SYSTEM_PROMPT,
    TRANSLATION_PROMPTS,
    pick_prompt,
    takes_system_turn,
    translation_messages,
)


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
    for row, example in zip(read_rows(FIXTURES / "lora.jsonl"), mixed["train"], strict=True):
        wanted = TRANSLATION_PROMPTS[pick_prompt(row["en"])].format(en=row["en"])
        assert wanted in byte_tok.decode(example["input_ids"])


def test_system_prompt_added_to_chats_without_one(byte_tok, tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"conversations": MULTI_TURN[1:]}, {"conversations": MULTI_TURN}])
    built, _ = build_sft_dataset(byte_tok, path, system_prompt="SYS", cache_dir=tmp_path)
    first, second = (byte_tok.decode(r["input_ids"]) for r in built["train"])
    assert first.startswith("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\n")
    assert second.startswith(f"<|im_start|>system\n{MULTI_TURN[0]['content']}<|im_end|>")  # kept, not doubled


def test_system_prompt_fraction_gives_a_stable_share_of_rows_the_system_turn(byte_tok, tmp_path):
    pairs = [{"en": f"Sentence number {i}.", "zh": f"第{i}句。"} for i in range(200)]
    path = write_jsonl(tmp_path / "p.jsonl", pairs)
    with_system = []
    for _ in range(2):  # the same rows every build
        built, _ = build_sft_dataset(
            byte_tok, path, system_prompt="SYS", system_prompt_fraction=0.3, cache_dir=tmp_path
        )
        with_system.append(
            [byte_tok.decode(r["input_ids"]).startswith("<|im_start|>system\nSYS") for r in built["train"]]
        )
    assert with_system[0] == with_system[1]
    assert 0.2 < sum(with_system[0]) / len(pairs) < 0.4
    assert [takes_system_turn(p["en"], 0.3) for p in pairs] == with_system[0]
    everyone, _ = build_sft_dataset(byte_tok, path, system_prompt="SYS", cache_dir=tmp_path)
    assert all(byte_tok.decode(r["input_ids"]).startswith("<|im_start|>system") for r in everyone["train"])
    with pytest.raises(ValueError, match="system_prompt_fraction"):
        build_sft_dataset(byte_tok, path, system_prompt="SYS", system_prompt_fraction=1.5, cache_dir=tmp_path)


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
