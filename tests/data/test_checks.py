"""minimind_hf.data.checks: every bad record is refused with its file, line and reason."""

from __future__ import annotations

import re

import pytest
from tests.data_helpers import FIXTURES, GOOD_CHAT, chat, read_rows, write_jsonl

from minimind_hf.data import DataFormatError, build_dpo_dataset, load_jsonl_dataset


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
    good = read_rows(FIXTURES / "dpo.jsonl")[0]
    path = write_jsonl(tmp_path / "dpo.jsonl", [good, bad])
    with pytest.raises(DataFormatError) as info:
        build_dpo_dataset(path, cache_dir=tmp_path)
    assert str(info.value).startswith(f"{path}:2: ") and info.value.reason == reason
