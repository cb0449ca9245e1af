"""Reading evaluation data files: validation texts for perplexity, en/zh pairs for translation.

Malformed rows raise ``ValueError`` naming file and line; rows that are merely unusable (empty
text) are dropped and counted by reason, and the counts are returned with the data.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, NamedTuple

from .jsonl import read_jsonl
from .prompts import translation_messages


def _chat_text(tokenizer: Any, messages: Any, where: str) -> str:
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ValueError(f"{where}: expected a list of {{'role', 'content'}} messages")
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception as err:  # jinja raises its own types (unknown role, missing key, ...)
        raise ValueError(f"{where}: the chat template rejected this conversation: {err}") from err


class ValidationTexts(NamedTuple):
    """What :func:`load_validation_texts` read: the texts, their kind and the dropped rows by reason."""

    texts: list[str]
    kind: str  # "text" (plain documents) or "chat" (rendered with the chat template)
    dropped: Counter[str]


def load_validation_texts(
    path: str | os.PathLike[str],
    tokenizer: Any,
    limit: int | None = None,
    prompt_id: int = 0,
    system: str | None = None,
) -> ValidationTexts:
    """Texts to score from a validation jsonl, their kind, and the count of dropped rows by reason.

    ``{"text"}`` rows are plain documents; chat rows (``conversations``, or the ``chosen`` side of a
    DPO row) and parallel ``{"en", "zh"}`` rows are rendered with the chat template, as in training.
    The two kinds are tokenized differently, so a file must hold one kind only.
    """
    texts: list[str] = []
    dropped: Counter[str] = Counter()
    kind: str | None = None
    for line_no, row in read_jsonl(path):
        if limit is not None and len(texts) >= limit:
            break
        where = f"{path}:{line_no}"
        row_kind = "text" if "text" in row else "chat"
        if kind is None:
            kind = row_kind
        elif row_kind != kind:
            raise ValueError(f"{where}: a {row_kind} row in a file of {kind} rows; keep one kind per validation file")
        if "text" in row:
            text = row["text"]
            if not isinstance(text, str):
                raise ValueError(f"{where}: 'text' must be a string, got {type(text).__name__}")
        elif "conversations" in row or "chosen" in row:
            text = _chat_text(tokenizer, row.get("conversations", row.get("chosen")), where)
        elif "en" in row and "zh" in row:
            if not str(row["en"]).strip() or not str(row["zh"]).strip():
                dropped["empty en or zh"] += 1
                continue
            text = _chat_text(tokenizer, translation_messages(row["en"], row["zh"], prompt_id, system), where)
        else:
            raise ValueError(f"{where}: no 'text', 'conversations', 'chosen' or 'en'/'zh' field (keys: {sorted(row)})")
        if not text.strip():
            dropped["empty text"] += 1
            continue
        texts.append(text)
    return ValidationTexts(texts, kind or "text", dropped)


def load_test_pairs(
    path: str | os.PathLike[str], limit: int | None = None
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The first ``limit`` usable ``{"en", "zh"}`` rows of a test jsonl, and dropped rows by reason.

    Each pair keeps an ``id`` (the row's own ``id``, else ``file:line``) and its ``source`` if any.
    """
    pairs: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for line_no, row in read_jsonl(path):
        if limit is not None and len(pairs) >= limit:
            break
        where = f"{path}:{line_no}"
        if "en" not in row or "zh" not in row:
            raise ValueError(f"{where}: a test row needs 'en' and 'zh' fields (keys: {sorted(row)})")
        en, zh = row["en"], row["zh"]
        if not isinstance(en, str) or not isinstance(zh, str):
            raise ValueError(f"{where}: 'en' and 'zh' must be strings")
        if not en.strip() or not zh.strip():
            dropped["empty en or zh"] += 1
            continue
        pair = {"id": str(row.get("id", where)), "en": en.strip(), "zh": zh.strip()}
        if "source" in row:
            pair["source"] = row["source"]
        pairs.append(pair)
    return pairs, dropped
