"""Fingerprints, train / validation splits and what the ``build_*_dataset`` functions return.

Every ``Dataset.map`` of this package gets an explicit fingerprint computed from the source data, the
tokenizer and the stage settings, so a second run with the same inputs reads the arrow cache instead of
tokenising again. The validation split comes from validation files or from a seeded held-out fraction
of the training rows (same seed, same split).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict
from datasets.fingerprint import Hasher

logger = logging.getLogger(__name__)

# Bump when the tokenised layout produced here changes, so stale caches are not reused.
_FORMAT_VERSION = "1"

PathSpec = str | os.PathLike | Sequence[str | os.PathLike]
"""A path, a glob, a Hub dataset name ``owner/name[:config]``, or a list of them."""


class BuiltDataset(NamedTuple):
    """What the ``build_*_dataset`` functions return; unpacks as ``dataset, stats = ...``."""

    dataset: DatasetDict
    stats: dict[str, Any]


def fingerprint(*parts: Any) -> str:
    """A datasets-compatible fingerprint of arbitrary (picklable) values."""
    return Hasher.hash((_FORMAT_VERSION, parts))


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash what decides the token ids (vocabulary, merges, pipeline, special tokens, template).

    The runtime truncation / padding state of a fast tokenizer is left out: it changes when the
    tokenizer is called with ``truncation=True`` and must not invalidate the cache.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
        core = json.dumps(spec, sort_keys=True)
    else:  # a slow tokenizer: fall back to datasets' pickling hash
        core = Hasher.hash(tokenizer)
    return fingerprint(
        core,
        getattr(tokenizer, "chat_template", None),
        tokenizer.all_special_tokens,
        tokenizer.eos_token,
        type(tokenizer).__name__,
    )


def arrow_column(dataset: Dataset, name: str) -> pa.ChunkedArray:
    """One column as arrow, in dataset order, gathered in one vectorised ``take``.

    (Reading through an indices mapping with ``dataset[:]`` gathers row by row, which is slow.)
    """
    column = dataset.data.column(name)
    indices = getattr(dataset, "_indices", None)
    return column if indices is None else column.take(indices.column(0))


def column(dataset: Dataset, name: str) -> np.ndarray:
    """One column as a numpy array, in dataset order."""
    return arrow_column(dataset, name).to_numpy()


def holdout_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded split of ``range(n)`` into (train, validation), both kept in their original order."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}")
    k = max(1, round(n * fraction))
    if k >= n:
        raise ValueError(f"validation_fraction={fraction} leaves no training rows out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[k:].tolist()), sorted(order[:k].tolist())


def _split_off(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    train_idx, val_idx = holdout_indices(len(dataset), fraction, seed)
    base = dataset._fingerprint
    train = dataset.select(train_idx, new_fingerprint=fingerprint(base, "holdout-train", fraction, seed))
    validation = dataset.select(val_idx, new_fingerprint=fingerprint(base, "holdout-validation", fraction, seed))
    return train, validation


def check_split_args(validation_files, validation_fraction: float) -> None:
    """Refuse both a validation file and a fraction, or a fraction outside [0, 1)."""
    if validation_files and validation_fraction:
        raise ValueError("give either validation_files or validation_fraction, not both")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")


def assemble_splits(
    build: Callable[[PathSpec, str], tuple[Dataset, dict]],
    train_files: PathSpec,
    validation_files: PathSpec | None,
    validation_fraction: float,
    seed: int,
) -> dict[str, tuple[Dataset, dict]]:
    """``{"train": (dataset, stats)[, "validation": ...]}`` from files or a seeded held-out fraction."""
    splits = {"train": build(train_files, "train")}
    if validation_files:  # None or an empty list: no validation files
        splits["validation"] = build(validation_files, "validation")
    elif validation_fraction:
        train, train_stats = splits["train"]
        kept, held = _split_off(train, validation_fraction, seed)
        train_stats["held_out_for_validation"] = len(held)
        train_stats["rows_out"] = len(kept)
        splits["train"] = (kept, train_stats)
        splits["validation"] = (
            held,
            {"held_out_from": "train", "fraction": validation_fraction, "seed": seed, "rows_out": len(held)},
        )
    return splits


_LOG_NAMES: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "split_log_names", default=MappingProxyType({})
)


@contextlib.contextmanager
def split_log_names(**names: str) -> Iterator[None]:
    """Log a split under another name while building it, e.g. ``split_log_names(train="test")`` when a
    stage's builder makes the test set as its "train" split."""
    token = _LOG_NAMES.set(names)
    try:
        yield
    finally:
        _LOG_NAMES.reset(token)


def built(stage: str, splits: dict[str, tuple[Dataset, dict]]) -> BuiltDataset:
    """The :class:`BuiltDataset` of ``{split: (dataset, stats)}``, its stats logged."""
    stats: dict[str, Any] = {"stage": stage}
    names = _LOG_NAMES.get()
    for split, (_, split_stats) in splits.items():
        stats[split] = split_stats
        logger.info("%s %s data: %s", stage, names.get(split, split), json.dumps(split_stats, ensure_ascii=False))
    return BuiltDataset(DatasetDict({split: dataset for split, (dataset, _) in splits.items()}), stats)
