"""Pretraining data: ``{"text"}`` documents tokenised, joined with ``<|endoftext|>`` and packed into blocks."""

from __future__ import annotations

import os

import datasets
import numpy as np
from datasets import Dataset, Features, Value

from ..tokenization import ENDOFTEXT
from .checks import DataFormatError
from .layout import DEFAULT_SEQUENCE_LENGTH
from .loading import MAP_BATCH_SIZE, map_sources
from .splits import (
    BuiltDataset,
    PathSpec,
    assemble_splits,
    built,
    check_split_args,
    column,
    fingerprint,
    tokenizer_fingerprint,
)

_TOKENIZED_DOCS = Features({"input_ids": datasets.Sequence(Value("int32")), "length": Value("int64")})
_PACKED_BLOCKS = Features(
    {
        "input_ids": datasets.Sequence(Value("int32")),
        "attention_mask": datasets.Sequence(Value("int8")),
        "labels": datasets.Sequence(Value("int32")),
    }
)


def _tokenize_documents(batch: dict[str, list], tokenizer, separator_id: int) -> dict[str, list]:
    """Token ids of each document followed by the separator; special-token text stays plain text."""
    # verbose=False: documents longer than model_max_length are expected here, they get packed
    encoded = tokenizer(batch["text"], add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]
    ids = [list(doc) + [separator_id] for doc in encoded]
    return {"input_ids": ids, "length": [len(doc) for doc in ids]}


def _pack_blocks(
    batch: dict[str, list],
    indices: list[int],
    source: Dataset,
    offsets: np.ndarray,
    block_size: int,
    n_blocks: int,
) -> dict[str, list]:
    """Cut the global token stream into blocks; this batch emits the blocks that start inside it.

    Block ``k`` covers stream positions ``[k * block_size, (k + 1) * block_size)``. A block that
    starts in this batch and runs past its last document borrows the missing tokens from the
    documents after it, so no block is cut at a batch boundary and only the global tail (fewer
    than ``block_size`` tokens) is dropped.
    """
    first, after = indices[0], indices[-1] + 1
    start, end = int(offsets[first]), int(offsets[after])
    k_begin = -(-start // block_size)
    k_end = min(n_blocks, -(-end // block_size))
    tokens: list[int] = [t for doc in batch["input_ids"] for t in doc]
    need = k_end * block_size - start
    next_doc = after
    while len(tokens) < need:  # borrow from the following documents
        chunk = source[next_doc : next_doc + 16]["input_ids"]
        next_doc += 16
        for doc in chunk:
            tokens.extend(doc)
    blocks = [tokens[k * block_size - start : (k + 1) * block_size - start] for k in range(k_begin, k_end)]
    return {
        "input_ids": blocks,
        "attention_mask": [[1] * block_size for _ in blocks],
        "labels": [list(block) for block in blocks],
    }


def _pack(documents: Dataset, block_size: int, num_proc: int, key: str) -> tuple[Dataset, dict]:
    lengths = column(documents, "length")
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    total = int(offsets[-1])
    n_blocks = total // block_size
    kept_end = n_blocks * block_size
    # documents that do not reach the packed region at all, and whether one is cut by the tail
    docs_lost = int(np.sum(offsets[:-1] >= kept_end))
    docs_cut = int(np.any((offsets[:-1] < kept_end) & (offsets[1:] > kept_end)))
    stats = {
        "tokens": total,
        "blocks": n_blocks,
        "block_size": block_size,
        "tail_tokens_dropped": total - kept_end,
        "documents_in_tail": docs_lost,
        "documents_cut_by_tail": docs_cut,
    }
    if n_blocks == 0:
        return documents.select([]).remove_columns(["length"]), stats
    packed = documents.map(
        _pack_blocks,
        batched=True,
        batch_size=MAP_BATCH_SIZE,
        with_indices=True,
        fn_kwargs={
            "source": documents,
            "offsets": offsets,
            "block_size": block_size,
            "n_blocks": n_blocks,
        },
        remove_columns=documents.column_names,
        features=_PACKED_BLOCKS,
        num_proc=num_proc if num_proc > 1 else None,
        new_fingerprint=fingerprint(documents._fingerprint, "pack", block_size, key),
        desc=f"Packing {block_size}-token blocks",
    )
    return packed, stats


def _has_text(batch: dict[str, list]) -> list[bool]:
    return [bool(text and text.strip()) for text in batch["text"]]


def _tokenized_documents(dataset: Dataset, stats: dict, tokenizer, separator_id: int, tok_key: str, num_proc: int):
    """One source's non-empty documents, tokenised; empty ones are counted as ``empty_text``."""
    if "text" not in dataset.column_names:
        raise DataFormatError(stats["source"], 'no "text" column', "missing_field")
    texts = dataset.select_columns(["text"])
    non_empty = texts.filter(
        _has_text,
        batched=True,
        batch_size=MAP_BATCH_SIZE,
        num_proc=num_proc if num_proc > 1 else None,
        new_fingerprint=fingerprint(texts._fingerprint, "non-empty"),
        desc="Dropping empty documents",
    )
    empty = len(texts) - len(non_empty)
    if empty:
        stats["dropped"]["empty_text"] = stats["dropped"].get("empty_text", 0) + empty
    if len(non_empty) == 0:
        raise DataFormatError(stats["source"], "every document is empty", "no_valid_rows")
    return non_empty.map(
        _tokenize_documents,
        batched=True,
        batch_size=MAP_BATCH_SIZE,
        fn_kwargs={"tokenizer": tokenizer, "separator_id": separator_id},
        remove_columns=["text"],
        features=_TOKENIZED_DOCS,
        num_proc=num_proc if num_proc > 1 else None,
        new_fingerprint=fingerprint(non_empty._fingerprint, "tokenize-docs", tok_key, separator_id),
        desc="Tokenizing documents",
    )


def build_pretrain_dataset(
    tokenizer,
    train_files: PathSpec,
    validation_files: PathSpec | None = None,
    block_size: int = DEFAULT_SEQUENCE_LENGTH,
    validation_fraction: float = 0.0,
    seed: int = 42,
    num_proc: int = 1,
    *,
    skip_bad_rows: bool = False,
    cache_dir: str | os.PathLike | None = None,
    separator_token: str | None = None,
) -> BuiltDataset:
    """Pretraining blocks: ``{"text"}`` documents tokenised, joined and packed.

    Each document's tokens are followed by ``separator_token`` (default: ``<|endoftext|>``, id 0, where
    the tokenizer has it, else its eos token -- ``</s>`` for a Llama SentencePiece tokenizer); the
    stream of all documents is cut into ``block_size`` blocks with ``input_ids``,
    ``attention_mask`` (all ones) and ``labels`` (= ``input_ids``; the model shifts them). The
    trailing remainder (< ``block_size`` tokens) is dropped and counted. Use
    :func:`transformers.default_data_collator` to batch the blocks.

    The validation split comes from ``validation_files``, or from ``validation_fraction`` of the
    training documents, held out with a seeded draw before packing (same seed, same split).

    Returns:
        ``(DatasetDict, stats)``; stats per split: ``rows_in``, ``dropped`` by reason (bad records
        when skipped, ``empty_text``), ``rows_out`` documents, ``tokens``, ``blocks``,
        ``tail_tokens_dropped`` and how many documents the tail swallowed.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, got {block_size}")
    check_split_args(validation_files, validation_fraction)
    if separator_token is None:
        has_endoftext = ENDOFTEXT in tokenizer.get_vocab()
        separator_token = ENDOFTEXT if has_endoftext or tokenizer.eos_token is None else tokenizer.eos_token
    separator_id = tokenizer.convert_tokens_to_ids(separator_token)
    if separator_id is None or (separator_id == tokenizer.unk_token_id and separator_token != tokenizer.unk_token):
        raise ValueError(f"the tokenizer has no token {separator_token!r} to separate documents")
    tok_key = tokenizer_fingerprint(tokenizer)

    def documents(files: PathSpec, split: str) -> tuple[Dataset, dict]:
        def prepare(dataset: Dataset, stats: dict) -> Dataset:
            return _tokenized_documents(dataset, stats, tokenizer, separator_id, tok_key, num_proc)

        return map_sources(files, split, "pretrain", skip_bad_rows=skip_bad_rows, cache_dir=cache_dir, prepare=prepare)

    splits = assemble_splits(documents, train_files, validation_files, validation_fraction, seed)
    for split, (docs, split_stats) in list(splits.items()):
        packed, pack_stats = _pack(docs, block_size, num_proc, tok_key)
        if pack_stats["blocks"] == 0:
            raise ValueError(
                f"the {split} split has only {pack_stats['tokens']} tokens, fewer than one block of {block_size}; "
                "add data, lower block_size or raise validation_fraction"
            )
        split_stats.update(pack_stats)
        splits[split] = (packed, split_stats)
    return built("pretrain", splits)
