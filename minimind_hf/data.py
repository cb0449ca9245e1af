"""Stage datasets and collators: pretraining blocks, SFT / LoRA chats, DPO preference rows.

Every stage reads JSON-lines files (or a Hub dataset) through :mod:`datasets`, checks each record
before anything is tokenised, and tokenises once with :meth:`datasets.Dataset.map`. Each map gets
an explicit fingerprint computed from the source data, the tokenizer and the stage settings, so a
second run with the same inputs reads the arrow cache instead of tokenising again.

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

Labels follow the transformers convention: ``labels`` is aligned with ``input_ids`` (the model
shifts them) and ``-100`` marks positions that carry no loss.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets import Dataset, DatasetDict, Features, Value
from datasets.fingerprint import Hasher
from tqdm.auto import tqdm

from .prompts import TRANSLATION_PROMPTS, pick_prompt, translation_messages

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Label value that the loss ignores (``torch.nn.CrossEntropyLoss`` default)."""

CHAT_ROLES = ("system", "user", "assistant")
CONTROL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
"""The project's special tokens; chat text containing them verbatim is rejected."""

RECORD_KINDS = ("pretrain", "chat", "dpo")
"""What :func:`load_jsonl_dataset` can check records against (``None`` checks JSON objects only)."""

# Bump when the tokenised layout produced here changes, so stale caches are not reused.
_FORMAT_VERSION = "1"
# Rows per ``Dataset.map`` batch (module level so tests can exercise batch boundaries).
_MAP_BATCH_SIZE = 1000

PathSpec = str | os.PathLike | Sequence[str | os.PathLike]

__all__ = [
    "CHAT_ROLES",
    "CONTROL_TOKENS",
    "IGNORE_INDEX",
    "BuiltDataset",
    "DataFormatError",
    "SFTCollator",
    "build_dpo_dataset",
    "build_pretrain_dataset",
    "build_sft_dataset",
    "chat_segments",
    "encode_chat",
    "load_jsonl_dataset",
]


# --------------------------------------------------------------------------------------------
# errors and results
# --------------------------------------------------------------------------------------------


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


class BuiltDataset(NamedTuple):
    """What the ``build_*_dataset`` functions return; unpacks as ``dataset, stats = ...``."""

    dataset: DatasetDict
    stats: dict[str, Any]


class _BadRecord(Exception):
    """Raised by the record checks; turned into a :class:`DataFormatError` or a counted skip."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# --------------------------------------------------------------------------------------------
# record checks
# --------------------------------------------------------------------------------------------


def _check_no_control_tokens(text: str, name: str) -> None:
    for token in CONTROL_TOKENS:
        if token in text:
            raise _BadRecord("control_token_in_text", f'{name} contains the special token "{token}" verbatim')


def _require_str(record: dict, key: str, *, allow_empty: bool = False, control_check: bool = True) -> str:
    value = record.get(key)
    if value is None:
        raise _BadRecord("missing_field", f'missing field "{key}"')
    if not isinstance(value, str):
        raise _BadRecord("wrong_type", f'field "{key}" must be a string, got {type(value).__name__}')
    if not allow_empty and not value.strip():
        raise _BadRecord("empty_field", f'field "{key}" is empty')
    if control_check:
        _check_no_control_tokens(value, f'field "{key}"')
    return value


def _check_turns(messages: Any, name: str, *, last_role: str | None = "assistant") -> list[dict]:
    """Check a message list: known roles, string contents, system first, user/assistant alternating."""
    if messages is None:
        raise _BadRecord("missing_field", f'missing field "{name}"')
    if not isinstance(messages, list):
        raise _BadRecord("wrong_type", f'field "{name}" must be a list of messages, got {type(messages).__name__}')
    if not messages:
        raise _BadRecord("empty_field", f'field "{name}" is an empty list')
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _BadRecord("wrong_type", f"{name}[{i}] must be an object, got {type(message).__name__}")
        for key in ("role", "content"):
            if message.get(key) is None:
                raise _BadRecord("missing_field", f'{name}[{i}] has no "{key}"')
        if not isinstance(message["content"], str):
            raise _BadRecord("wrong_type", f"{name}[{i}].content must be a string")
        if message["role"] not in CHAT_ROLES:
            raise _BadRecord(
                "wrong_role", f"{name}[{i}] has role {message['role']!r}; expected one of {', '.join(CHAT_ROLES)}"
            )
        _check_no_control_tokens(message["content"], f"{name}[{i}].content")
    offset = 1 if messages[0]["role"] == "system" else 0
    for i in range(offset, len(messages)):
        expected = "user" if (i - offset) % 2 == 0 else "assistant"
        if messages[i]["role"] != expected:
            raise _BadRecord(
                "wrong_role",
                f"{name}[{i}] has role {messages[i]['role']!r} where {expected!r} was expected "
                "(an optional system turn first, then user and assistant alternating)",
            )
    if offset == len(messages):
        raise _BadRecord("wrong_role", f"{name} holds only a system turn")
    if last_role is not None and messages[-1]["role"] != last_role:
        raise _BadRecord("wrong_role", f"{name} must end with a {last_role} turn, not {messages[-1]['role']!r}")
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
    raise _BadRecord("missing_field", 'missing field "conversations" (or the parallel pair "en" / "zh")')


def _same_turns(a: list[dict], b: list[dict]) -> int | None:
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
            raise _BadRecord("identical_pair", "chosen and rejected are the same text")
        return "parallel"
    if record.get("prompt") is not None:
        prompt = _check_turns(record["prompt"], "prompt", last_role="user")
        replies = []
        for key in ("chosen", "rejected"):
            reply = record.get(key)
            if reply is None:
                raise _BadRecord("missing_field", f'missing field "{key}"')
            if not isinstance(reply, list) or len(reply) != 1:
                raise _BadRecord("wrong_type", f'field "{key}" must be a list holding one assistant message')
            _check_turns(prompt + reply, key)
            replies.append(reply[0]["content"])
        if replies[0] == replies[1]:
            raise _BadRecord("identical_pair", "chosen and rejected replies are the same text")
        return "prompt"
    chosen = _check_turns(record.get("chosen"), "chosen")
    rejected = _check_turns(record.get("rejected"), "rejected")
    if len(chosen) < 2:
        raise _BadRecord("missing_prompt", "chosen holds no prompt turns before the final assistant turn")
    diff = _same_turns(chosen[:-1], rejected[:-1])
    if diff is not None:
        raise _BadRecord(
            "prompt_mismatch",
            f"chosen and rejected do not share the same prompt turns (first difference at turn {diff}); "
            "they may differ only in the final assistant turn",
        )
    if chosen[-1]["content"] == rejected[-1]["content"]:
        raise _BadRecord("identical_pair", "chosen and rejected end with the same assistant reply")
    return "conversations"


_CHECKS = {"pretrain": _check_pretrain, "chat": _check_chat, "dpo": _check_dpo}


def _check_record(record: Any, kind: str | None) -> str:
    if not isinstance(record, dict):
        raise _BadRecord("not_an_object", f"expected a JSON object, got {type(record).__name__}")
    if kind is None:
        return "object"
    return _CHECKS[kind](record)


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------

_HUB_NAME = re.compile(r"[\w.-]+/[\w.-]+(?::[\w.-]+)?")
_LOCAL_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")


@dataclass
class _Scan:
    """What one pass over a JSON-lines file found."""

    path: str
    rows: int = 0
    blank_lines: int = 0
    bad: Counter = field(default_factory=Counter)
    bad_lines: set[int] = field(default_factory=set)
    digest: str = ""


def _open_binary(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _scan_jsonl(path: str, kind: str | None, skip_bad_rows: bool) -> _Scan:
    """Check every line of ``path``; raise on the first bad one unless ``skip_bad_rows``.

    Lines are split on newlines as the arrow JSON reader splits them; blank lines are counted, not
    errors.
    """
    scan = _Scan(path)
    sha = hashlib.sha256(f"{kind}\0".encode())
    flavours: dict[str, int] = {}
    size = os.path.getsize(path)
    with (
        _open_binary(path) as handle,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=f"Checking {os.path.basename(path)}",
            leave=False,
            disable=size < 50_000_000 or None,
        ) as bar,
    ):
        for lineno, raw in enumerate(handle, start=1):
            sha.update(raw)
            bar.update(len(raw))
            if not raw.strip():
                scan.blank_lines += 1
                continue
            scan.rows += 1
            try:
                try:
                    record = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise _BadRecord("invalid_utf8", f"not UTF-8 text (byte {exc.start})") from None
                except json.JSONDecodeError as exc:
                    raise _BadRecord("invalid_json", f"invalid JSON ({exc.msg} at column {exc.colno})") from None
                flavour = _check_record(record, kind)
                # Rows whose fields have different JSON types cannot share one arrow column.
                if kind == "dpo" and flavours and ((flavour == "parallel") != ("parallel" in flavours)):
                    other = next(iter(flavours))
                    raise _BadRecord(
                        "mixed_formats",
                        f"a {flavour} preference row in a file whose line {flavours[other]} is a {other} row; "
                        "keep parallel and chat preference rows in separate files",
                    )
                flavours.setdefault(flavour, lineno)
            except _BadRecord as bad:
                if not skip_bad_rows:
                    raise DataFormatError(f"{path}:{lineno}", bad.message, bad.reason) from None
                scan.bad[bad.reason] += 1
                scan.bad_lines.add(lineno)
                if len(scan.bad_lines) <= 5:
                    logger.warning("skipping %s:%d: %s", path, lineno, bad.message)
    scan.digest = sha.hexdigest()[:32]
    if scan.rows == 0:
        raise DataFormatError(path, "the file holds no records (it is empty or blank)", "empty_file")
    if scan.rows == sum(scan.bad.values()):
        raise DataFormatError(path, f"every one of its {scan.rows} records is bad: {dict(scan.bad)}", "no_valid_rows")
    if scan.bad:
        skipped = sum(scan.bad.values())
        logger.warning("%s: skipped %d bad record(s) of %d: %s", path, skipped, scan.rows, dict(scan.bad))
    return scan


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir if cache_dir is not None else datasets.config.HF_DATASETS_CACHE)


def _clean_copy(scan: _Scan, cache_dir: str | os.PathLike | None) -> str:
    """Write the good lines of a file with skipped rows to a content-addressed cache file."""
    target = _cache_root(cache_dir) / "minimind_hf" / "clean" / f"{scan.digest}.jsonl"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".tmp{os.getpid()}")
        with _open_binary(scan.path) as src, open(partial, "wb") as dst:
            for lineno, line in enumerate(src, start=1):
                if line.strip() and lineno not in scan.bad_lines:
                    dst.write(line if line.endswith(b"\n") else line + b"\n")
        os.replace(partial, target)
    return str(target)


def _expand(spec: PathSpec) -> list[str]:
    """Turn a path, glob, Hub name or list of them into a flat list of sources."""
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    if not items:
        raise ValueError("no data files given")
    sources: list[str] = []
    for item in items:
        item = os.fspath(item)
        if os.path.exists(item):
            sources.append(item)
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise FileNotFoundError(f"no file matches {item!r}")
            sources.extend(matches)
        elif _HUB_NAME.fullmatch(item) and not item.endswith(_LOCAL_SUFFIXES):
            sources.append(item)
        else:
            raise FileNotFoundError(f"data file {item!r} does not exist (and it is not a Hub dataset name owner/name)")
    return sources


def _load_local_file(path: str, kind: str | None, skip_bad_rows: bool, cache_dir) -> tuple[Dataset, dict]:
    scan = _scan_jsonl(path, kind, skip_bad_rows)
    data_file = _clean_copy(scan, cache_dir) if scan.bad else path
    try:
        dataset = datasets.load_dataset(
            "json", data_files=data_file, split="train", cache_dir=None if cache_dir is None else str(cache_dir)
        )
    except Exception as exc:  # pyarrow schema errors and the like; name the file
        raise DataFormatError(path, f"datasets could not read it as JSON lines: {exc}", "unreadable") from exc
    stats = {"source": path, "rows_in": scan.rows, "dropped": dict(scan.bad)}
    if scan.blank_lines:
        stats["blank_lines"] = scan.blank_lines
    return dataset, stats


def _load_by_name(name: str, split: str, kind: str | None, skip_bad_rows: bool, cache_dir) -> tuple[Dataset, dict]:
    """A Hub dataset ``owner/name[:config]`` or a local dataset directory, checked row by row."""
    path, config = name, None
    if not os.path.exists(name) and ":" in name:
        path, config = name.split(":", 1)
    dataset = datasets.load_dataset(path, config, split=split, cache_dir=None if cache_dir is None else str(cache_dir))
    bad: Counter = Counter()
    keep: list[int] = []
    for index, record in enumerate(tqdm(dataset, desc=f"Checking {name}[{split}]", leave=False, disable=None)):
        try:
            _check_record(record, kind)
            keep.append(index)
        except _BadRecord as exc:
            if not skip_bad_rows:
                raise DataFormatError(f"{name}[{split}] row {index}", exc.message, exc.reason) from None
            bad[exc.reason] += 1
            if sum(bad.values()) <= 5:
                logger.warning("skipping %s[%s] row %d: %s", name, split, index, exc.message)
    if len(dataset) == 0 or not keep:
        raise DataFormatError(f"{name}[{split}]", f"no valid records (bad: {dict(bad)})", "no_valid_rows")
    if bad:
        logger.warning("%s[%s]: skipped %d bad record(s): %s", name, split, sum(bad.values()), dict(bad))
        dataset = dataset.select(keep, new_fingerprint=_fingerprint(dataset._fingerprint, "keep", keep))
    return dataset, {"source": f"{name}[{split}]", "rows_in": len(keep) + sum(bad.values()), "dropped": dict(bad)}


def _load_sources(
    spec: PathSpec, split: str, kind: str | None, skip_bad_rows: bool, cache_dir
) -> list[tuple[Dataset, dict]]:
    if kind is not None and kind not in RECORD_KINDS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {RECORD_KINDS} or None")
    loaded = []
    for source in _expand(spec):
        if os.path.isfile(source):
            loaded.append(_load_local_file(source, kind, skip_bad_rows, cache_dir))
        else:
            loaded.append(_load_by_name(source, split, kind, skip_bad_rows, cache_dir))
    return loaded


def load_jsonl_dataset(
    path_or_name: PathSpec,
    split: str = "train",
    skip_bad_rows: bool = False,
    *,
    kind: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    return_stats: bool = False,
) -> Dataset | tuple[Dataset, dict]:
    """Load JSON-lines data as a :class:`datasets.Dataset`, checking every record first.

    Args:
        path_or_name: a ``.jsonl`` file (``.gz`` too), a glob, a list of them, a local dataset
            directory, or a Hub dataset ``owner/name[:config]``.
        split: the split to read from a directory or Hub dataset (ignored for files).
        skip_bad_rows: drop bad records (counted, logged) instead of raising
            :class:`DataFormatError` on the first one.
        kind: check records as ``"pretrain"``, ``"chat"`` (SFT / LoRA) or ``"dpo"`` rows; ``None``
            only checks that each line is a JSON object.
        cache_dir: datasets cache directory (default: the datasets library's).
        return_stats: also return ``{"rows_in", "dropped": {reason: n}, "rows_out"}``.

    Several files are concatenated in the order given; they must then share their columns.
    """
    loaded = _load_sources(path_or_name, split, kind, skip_bad_rows, cache_dir)
    try:
        dataset = loaded[0][0] if len(loaded) == 1 else datasets.concatenate_datasets([d for d, _ in loaded])
    except ValueError as exc:
        names = ", ".join(s["source"] for _, s in loaded)
        raise DataFormatError(names, f"the files do not share the same columns: {exc}", "mixed_formats") from exc
    stats = _merge_source_stats([s for _, s in loaded])
    stats["rows_out"] = len(dataset)
    return (dataset, stats) if return_stats else dataset


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _fingerprint(*parts: Any) -> str:
    """A datasets-compatible fingerprint of arbitrary (picklable) values."""
    return Hasher.hash((_FORMAT_VERSION, parts))


def _tokenizer_fingerprint(tokenizer) -> str:
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
    return _fingerprint(
        core,
        getattr(tokenizer, "chat_template", None),
        tokenizer.all_special_tokens,
        tokenizer.eos_token,
        type(tokenizer).__name__,
    )


def _merge_source_stats(parts: list[dict]) -> dict:
    dropped: Counter = Counter()
    for part in parts:
        dropped.update(part["dropped"])
    merged = {
        "sources": [p["source"] for p in parts],
        "rows_in": sum(p["rows_in"] for p in parts),
        "dropped": dict(dropped),
    }
    blank = sum(p.get("blank_lines", 0) for p in parts)
    if blank:
        merged["blank_lines"] = blank
    return merged


def _arrow_column(dataset: Dataset, name: str) -> pa.ChunkedArray:
    """One column as arrow, in dataset order, gathered in one vectorised ``take``.

    (Reading through an indices mapping with ``dataset[:]`` gathers row by row, which is slow.)
    """
    column = dataset.data.column(name)
    indices = getattr(dataset, "_indices", None)
    return column if indices is None else column.take(indices.column(0))


def _column(dataset: Dataset, name: str) -> np.ndarray:
    return _arrow_column(dataset, name).to_numpy()


def _holdout_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded split of ``range(n)`` into (train, validation), both kept in their original order."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}")
    k = max(1, round(n * fraction))
    if k >= n:
        raise ValueError(f"validation_fraction={fraction} leaves no training rows out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[k:].tolist()), sorted(order[:k].tolist())


def _split_off(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    train_idx, val_idx = _holdout_indices(len(dataset), fraction, seed)
    base = dataset._fingerprint
    train = dataset.select(train_idx, new_fingerprint=_fingerprint(base, "holdout-train", fraction, seed))
    validation = dataset.select(val_idx, new_fingerprint=_fingerprint(base, "holdout-validation", fraction, seed))
    return train, validation


def _concat(parts: list[Dataset]) -> Dataset:
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def _assemble_splits(
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


def _check_split_args(validation_files, validation_fraction: float) -> None:
    if validation_files and validation_fraction:
        raise ValueError("give either validation_files or validation_fraction, not both")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")


def _check_prompt_id(prompt_id: int | str) -> None:
    if prompt_id == "mixed":
        return
    if isinstance(prompt_id, bool) or not isinstance(prompt_id, int) or not 0 <= prompt_id < len(TRANSLATION_PROMPTS):
        raise ValueError(
            f'prompt_id must be an index 0..{len(TRANSLATION_PROMPTS) - 1} into TRANSLATION_PROMPTS or "mixed", '
            f"got {prompt_id!r}"
        )


def _log_stats(stage: str, stats: dict) -> None:
    for split, split_stats in stats.items():
        if isinstance(split_stats, dict):
            logger.info("%s %s data: %s", stage, split, json.dumps(split_stats, ensure_ascii=False))


# --------------------------------------------------------------------------------------------
# pretraining: tokenise, join with <|endoftext|>, pack into fixed blocks
# --------------------------------------------------------------------------------------------

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
    lengths = _column(documents, "length")
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
        batch_size=_MAP_BATCH_SIZE,
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
        new_fingerprint=_fingerprint(documents._fingerprint, "pack", block_size, key),
        desc=f"Packing {block_size}-token blocks",
    )
    return packed, stats


def _tokenized_documents(
    files: PathSpec, split: str, tokenizer, separator_id: int, tok_key: str, skip_bad_rows: bool, num_proc, cache_dir
) -> tuple[Dataset, dict]:
    parts, part_stats = [], []
    for dataset, stats in _load_sources(files, split, "pretrain", skip_bad_rows, cache_dir):
        if "text" not in dataset.column_names:
            raise DataFormatError(stats["source"], 'no "text" column', "missing_field")
        texts = dataset.select_columns(["text"])
        non_empty = texts.filter(
            _has_text,
            batched=True,
            batch_size=_MAP_BATCH_SIZE,
            num_proc=num_proc if num_proc > 1 else None,
            new_fingerprint=_fingerprint(texts._fingerprint, "non-empty"),
            desc="Dropping empty documents",
        )
        empty = len(texts) - len(non_empty)
        if empty:
            stats["dropped"]["empty_text"] = stats["dropped"].get("empty_text", 0) + empty
        if len(non_empty) == 0:
            raise DataFormatError(stats["source"], "every document is empty", "no_valid_rows")
        parts.append(
            non_empty.map(
                _tokenize_documents,
                batched=True,
                batch_size=_MAP_BATCH_SIZE,
                fn_kwargs={"tokenizer": tokenizer, "separator_id": separator_id},
                remove_columns=["text"],
                features=_TOKENIZED_DOCS,
                num_proc=num_proc if num_proc > 1 else None,
                new_fingerprint=_fingerprint(non_empty._fingerprint, "tokenize-docs", tok_key, separator_id),
                desc="Tokenizing documents",
            )
        )
        part_stats.append(stats)
    documents = _concat(parts)
    merged = _merge_source_stats(part_stats)
    merged["rows_out"] = len(documents)
    return documents, merged


def _has_text(batch: dict[str, list]) -> list[bool]:
    return [bool(text and text.strip()) for text in batch["text"]]


def build_pretrain_dataset(
    tokenizer,
    train_files: PathSpec,
    validation_files: PathSpec | None = None,
    block_size: int = 512,
    validation_fraction: float = 0.0,
    seed: int = 42,
    num_proc: int = 1,
    *,
    skip_bad_rows: bool = False,
    cache_dir: str | os.PathLike | None = None,
    separator_token: str = "<|endoftext|>",
) -> BuiltDataset:
    """Pretraining blocks: ``{"text"}`` documents tokenised, joined and packed.

    Each document's tokens are followed by ``separator_token`` (``<|endoftext|>``, id 0); the
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
    _check_split_args(validation_files, validation_fraction)
    separator_id = tokenizer.convert_tokens_to_ids(separator_token)
    if separator_id is None or (separator_id == tokenizer.unk_token_id and separator_token != tokenizer.unk_token):
        raise ValueError(f"the tokenizer has no token {separator_token!r} to separate documents")
    tok_key = _tokenizer_fingerprint(tokenizer)

    def documents(files: PathSpec, split: str) -> tuple[Dataset, dict]:
        return _tokenized_documents(files, split, tokenizer, separator_id, tok_key, skip_bad_rows, num_proc, cache_dir)

    splits = _assemble_splits(documents, train_files, validation_files, validation_fraction, seed)
    result, stats = {}, {"stage": "pretrain"}
    for split, (docs, split_stats) in splits.items():
        packed, pack_stats = _pack(docs, block_size, num_proc, tok_key)
        if pack_stats["blocks"] == 0:
            raise ValueError(
                f"the {split} split has only {pack_stats['tokens']} tokens, fewer than one block of {block_size}; "
                "add data, lower block_size or raise validation_fraction"
            )
        split_stats.update(pack_stats)
        result[split], stats[split] = packed, split_stats
    _log_stats("pretrain", stats)
    return BuiltDataset(DatasetDict(result), stats)


# --------------------------------------------------------------------------------------------
# SFT / LoRA: ChatML with loss on assistant replies only
# --------------------------------------------------------------------------------------------
#
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
    eos = tokenizer.eos_token
    if not eos:
        raise ValueError("the tokenizer has no eos_token to close assistant replies")

    def render(turns: list[dict], generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=generation_prompt)

    segments: list[tuple[str, bool]] = []
    done = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(messages[:index], True)
        full = render(messages[: index + 1], False)
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
        segments.append((render(messages, False)[len(done) :], False))
    return [(text, trained) for text, trained in segments if text]


def _labelled(segments: list[tuple[str, bool]], encoded: list[list[int]]) -> tuple[list[int], list[int]]:
    input_ids: list[int] = []
    labels: list[int] = []
    for (_, trained), ids in zip(segments, encoded, strict=True):
        input_ids.extend(ids)
        labels.extend(ids if trained else [IGNORE_INDEX] * len(ids))
    return input_ids, labels


def _encode_chats(tokenizer, per_chat: list[list[tuple[str, bool]]], max_length: int | None) -> list[dict[str, Any]]:
    """Tokenise the segments of many chats in one tokenizer call; label, then cut to ``max_length``."""
    flat = [text for segments in per_chat for text, _ in segments]
    encoded = tokenizer(flat, add_special_tokens=False, verbose=False)["input_ids"] if flat else []
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
    return _encode_chats(tokenizer, [chat_segments(tokenizer, messages)], max_length)[0]


def _row_messages(row: dict, system_prompt: str | None, prompt_id: int | str) -> list[dict]:
    """The chat of one SFT / LoRA row (a conversation, or a parallel pair through the prompts)."""
    if row.get("conversations") is not None:
        messages = [{"role": m["role"], "content": m["content"]} for m in row["conversations"]]
        if system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system_prompt})
        return messages
    index = pick_prompt(row["en"]) if prompt_id == "mixed" else int(prompt_id)
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
    batch: dict[str, list], tokenizer, max_length: int, system_prompt: str | None, prompt_id: int | str
) -> dict[str, list]:
    """Batched ``Dataset.map`` function: chats -> ids, labels and per-row counts."""
    rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
    per_chat = [chat_segments(tokenizer, _row_messages(row, system_prompt, prompt_id)) for row in rows]
    encoded = _encode_chats(tokenizer, per_chat, max_length)
    out = {name: [chat[name] for chat in encoded] for name in ("input_ids", "attention_mask", "labels", "truncated")}
    out["num_target_tokens"] = [sum(label != IGNORE_INDEX for label in chat["labels"]) for chat in encoded]
    return out


def _tokenized_chats(
    files: PathSpec, split: str, tokenizer, settings: dict, tok_key: str, skip_bad_rows: bool, num_proc, cache_dir
) -> tuple[Dataset, dict]:
    parts, part_stats = [], []
    for dataset, stats in _load_sources(files, split, "chat", skip_bad_rows, cache_dir):
        parts.append(
            dataset.map(
                _tokenize_chats,
                batched=True,
                batch_size=_MAP_BATCH_SIZE,
                fn_kwargs={"tokenizer": tokenizer, **settings},
                remove_columns=dataset.column_names,
                features=_TOKENIZED_CHATS,
                num_proc=num_proc if num_proc > 1 else None,
                new_fingerprint=_fingerprint(dataset._fingerprint, "tokenize-chats", tok_key, sorted(settings.items())),
                desc="Tokenizing chats",
            )
        )
        part_stats.append(stats)
    return _concat(parts), _merge_source_stats(part_stats)


def _finish_chats(chats: Dataset, stats: dict) -> Dataset:
    """Drop rows that lost every assistant token to truncation; count and measure what stays."""
    targets = _column(chats, "num_target_tokens")
    keep = np.flatnonzero(targets > 0)
    lost = len(chats) - len(keep)
    if lost:
        stats["dropped"]["no_assistant_tokens_after_truncation"] = lost
        logger.warning("dropped %d row(s) whose assistant replies were cut off entirely by max_length", lost)
        chats = chats.select(keep, new_fingerprint=_fingerprint(chats._fingerprint, "has-targets"))
    lengths = pc.list_value_length(_arrow_column(chats, "input_ids")).to_numpy()
    stats["rows_out"] = len(chats)
    stats["tokens"] = int(lengths.sum())
    stats["target_tokens"] = int(targets[keep].sum())
    stats["truncated_rows_kept"] = int(_column(chats, "truncated").sum())
    return chats.remove_columns(["num_target_tokens", "truncated"])


def build_sft_dataset(
    tokenizer,
    train_files: PathSpec,
    validation_files: PathSpec | None = None,
    max_length: int = 512,
    system_prompt: str | None = None,
    prompt_id: int | str = 0,
    *,
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
    ``system_prompt`` set, chats that have no system turn get it as their first turn too.

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
    _check_prompt_id(prompt_id)
    _check_split_args(validation_files, validation_fraction)
    tok_key = _tokenizer_fingerprint(tokenizer)
    settings = {"max_length": max_length, "system_prompt": system_prompt, "prompt_id": prompt_id}

    def chats(files: PathSpec, split: str) -> tuple[Dataset, dict]:
        dataset, split_stats = _tokenized_chats(
            files, split, tokenizer, settings, tok_key, skip_bad_rows, num_proc, cache_dir
        )
        return _finish_chats(dataset, split_stats), split_stats

    splits = _assemble_splits(chats, train_files, validation_files, validation_fraction, seed)
    stats = {"stage": "sft", **{split: s for split, (_, s) in splits.items()}}
    _log_stats("sft", stats)
    return BuiltDataset(DatasetDict({split: d for split, (d, _) in splits.items()}), stats)


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


# --------------------------------------------------------------------------------------------
# DPO: conversational prompt / chosen / rejected rows for TRL's DPOTrainer
# --------------------------------------------------------------------------------------------

_MESSAGE = {"role": Value("string"), "content": Value("string")}
_PREFERENCE = Features({"prompt": [_MESSAGE], "chosen": [_MESSAGE], "rejected": [_MESSAGE]})


def _plain(messages: Iterable[dict]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _to_preference(row: dict, system_prompt: str | None, prompt_id: int | str) -> dict[str, list]:
    """One DPO record -> ``{"prompt": [...], "chosen": [reply], "rejected": [reply]}``."""
    if row.get("en") is not None:
        index = pick_prompt(row["en"]) if prompt_id == "mixed" else int(prompt_id)
        prompt = translation_messages(row["en"], prompt_id=index, system=system_prompt)
        chosen = [{"role": "assistant", "content": row["chosen"].strip()}]
        rejected = [{"role": "assistant", "content": row["rejected"].strip()}]
    elif row.get("prompt") is not None:
        prompt, chosen, rejected = _plain(row["prompt"]), _plain(row["chosen"]), _plain(row["rejected"])
    else:
        prompt, chosen, rejected = _plain(row["chosen"][:-1]), _plain(row["chosen"][-1:]), _plain(row["rejected"][-1:])
    if system_prompt and prompt[0]["role"] != "system":
        prompt.insert(0, {"role": "system", "content": system_prompt})
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def build_dpo_dataset(
    train_files: PathSpec,
    validation_files: PathSpec | None = None,
    *,
    system_prompt: str | None = None,
    prompt_id: int | str = 0,
    validation_fraction: float = 0.0,
    seed: int = 42,
    skip_bad_rows: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> BuiltDataset:
    """Preference rows in TRL's conversational form: ``prompt`` / ``chosen`` / ``rejected`` messages.

    ``{"chosen": [...], "rejected": [...]}`` rows must share every turn but the last (checked per
    line: :class:`DataFormatError` names the line otherwise); the shared turns become ``prompt``
    and the final assistant turns ``chosen`` / ``rejected``. Explicit ``{"prompt", "chosen",
    "rejected"}`` rows pass through, and parallel ``{"en", "chosen", "rejected"}`` rows get the
    project's translation prompt. ``system_prompt`` is put first in prompts that have no system
    turn. Tokenisation is left to TRL's ``DPOTrainer``.
    """
    _check_split_args(validation_files, validation_fraction)
    _check_prompt_id(prompt_id)

    def rows(files: PathSpec, split: str) -> tuple[Dataset, dict]:
        parts, part_stats = [], []
        for dataset, stats in _load_sources(files, split, "dpo", skip_bad_rows, cache_dir):
            parts.append(
                dataset.map(
                    _to_preference,
                    fn_kwargs={"system_prompt": system_prompt, "prompt_id": prompt_id},
                    remove_columns=dataset.column_names,
                    features=_PREFERENCE,
                    new_fingerprint=_fingerprint(dataset._fingerprint, "preference", system_prompt, prompt_id),
                    desc="Building preference rows",
                )
            )
            part_stats.append(stats)
        merged = _concat(parts)
        split_stats = _merge_source_stats(part_stats)
        split_stats["rows_out"] = len(merged)
        return merged, split_stats

    splits = _assemble_splits(rows, train_files, validation_files, validation_fraction, seed)
    stats = {"stage": "dpo", **{split: s for split, (_, s) in splits.items()}}
    _log_stats("dpo", stats)
    return BuiltDataset(DatasetDict({split: d for split, (d, _) in splits.items()}), stats)
