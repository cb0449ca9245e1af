"""SFT / LoRA data: ChatML ids with the loss on assistant replies (and their ``<|im_end|>``) only.

Labels follow the transformers convention: ``labels`` is aligned with ``input_ids`` (the model
shifts them) and ``-100`` marks positions that carry no loss.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Dataset, Features, Value

from ..prompts import parse_prompt_id, prompt_index, takes_system_turn, translation_messages
from ..tokenization import encode_chat_pieces, hole_messages, split_chat_pieces
from .layout import DEFAULT_SEQUENCE_LENGTH
from .loading import MAP_BATCH_SIZE, map_sources
from .splits import (
    BuiltDataset,
    PathSpec,
    arrow_column,
    assemble_splits,
    built,
    check_split_args,
    column,
    fingerprint,
    tokenizer_fingerprint,
)

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Label value that the loss ignores (``torch.nn.CrossEntropyLoss`` default)."""

# Which tokens carry a label, for ``<|im_start|>assistant\n{reply}<|im_end|>\n``:
#   <|im_start|> assistant \n          -> -100 (the header is given at inference time)
#   {reply} <|im_end|>                 -> labelled (the model must learn to stop)
#   \n                                 -> -100 (the template writes it after the stop token)
# and every system / user token -> -100.
#
# The original MiniMind ``SFTDataset._generate_loss_mask`` found the ids of "<|im_start|>assistant"
# and marked positions ``start + 1`` to ``end + len(eos_ids)`` inclusive, where ``start`` is the
# index just after that header and ``end`` the index of <|im_end|>. Two faults follow. The end is one
# token late: the "\n" after <|im_end|> was trained as if it belonged to the reply. The ``+ 1``
# assumes the header's "\n" is a token of its own; with the shipped tokenizer a reply that starts
# with "\n" or two spaces merges with it when the whole conversation is tokenised at once ("\n\n"
# and "\n " are single tokens), so that mask dropped a reply token and the model was trained on a
# header it never sees at inference.
#
# Here the boundaries come from the chat template itself: the text it renders up to the generation
# prompt, then the text it adds for the reply, each tokenised on its own. The trained sequence
# therefore starts every reply right after the exact tokens of the generation prompt, as
# ``generate`` does, and the mask needs no search for header tokens. Tests compare it token by token
# with hand-built ids, with ``return_assistant_tokens_mask`` and with the original rule.


def chat_segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]]:
    """Split the rendered chat into ``(text, trained)`` pieces using the tokenizer's chat template.

    For every assistant turn, the template is rendered up to the generation prompt and then with
    the reply; the difference is the reply text. Its part up to and including the eos token
    (``<|im_end|>``) is trained, what the template writes after it is not.
    """
    return [("".join(text for text, _ in pieces), trained) for pieces, trained in _segment_pieces(tokenizer, messages)]


def _segment_pieces(tokenizer, messages: list[dict]) -> list[tuple[list[tuple[str, bool]], bool]]:
    """:func:`chat_segments`, each segment as its ``(text, is_content)`` pieces: the template's text, and the
    messages' contents (tokenised with control-token text kept as text, see
    :func:`minimind_hf.tokenization.encode_chat_pieces`)."""
    eos = tokenizer.eos_token
    if not eos:
        raise ValueError("the tokenizer has no eos_token to close assistant replies")
    holes, contents = hole_messages(messages)  # rendered with a placeholder per content

    def render(turns: list[dict], generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=generation_prompt)

    segments: list[tuple[str, bool]] = []
    done = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(holes[:index], True)
        full = render(holes[: index + 1], False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise ValueError(
                "the chat template does not render conversations as growing prefixes, so assistant replies "
                "cannot be located; use a ChatML template"
            )
        reply = full[len(prompt) :]
        cut = reply.rfind(eos)
        if cut < 0:
            raise ValueError(f"the chat template does not close assistant replies with {eos!r}")
        cut += len(eos)
        segments.append((prompt[len(done) :], False))
        segments.append((reply[:cut], True))
        segments.append((reply[cut:], False))
        done = full
    if messages[-1]["role"] != "assistant":  # turns after the last reply (not trained)
        segments.append((render(holes, False)[len(done) :], False))
    return [(split_chat_pieces(text, contents), trained) for text, trained in segments if text]


def _labelled(segments: list[tuple[list, bool]], encoded: list[list[list[int]]]) -> tuple[list[int], list[int]]:
    input_ids: list[int] = []
    labels: list[int] = []
    for (_, trained), pieces in zip(segments, encoded, strict=True):
        ids = [token for piece in pieces for token in piece]
        input_ids.extend(ids)
        labels.extend(ids if trained else [IGNORE_INDEX] * len(ids))
    return input_ids, labels


def _encode_chats(
    tokenizer,
    per_chat: list[list[tuple[list[tuple[str, bool]], bool]]],
    max_length: int | None,
) -> list[dict[str, Any]]:
    """Tokenise the segments of many chats in two tokenizer calls; label, then cut to ``max_length``."""
    flat = [pieces for segments in per_chat for pieces, _ in segments]
    encoded = encode_chat_pieces(tokenizer, flat)
    results, position = [], 0
    for segments in per_chat:
        input_ids, labels = _labelled(segments, encoded[position : position + len(segments)])
        position += len(segments)
        truncated = max_length is not None and len(input_ids) > max_length
        if truncated:
            input_ids, labels = input_ids[:max_length], labels[:max_length]
        results.append(
            {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels, "truncated": truncated}
        )
    return results


def encode_chat(tokenizer, messages: list[dict], max_length: int | None = None) -> dict[str, Any]:
    """Token ids and labels of one chat (loss on assistant replies and their ``<|im_end|>`` only).

    Returns ``input_ids``, ``attention_mask``, ``labels`` (cut to ``max_length`` when given) and
    ``truncated`` (whether anything was cut).
    """
    return _encode_chats(tokenizer, [_segment_pieces(tokenizer, messages)], max_length)[0]


def _row_messages(
    row: dict, system_prompt: str | None, prompt_id: int | str, system_prompt_fraction: float = 1.0
) -> list[dict]:
    """The chat of one SFT / LoRA row (a conversation, or a parallel pair through the prompts)."""
    if row.get("conversations") is not None:
        messages = [{"role": m["role"], "content": m["content"]} for m in row["conversations"]]
        if (
            system_prompt
            and messages[0]["role"] != "system"
            and takes_system_turn(messages[0]["content"], system_prompt_fraction)
        ):
            messages.insert(0, {"role": "system", "content": system_prompt})
        return messages
    if system_prompt and not takes_system_turn(row["en"], system_prompt_fraction):
        system_prompt = None
    index = prompt_index(prompt_id, row["en"])
    return translation_messages(row["en"], row["zh"], prompt_id=index, system=system_prompt)


_TOKENIZED_CHATS = Features(
    {
        "input_ids": datasets.Sequence(Value("int32")),
        "attention_mask": datasets.Sequence(Value("int8")),
        "labels": datasets.Sequence(Value("int32")),
        "num_target_tokens": Value("int32"),
        "truncated": Value("bool"),
    }
)


def _tokenize_chats(
    batch: dict[str, list],
    tokenizer,
    max_length: int,
    system_prompt: str | None,
    prompt_id: int | str,
    system_prompt_fraction: float = 1.0,
) -> dict[str, list]:
    """Batched ``Dataset.map`` function: chats -> ids, labels and per-row counts."""
    rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
    per_chat = [
        _segment_pieces(tokenizer, _row_messages(row, system_prompt, prompt_id, system_prompt_fraction)) for row in rows
    ]
    encoded = _encode_chats(tokenizer, per_chat, max_length)
    out = {name: [chat[name] for chat in encoded] for name in ("input_ids", "attention_mask", "labels", "truncated")}
    out["num_target_tokens"] = [sum(label != IGNORE_INDEX for label in chat["labels"]) for chat in encoded]
    return out


def _finish_chats(chats: Dataset, stats: dict) -> Dataset:
    """Drop rows that lost every assistant token to truncation; count and measure what stays."""
    targets = column(chats, "num_target_tokens")
    keep = np.flatnonzero(targets > 0)
    lost = len(chats) - len(keep)
    if lost:
        stats["dropped"]["no_assistant_tokens_after_truncation"] = lost
        logger.warning("dropped %d row(s) whose assistant replies were cut off entirely by max_length", lost)
        chats = chats.select(keep, new_fingerprint=fingerprint(chats._fingerprint, "has-targets"))
    lengths = pc.list_value_length(arrow_column(chats, "input_ids")).to_numpy()
    stats["rows_out"] = len(chats)
    stats["tokens"] = int(lengths.sum())
    stats["target_tokens"] = int(targets[keep].sum())
    stats["truncated_rows_kept"] = int(column(chats, "truncated").sum())
    return chats.remove_columns(["num_target_tokens", "truncated"])


def build_sft_dataset(
    tokenizer,
    train_files: PathSpec,
    validation_files: PathSpec | None = None,
    max_length: int = DEFAULT_SEQUENCE_LENGTH,
    system_prompt: str | None = None,
    prompt_id: int | str = 0,
    *,
    system_prompt_fraction: float = 1.0,
    validation_fraction: float = 0.0,
    seed: int = 42,
    num_proc: int = 1,
    skip_bad_rows: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> BuiltDataset:
    """SFT / LoRA rows: ChatML ids with labels on assistant replies (and their ``<|im_end|>``) only.

    Rows are ``{"conversations": [...]}`` chats or parallel ``{"en", "zh"}`` pairs; a pair becomes
    ``translation_messages(en, zh, prompt_id=prompt_id, system=system_prompt)`` (``prompt_id="mixed"``
    picks a stable phrasing per sentence with :func:`~minimind_hf.prompts.pick_prompt`). With
    ``system_prompt`` set, chats that have no system turn get it as their first turn too; with
    ``system_prompt_fraction`` below 1 only that share of rows gets it (a stable choice per row, see
    :func:`~minimind_hf.prompts.takes_system_turn`), so a model learns to translate with and without it.

    Sequences longer than ``max_length`` are cut from the right; a row that keeps no assistant
    token is dropped and counted (``no_assistant_tokens_after_truncation``). Batch with
    :class:`SFTCollator`.

    Returns:
        ``(DatasetDict, stats)`` with ``input_ids`` / ``attention_mask`` / ``labels`` columns; stats
        per split: ``rows_in``, ``dropped`` by reason, ``rows_out``, ``tokens``, ``target_tokens``,
        ``truncated_rows_kept``.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    if not 0.0 <= system_prompt_fraction <= 1.0:
        raise ValueError(f"system_prompt_fraction must be within 0..1, got {system_prompt_fraction}")
    prompt_id = parse_prompt_id(prompt_id)
    check_split_args(validation_files, validation_fraction)
    tok_key = tokenizer_fingerprint(tokenizer)
    settings = {"max_length": max_length, "system_prompt": system_prompt, "prompt_id": prompt_id}
    if system_prompt_fraction < 1.0:  # only then, so that caches built before this setting stay valid
        settings["system_prompt_fraction"] = system_prompt_fraction

    def tokenized(dataset: Dataset, stats: dict) -> Dataset:
        return dataset.map(
            _tokenize_chats,
            batched=True,
            batch_size=MAP_BATCH_SIZE,
            fn_kwargs={"tokenizer": tokenizer, **settings},
            remove_columns=dataset.column_names,
            features=_TOKENIZED_CHATS,
            num_proc=num_proc if num_proc > 1 else None,
            new_fingerprint=fingerprint(dataset._fingerprint, "tokenize-chats", tok_key, sorted(settings.items())),
            desc="Tokenizing chats",
        )

    def chats(files: PathSpec, split: str) -> tuple[Dataset, dict]:
        dataset, split_stats = map_sources(
            files, split, "chat", skip_bad_rows=skip_bad_rows, cache_dir=cache_dir, prepare=tokenized
        )
        return _finish_chats(dataset, split_stats), split_stats

    return built("sft", assemble_splits(chats, train_files, validation_files, validation_fraction, seed))


@dataclass
class SFTCollator:
    """Pad SFT rows to the longest in the batch: right padding, ``pad_token_id`` (0), labels -100.

    Args:
        tokenizer: supplies ``pad_token_id`` (0 when the tokenizer has none).
        pad_to_multiple_of: round the padded length up to a multiple of this (tensor cores like 8/64).
    """

    tokenizer: Any
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("SFTCollator got an empty batch")
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        length = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": torch.full((len(features), length), pad_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(features), length), dtype=torch.long),
            "labels": torch.full((len(features), length), IGNORE_INDEX, dtype=torch.long),
        }
        for row, feature in enumerate(features):
            ids = torch.as_tensor(feature["input_ids"], dtype=torch.long)
            n = ids.numel()
            batch["input_ids"][row, :n] = ids
            mask = feature.get("attention_mask")
            batch["attention_mask"][row, :n] = 1 if mask is None else torch.as_tensor(mask, dtype=torch.long)
            labels = feature.get("labels")
            batch["labels"][row, :n] = ids if labels is None else torch.as_tensor(labels, dtype=torch.long)
        return batch
