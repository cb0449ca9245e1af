"""minimind_hf.data.preference: DPO rows in TRL's conversational form."""

from __future__ import annotations

from tests.data_helpers import FIXTURES, chat, read_rows, write_jsonl

from minimind_hf.data import build_dpo_dataset
from minimind_hf.prompts import FINANCE_SYSTEM_PROMPT, translation_messages


def test_dpo_rows_split_prompt_and_replies(tmp_path):
    built, stats = build_dpo_dataset(FIXTURES / "dpo.jsonl", cache_dir=tmp_path)
    rows = read_rows(FIXTURES / "dpo.jsonl")
    assert stats["train"]["rows_in"] == stats["train"]["rows_out"] == len(rows) == len(built["train"])
    for raw, row in zip(rows, built["train"], strict=True):
        assert row["prompt"] == raw["chosen"][:-1] == raw["rejected"][:-1]
        assert row["chosen"] == raw["chosen"][-1:] and row["rejected"] == raw["rejected"][-1:]


def test_dpo_parallel_and_explicit_rows(tmp_path):
    built, _ = build_dpo_dataset(
        FIXTURES / "dpo_parallel.jsonl", system_prompt=FINANCE_SYSTEM_PROMPT, cache_dir=tmp_path
    )
    raw = read_rows(FIXTURES / "dpo_parallel.jsonl")[0]
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
