"""Reading stage data: JSON-lines files (gzip too), raw-text files, globs, dataset directories and Hub names.

Raw text is the BabyLM layout: files ending in :data:`RAW_TEXT_SUFFIXES` (``.train``, ``.dev``,
``.test``, ``.txt``, ``.val``) hold one document per line and load as ``{"text"}`` pretraining rows
(blank lines are counted, not kept). A directory that holds such files stands for all of them, in name
order; any other directory is read as a ``datasets`` directory.

Every local file is scanned line by line before ``datasets`` reads it, so a bad record is reported
with its file and line (:class:`~minimind_hf.data.checks.DataFormatError`) or, with
``skip_bad_rows=True``, counted by reason and left out of a cleaned copy. Datasets loaded by name are
checked row by row. Each source comes with its stats (``source``, ``rows_in``, ``dropped`` by reason,
``blank_lines``); :func:`map_sources` turns every source of a split the same way, concatenates them and
merges their stats.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import datasets
from datasets import Dataset
from tqdm.auto import tqdm

from ..utils.jsonl import json_error_text
from .checks import BadRecord, DataFormatError, check_kind, check_record
from .splits import PathSpec, fingerprint

logger = logging.getLogger(__name__)

MAP_BATCH_SIZE = 1000
"""Rows per batch of the stages' ``Dataset.map`` calls."""

_HUB_NAME = re.compile(r"[\w.-]+/[\w.-]+(?::[\w.-]+)?")
_LOCAL_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
RAW_TEXT_SUFFIXES = (".train", ".dev", ".test", ".txt", ".val")
"""File endings read as raw text, one document per line (the BabyLM corpus layout)."""


def is_raw_text(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a raw-text file (one document per line) rather than JSON lines."""
    return os.fspath(path).endswith(RAW_TEXT_SUFFIXES)


def raw_text_files(directory: str | os.PathLike) -> list[str]:
    """The raw-text files directly inside ``directory``, in name order (empty if it holds none)."""
    names = sorted(os.listdir(directory))
    return [os.path.join(directory, n) for n in names if is_raw_text(n) and os.path.isfile(os.path.join(directory, n))]


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
                    raise BadRecord("invalid_utf8", f"not UTF-8 text (byte {exc.start})") from None
                except json.JSONDecodeError as exc:
                    raise BadRecord("invalid_json", f"invalid JSON ({json_error_text(exc)})") from None
                flavour = check_record(record, kind)
                # Rows whose fields have different JSON types cannot share one arrow column.
                if kind == "dpo" and flavours and ((flavour == "parallel") != ("parallel" in flavours)):
                    other = next(iter(flavours))
                    raise BadRecord(
                        "mixed_formats",
                        f"a {flavour} preference row in a file whose line {flavours[other]} is a {other} row; "
                        "keep parallel and chat preference rows in separate files",
                    )
                flavours.setdefault(flavour, lineno)
            except BadRecord as bad:
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


def _scan_text(path: str, kind: str | None, skip_bad_rows: bool) -> _Scan:
    """Check that every line of a raw-text file is UTF-8; count documents and blank lines."""
    if kind not in (None, "pretrain"):
        raise DataFormatError(
            path,
            f"a raw-text file holds pretraining documents, not {kind} records; give JSON lines for this stage",
            "wrong_format",
        )
    scan = _Scan(path)
    sha = hashlib.sha256(b"text\0")
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            sha.update(raw)
            if not raw.strip():
                scan.blank_lines += 1
                continue
            scan.rows += 1
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if not skip_bad_rows:
                    raise DataFormatError(
                        f"{path}:{lineno}", f"not UTF-8 text (byte {exc.start})", "invalid_utf8"
                    ) from None
                scan.bad["invalid_utf8"] += 1
                scan.bad_lines.add(lineno)
                if len(scan.bad_lines) <= 5:
                    logger.warning("skipping %s:%d: not UTF-8 text", path, lineno)
    scan.digest = sha.hexdigest()[:32]
    if scan.rows == 0:
        raise DataFormatError(path, "the file holds no documents (it is empty or blank)", "empty_file")
    if scan.rows == sum(scan.bad.values()):
        raise DataFormatError(path, f"every one of its {scan.rows} lines is bad: {dict(scan.bad)}", "no_valid_rows")
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
        if os.path.isdir(item) and raw_text_files(item):
            sources.extend(raw_text_files(item))
        elif os.path.exists(item):
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


def _text_lines(path: str, digest: str, bad_lines: list[int]):
    """Rows of a raw-text file: every non-blank line split on ``\\n`` only, bad lines left out.

    ``digest`` (the file's content hash) is here so that ``datasets`` caches by content, not by path.
    """
    with open(path, "rb") as handle:
        skip = set(bad_lines)
        for lineno, raw in enumerate(handle, start=1):
            if raw.strip() and lineno not in skip:
                yield {"text": raw.decode("utf-8").rstrip("\r\n")}


def _load_text_file(scan: _Scan, cache_dir) -> Dataset:
    """A raw-text file as ``{"text"}`` rows, one per non-blank line (blank lines were counted by the scan)."""
    return Dataset.from_generator(
        _text_lines,
        gen_kwargs={"path": scan.path, "digest": scan.digest, "bad_lines": sorted(scan.bad_lines)},
        features=datasets.Features({"text": datasets.Value("string")}),
        cache_dir=None if cache_dir is None else str(cache_dir),
    )


def _load_local_file(path: str, kind: str | None, skip_bad_rows: bool, cache_dir) -> tuple[Dataset, dict]:
    raw_text = is_raw_text(path)
    scan = _scan_text(path, kind, skip_bad_rows) if raw_text else _scan_jsonl(path, kind, skip_bad_rows)
    data_file = _clean_copy(scan, cache_dir) if scan.bad and not raw_text else path
    try:
        if raw_text:
            dataset = _load_text_file(scan, cache_dir)
        else:
            dataset = datasets.load_dataset(
                "json", data_files=data_file, split="train", cache_dir=None if cache_dir is None else str(cache_dir)
            )
    except Exception as exc:  # pyarrow schema errors and the like; name the file
        layout = "raw text" if raw_text else "JSON lines"
        raise DataFormatError(path, f"datasets could not read it as {layout}: {exc}", "unreadable") from exc
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
            check_record(record, kind)
            keep.append(index)
        except BadRecord as exc:
            if not skip_bad_rows:
                raise DataFormatError(f"{name}[{split}] row {index}", exc.message, exc.reason) from None
            bad[exc.reason] += 1
            if sum(bad.values()) <= 5:
                logger.warning("skipping %s[%s] row %d: %s", name, split, index, exc.message)
    if len(dataset) == 0 or not keep:
        raise DataFormatError(f"{name}[{split}]", f"no valid records (bad: {dict(bad)})", "no_valid_rows")
    if bad:
        logger.warning("%s[%s]: skipped %d bad record(s): %s", name, split, sum(bad.values()), dict(bad))
        dataset = dataset.select(keep, new_fingerprint=fingerprint(dataset._fingerprint, "keep", keep))
    return dataset, {"source": f"{name}[{split}]", "rows_in": len(keep) + sum(bad.values()), "dropped": dict(bad)}


def load_sources(
    spec: PathSpec, split: str, kind: str | None, skip_bad_rows: bool, cache_dir
) -> list[tuple[Dataset, dict]]:
    """``(dataset, stats)`` for every source of ``spec``, each checked record by record."""
    check_kind(kind)
    loaded = []
    for source in _expand(spec):
        if os.path.isfile(source):
            loaded.append(_load_local_file(source, kind, skip_bad_rows, cache_dir))
        else:
            loaded.append(_load_by_name(source, split, kind, skip_bad_rows, cache_dir))
    return loaded


def merge_source_stats(parts: list[dict]) -> dict:
    """One split's stats from its sources': ``sources``, summed ``rows_in``, ``dropped`` and ``blank_lines``."""
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


def map_sources(
    spec: PathSpec,
    split: str,
    kind: str | None,
    *,
    skip_bad_rows: bool,
    cache_dir,
    prepare: Callable[[Dataset, dict], Dataset] | None = None,
) -> tuple[Dataset, dict]:
    """Load every source of a split, turn each with ``prepare(dataset, stats)``, concatenate them.

    ``prepare`` may add drop reasons to the source's stats; they are merged with
    :func:`merge_source_stats` and ``rows_out`` is the length of the result. Sources whose columns differ
    cannot be concatenated: :class:`DataFormatError` names them.
    """
    parts, part_stats = [], []
    for dataset, stats in load_sources(spec, split, kind, skip_bad_rows, cache_dir):
        parts.append(dataset if prepare is None else prepare(dataset, stats))
        part_stats.append(stats)
    try:
        merged = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    except ValueError as exc:
        names = ", ".join(s["source"] for s in part_stats)
        raise DataFormatError(names, f"the files do not share the same columns: {exc}", "mixed_formats") from exc
    stats = merge_source_stats(part_stats)
    stats["rows_out"] = len(merged)
    return merged, stats


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
        path_or_name: a ``.jsonl`` file (``.gz`` too), a raw-text file (:data:`RAW_TEXT_SUFFIXES`), a
            glob, a list of them, a directory of raw-text files, a local dataset directory, or a Hub
            dataset ``owner/name[:config]``.
        split: the split to read from a directory or Hub dataset (ignored for files).
        skip_bad_rows: drop bad records (counted, logged) instead of raising
            :class:`DataFormatError` on the first one.
        kind: check records as ``"pretrain"``, ``"chat"`` (SFT / LoRA) or ``"dpo"`` rows; ``None``
            only checks that each line is a JSON object.
        cache_dir: datasets cache directory (default: the datasets library's).
        return_stats: also return ``{"rows_in", "dropped": {reason: n}, "rows_out"}``.

    Several files are concatenated in the order given; they must then share their columns.
    """
    dataset, stats = map_sources(path_or_name, split, kind, skip_bad_rows=skip_bad_rows, cache_dir=cache_dir)
    return (dataset, stats) if return_stats else dataset
