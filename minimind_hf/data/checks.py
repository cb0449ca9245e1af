"""Record formats of the stage files, and the checks every record passes before it is tokenised.

Record formats (one JSON object per line):

* pretrain: ``{"text": ...}``
* sft / lora: ``{"conversations": [{"role", "content"}, ...]}`` (an optional leading ``system``
  turn, then ``user`` / ``assistant`` alternating, ending with ``assistant``), or a parallel pair
  ``{"en": ..., "zh": ...}`` turned into a chat with :func:`minimind_hf.prompts.translation_messages`.
* dpo: ``{"chosen": [messages], "rejected": [messages]}`` sharing every turn but the last;
  ``{"prompt": [messages], "chosen": [messages], "rejected": [messages]}``; or a parallel preference
  ``{"en": ..., "chosen": "...", "rejected": "..."}``.

Bad input raises :class:`DataFormatError` naming the file and line (or the dataset row). With
``skip_bad_rows=True`` bad records are dropped instead; each drop is counted by reason, logged and
returned in the stats.
"""

from __future__ import annotations

from typing import Any

from ..tokenization import SPECIAL_TOKENS

CHAT_ROLES = ("system", "user", "assistant")
CONTROL_TOKENS = SPECIAL_TOKENS
"""The project's special tokens; chat text containing them verbatim is rejected."""

RECORD_KINDS = ("pretrain", "chat", "dpo")
"""What :func:`check_record` can check records against (``None`` checks JSON objects only)."""


class DataFormatError(ValueError):
    """A data file or record does not have the expected format.

    ``where`` is ``"path:line"`` for local files (1-based line), ``"name[split] row i"`` for
    datasets loaded by name, or the bare path for whole-file problems; ``reason`` is a short
    machine-readable tag such as ``"invalid_json"`` or ``"wrong_role"``.
    """

    def __init__(self, where: str, message: str, reason: str = "invalid") -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.reason = reason


class BadRecord(Exception):
    """Raised by the record checks; the loader turns it into a :class:`DataFormatError` or a counted skip."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _check_no_control_tokens(text: str, name: str) -> None:
    for token in CONTROL_TOKENS:
        if token in text:
            raise BadRecord("control_token_in_text", f'{name} contains the special token "{token}" verbatim')


def _require_str(record: dict, key: str, *, allow_empty: bool = False, control_check: bool = True) -> str:
    value = record.get(key)
    if value is None:
        raise BadRecord("missing_field", f'missing field "{key}"')
    if not isinstance(value, str):
        raise BadRecord("wrong_type", f'field "{key}" must be a string, got {type(value).__name__}')
    if not allow_empty and not value.strip():
        raise BadRecord("empty_field", f'field "{key}" is empty')
    if control_check:
        _check_no_control_tokens(value, f'field "{key}"')
    return value


def _check_turns(messages: Any, name: str, *, last_role: str | None = "assistant") -> list[dict]:
    """Check a message list: known roles, string contents, system first, user/assistant alternating."""
    if messages is None:
        raise BadRecord("missing_field", f'missing field "{name}"')
    if not isinstance(messages, list):
        raise BadRecord("wrong_type", f'field "{name}" must be a list of messages, got {type(messages).__name__}')
    if not messages:
        raise BadRecord("empty_field", f'field "{name}" is an empty list')
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRecord("wrong_type", f"{name}[{i}] must be an object, got {type(message).__name__}")
        for key in ("role", "content"):
            if message.get(key) is None:
                raise BadRecord("missing_field", f'{name}[{i}] has no "{key}"')
        if not isinstance(message["content"], str):
            raise BadRecord("wrong_type", f"{name}[{i}].content must be a string")
        if message["role"] not in CHAT_ROLES:
            raise BadRecord(
                "wrong_role", f"{name}[{i}] has role {message['role']!r}; expected one of {', '.join(CHAT_ROLES)}"
            )
        _check_no_control_tokens(message["content"], f"{name}[{i}].content")
    offset = 1 if messages[0]["role"] == "system" else 0
    for i in range(offset, len(messages)):
        expected = "user" if (i - offset) % 2 == 0 else "assistant"
        if messages[i]["role"] != expected:
            raise BadRecord(
                "wrong_role",
                f"{name}[{i}] has role {messages[i]['role']!r} where {expected!r} was expected "
                "(an optional system turn first, then user and assistant alternating)",
            )
    if offset == len(messages):
        raise BadRecord("wrong_role", f"{name} holds only a system turn")
    if last_role is not None and messages[-1]["role"] != last_role:
        raise BadRecord("wrong_role", f"{name} must end with a {last_role} turn, not {messages[-1]['role']!r}")
    return messages


def _check_pretrain(record: dict) -> str:
    _require_str(record, "text", allow_empty=True, control_check=False)
    return "text"


def _check_chat(record: dict) -> str:
    if record.get("conversations") is not None:
        _check_turns(record["conversations"], "conversations")
        return "conversations"
    if record.get("en") is not None or record.get("zh") is not None:
        _require_str(record, "en")
        _require_str(record, "zh")
        return "parallel"
    raise BadRecord("missing_field", 'missing field "conversations" (or the parallel pair "en" / "zh")')


def _first_difference(a: list[dict], b: list[dict]) -> int | None:
    """Index of the first turn where two message lists differ (None when equal)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):  # lengths compared below
        if x["role"] != y["role"] or x["content"] != y["content"]:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _check_dpo(record: dict) -> str:
    if record.get("en") is not None:
        _require_str(record, "en")
        chosen = _require_str(record, "chosen")
        rejected = _require_str(record, "rejected")
        if chosen.strip() == rejected.strip():
            raise BadRecord("identical_pair", "chosen and rejected are the same text")
        return "parallel"
    if record.get("prompt") is not None:
        prompt = _check_turns(record["prompt"], "prompt", last_role="user")
        replies = []
        for key in ("chosen", "rejected"):
            reply = record.get(key)
            if reply is None:
                raise BadRecord("missing_field", f'missing field "{key}"')
            if not isinstance(reply, list) or len(reply) != 1:
                raise BadRecord("wrong_type", f'field "{key}" must be a list holding one assistant message')
            _check_turns(prompt + reply, key)
            replies.append(reply[0]["content"])
        if replies[0] == replies[1]:
            raise BadRecord("identical_pair", "chosen and rejected replies are the same text")
        return "prompt"
    chosen = _check_turns(record.get("chosen"), "chosen")
    rejected = _check_turns(record.get("rejected"), "rejected")
    if len(chosen) < 2:
        raise BadRecord("missing_prompt", "chosen holds no prompt turns before the final assistant turn")
    diff = _first_difference(chosen[:-1], rejected[:-1])
    if diff is not None:
        raise BadRecord(
            "prompt_mismatch",
            f"chosen and rejected do not share the same prompt turns (first difference at turn {diff}); "
            "they may differ only in the final assistant turn",
        )
    if chosen[-1]["content"] == rejected[-1]["content"]:
        raise BadRecord("identical_pair", "chosen and rejected end with the same assistant reply")
    return "conversations"


_CHECKS = {"pretrain": _check_pretrain, "chat": _check_chat, "dpo": _check_dpo}


def check_kind(kind: str | None) -> None:
    """Refuse a record kind that :func:`check_record` does not know."""
    if kind is not None and kind not in RECORD_KINDS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {RECORD_KINDS} or None")


def check_record(record: Any, kind: str | None) -> str:
    """Check one record against ``kind``; returns its flavour (``"conversations"``, ``"parallel"``, ...).

    Raises :class:`BadRecord` with a reason tag and a message (without the place, which the caller knows).
    """
    if not isinstance(record, dict):
        raise BadRecord("not_an_object", f"expected a JSON object, got {type(record).__name__}")
    if kind is None:
        return "object"
    return _CHECKS[kind](record)
