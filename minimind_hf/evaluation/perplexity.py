"""Perplexity of a causal LM on a list of texts (or a ``datasets.Dataset`` with a text column).

Two ways to cut documents into model rows:

* **one per row** (``packed=False``, the default): each document is scored on its own, so no
  document sees another one's tokens. Its first token has no context and is not scored.
* **packed** (``packed=True``): documents are joined into one token stream, each followed by the
  ``separator`` token (``<|endoftext|>``, the tokenizer's document separator), the way pretraining
  batches are built; the first token of a document is then predicted from the end of the previous one.

Either way a row longer than ``block_size`` is split into windows of ``block_size`` tokens that
overlap by one token, so every token after the first is scored exactly once (with shorter context
at a window start). The texts are tokenized as they are, with no special tokens added: a chat row
rendered by the chat template already carries its own. For plain documents pass
``split_special_tokens=True``, as pretraining does, so that control-token text inside a document
stays plain text.

The result is the token-weighted mean negative log-likelihood (natural log) over all scored tokens
- padding never counts - and its exponential, the perplexity.

:func:`load_validation_texts` reads the texts to score from a validation jsonl: malformed rows raise
``ValueError`` naming file and line; rows that are merely unusable (empty text) are dropped and counted
by reason.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.layout import DEFAULT_SEQUENCE_LENGTH
from ..prompts import translation_messages
from ..tokenization import ENDOFTEXT
from ..utils.jsonl import read_jsonl

DOCUMENT_SEPARATOR = ENDOFTEXT


def _texts_of(texts_or_dataset: Any, text_column: str) -> list[str]:
    """Accept a list/iterable of strings or a ``datasets`` (Iterable)Dataset with ``text_column``."""
    if isinstance(texts_or_dataset, str):
        raise TypeError("perplexity: pass a list of texts, not a single string")
    column_names = getattr(texts_or_dataset, "column_names", None)
    if column_names is not None:
        if text_column not in column_names:
            raise KeyError(f"perplexity: the dataset has no {text_column!r} column (columns: {column_names})")
        return [row[text_column] for row in texts_or_dataset]
    texts = list(texts_or_dataset)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"perplexity: item {i} is a {type(text).__name__}, expected a string")
    return texts


def _windows(ids: list[int], block_size: int) -> list[list[int]]:
    """Split ``ids`` into windows of at most ``block_size`` that overlap by one token."""
    if len(ids) <= block_size:
        return [ids]
    step = block_size - 1
    return [ids[start : start + block_size] for start in range(0, len(ids) - 1, step)]


def _rows(token_lists: Iterable[list[int]], block_size: int, packed: bool, separator_id: int | None) -> list[list[int]]:
    if packed:
        stream: list[int] = []
        for ids in token_lists:
            stream.extend(ids)
            if separator_id is not None:
                stream.append(separator_id)
        return _windows(stream, block_size) if stream else []
    return [window for ids in token_lists for window in _windows(ids, block_size)]


@torch.inference_mode()
def perplexity(
    model: torch.nn.Module,
    tokenizer: Any,
    texts_or_dataset: Any,
    block_size: int = DEFAULT_SEQUENCE_LENGTH,
    batch_size: int = 8,
    packed: bool = False,
    text_column: str = "text",
    separator: str | None = DOCUMENT_SEPARATOR,
    split_special_tokens: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Token-weighted mean NLL and perplexity of ``model`` on the texts (see the module doc).

    Returns ``{"loss", "perplexity", "tokens", "documents", "rows", "skipped_documents"}``: tokens
    is the number of scored tokens, skipped_documents counts empty or single-token documents that
    contribute no scored token when not packed.
    """
    if block_size < 2:
        raise ValueError("perplexity: block_size must be at least 2")
    texts = _texts_of(texts_or_dataset, text_column)
    token_lists = []
    if texts:
        encoded = tokenizer(texts, add_special_tokens=False, split_special_tokens=split_special_tokens)
        token_lists = encoded["input_ids"]
    skipped = 0 if packed else sum(1 for ids in token_lists if len(ids) < 2)
    separator_id = None
    if packed and separator is not None:
        separator_id = tokenizer.convert_tokens_to_ids(separator)
        if separator_id is None or (separator_id == tokenizer.unk_token_id and separator != tokenizer.unk_token):
            raise ValueError(f"perplexity: separator {separator!r} is not a token of this tokenizer")
    rows = [r for r in _rows(token_lists, block_size, packed, separator_id) if len(r) >= 2]
    if not rows:
        raise ValueError(f"perplexity: nothing to score in {len(texts)} texts (all empty or one token long)")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    loss, tokens = _mean_nll(model, [(r, r) for r in rows], pad_id, batch_size, show_progress)
    return {
        "loss": loss,
        "perplexity": math.exp(loss) if loss < 700 else float("inf"),
        "tokens": tokens,
        "scored": "every token after the first of each document"
        if not packed
        else "every token of the packed stream after the first",
        "documents": len(texts),
        "rows": len(rows),
        "skipped_documents": skipped,
        "packed": packed,
        "split_special_tokens": split_special_tokens,
        "block_size": block_size,
    }


@torch.inference_mode()
def reply_perplexity(
    model: torch.nn.Module,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    block_size: int = DEFAULT_SEQUENCE_LENGTH,
    batch_size: int = 8,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Mean NLL and perplexity of the assistant replies of chats, given the turns before them.

    The replies and their ``<|im_end|>`` are the tokens SFT trains on (:func:`minimind_hf.data.sft.encode_chat`), so the
    figure is comparable with the training run's validation loss. Chats are cut at ``block_size``.
    """
    from ..data.sft import encode_chat

    rows = []
    truncated = 0
    for messages in conversations:
        encoded = encode_chat(tokenizer, messages, max_length=block_size)
        truncated += bool(encoded["truncated"])
        if any(label != -100 for label in encoded["labels"][1:]):
            rows.append((encoded["input_ids"], encoded["labels"]))
    if not rows:
        raise ValueError(f"perplexity: no assistant reply to score in {len(conversations)} chats")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    loss, tokens = _mean_nll(model, rows, pad_id, batch_size, show_progress)
    return {
        "loss": loss,
        "perplexity": math.exp(loss) if loss < 700 else float("inf"),
        "tokens": tokens,
        "scored": "assistant reply tokens and their <|im_end|> (as SFT trains), given the prompt",
        "documents": len(conversations),
        "rows": len(rows),
        "skipped_documents": len(conversations) - len(rows),
        "truncated": truncated,
        "packed": False,
        "block_size": block_size,
    }


def _mean_nll(
    model, rows: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int, show_progress: bool
) -> tuple[float, int]:
    """Token-weighted mean NLL over the labelled positions of ``(input_ids, labels)`` rows, and the token count.

    The labels are aligned with the inputs, ``-100`` where nothing is scored (the first token never is).
    """
    rows = sorted(rows, key=lambda r: len(r[0]), reverse=True)  # similar lengths together: less padding
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_nll = 0.0
    total_tokens = 0
    try:
        for start in tqdm(range(0, len(rows), batch_size), desc="perplexity", unit="batch", disable=not show_progress):
            batch = rows[start : start + batch_size]
            width = len(batch[0][0])
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (ids, row_labels) in enumerate(batch):  # right padding: real tokens never attend to padding
                input_ids[i, : len(ids)] = torch.tensor(ids)
                labels[i, : len(ids)] = torch.tensor(row_labels)
                attention_mask[i, : len(ids)] = 1
            input_ids, attention_mask, labels = input_ids.to(device), attention_mask.to(device), labels.to(device)
            logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
            targets = labels[:, 1:]
            nll = F.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.size(-1)),
                targets.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            total_nll += nll.item()
            total_tokens += int((targets != -100).sum().item())
    finally:
        model.train(was_training)
    return total_nll / total_tokens, total_tokens


# ------------------------------------------------------------------------- validation files


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
    conversations: list[list[dict[str, str]]] | tuple = ()  # chat rows: their messages (for reply_perplexity)


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
    conversations: list[list[dict[str, str]]] = []
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
            messages = row.get("conversations", row.get("chosen"))
            text = _chat_text(tokenizer, messages, where)
        elif "en" in row and "zh" in row:
            if not str(row["en"]).strip() or not str(row["zh"]).strip():
                dropped["empty_en_or_zh"] += 1
                continue
            messages = translation_messages(row["en"], row["zh"], prompt_id, system)
            text = _chat_text(tokenizer, messages, where)
        else:
            raise ValueError(f"{where}: no 'text', 'conversations', 'chosen' or 'en'/'zh' field (keys: {sorted(row)})")
        if not text.strip():
            dropped["empty_text"] += 1
            continue
        texts.append(text)
        if row_kind == "chat":
            conversations.append(messages)
    return ValidationTexts(texts, kind or "text", dropped, conversations)
