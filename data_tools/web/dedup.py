"""Exact and near-duplicate removal, for web pages and for lists of short "topic" strings.

* **Exact**: the SHA-1 of a normalised form of the text (NFKC, case-folded, punctuation and
  whitespace removed), so pages that differ only in spacing, case or punctuation collide.
* **Near**: MinHash signatures (32-bit xxHash of each shingle, ``num_perm`` permutations) over
  word n-gram shingles (CJK characters count as words), indexed with banded locality-sensitive
  hashing (``datasketch.MinHashLSH``). Two texts become candidates when all ``rows`` values
  of at least one of the ``bands`` bands agree, which happens with probability
  ``1 - (1 - J**rows)**bands`` for Jaccard similarity ``J``.
  FineWeb's setting (5-gram shingles, 112 permutations = 14 bands x 8 rows) flags pairs with
  J = 0.75 about 77% of the time and J = 0.8 about 92%. An optional check of the estimated
  Jaccard similarity (``min_jaccard``) removes candidates that only share a band by chance.

The first occurrence wins; later duplicates are dropped and counted.

Command line, for a JSON list of topic strings (or COMP4901B HW1's ``{"data": [{"text": ...}]}``)::

    python -m data_tools.web.dedup topics.json --output topics.dedup.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash
from datasketch import LeanMinHash, MinHash, MinHashLSH

from .filters.text import split_words

_NOT_WORD = re.compile(r"[\W_]+")


def normalize_for_hash(text: str) -> str:
    """NFKC, case-folded, with punctuation removed and whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NOT_WORD.sub(" ", text).split())


def exact_key(text: str) -> str:
    """Hex SHA-1 of :func:`normalize_for_hash` of ``text``."""
    return hashlib.sha1(normalize_for_hash(text).encode("utf-8")).hexdigest()


def word_shingles(text: str, size: int) -> set[bytes]:
    """Set of ``size``-word shingles of the normalised text (CJK characters are words).

    A text shorter than ``size`` words gives one shingle: the whole text.
    """
    words = split_words(normalize_for_hash(text))
    if len(words) <= size:
        return {" ".join(words).encode("utf-8")} if words else set()
    return {" ".join(words[i : i + size]).encode("utf-8") for i in range(len(words) - size + 1)}


def char_shingles(text: str, size: int) -> set[bytes]:
    """Set of ``size``-character shingles of the normalised text (spaces included)."""
    norm = normalize_for_hash(text)
    if len(norm) <= size:
        return {norm.encode("utf-8")} if norm else set()
    return {norm[i : i + size].encode("utf-8") for i in range(len(norm) - size + 1)}


@dataclass(frozen=True)
class MinHashParams:
    """Shingling and LSH settings. ``bands * rows`` must not exceed ``num_perm``.

    Attributes:
        shingle_size: words (or characters, with ``unit="char"``) per shingle.
        unit: ``"word"`` or ``"char"`` shingles.
        num_perm: permutations (hash functions) per signature.
        bands, rows: LSH banding.
        min_jaccard: if set, a candidate is a duplicate only when the signatures' estimated
            Jaccard similarity reaches this value.
        seed: permutation seed (signatures are only comparable with the same seed).
    """

    shingle_size: int = 5
    unit: str = "word"
    num_perm: int = 112
    bands: int = 14
    rows: int = 8
    min_jaccard: float | None = None
    seed: int = 1

    def __post_init__(self) -> None:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        if self.unit not in ("word", "char"):
            raise ValueError(f"unit must be 'word' or 'char', not {self.unit!r}")


#: FineWeb's page-level setting.
PAGE_PARAMS = MinHashParams()
#: Short strings: character 3-grams, 128 permutations in 16 bands of 8 rows (candidates above
#: J ~ 0.7), confirmed by an estimated Jaccard of at least 0.7.
TOPIC_PARAMS = MinHashParams(shingle_size=3, unit="char", num_perm=128, bands=16, rows=8, min_jaccard=0.7)


def minhash_signature(text: str, params: MinHashParams = PAGE_PARAMS) -> LeanMinHash:
    """MinHash signature of ``text``'s shingles (compact and picklable)."""
    shingles = (word_shingles if params.unit == "word" else char_shingles)(text, params.shingle_size)
    mh = MinHash(num_perm=params.num_perm, seed=params.seed, hashfunc=xxhash.xxh32_intdigest)
    mh.update_batch(list(shingles))
    return LeanMinHash(mh)


class ExactDeduplicator:
    """Remembers normalised-text hashes; :meth:`is_duplicate` is true from the second sighting on."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def is_duplicate(self, text: str) -> bool:
        key = exact_key(text)
        if key in self._seen:
            return True
        self._seen.add(key)
        return False


class NearDeduplicator:
    """Banded MinHash LSH index; :meth:`is_duplicate` inserts the text when it is new."""

    def __init__(self, params: MinHashParams = PAGE_PARAMS) -> None:
        self.params = params
        self._lsh = MinHashLSH(num_perm=params.num_perm, params=(params.bands, params.rows))
        self._signatures: dict[int, LeanMinHash] = {}
        self._next_key = 0

    def is_duplicate(self, text: str | None = None, signature: LeanMinHash | None = None) -> bool:
        """Check (and index, when new) one text, or a signature computed beforehand."""
        if signature is None:
            if text is None:
                raise ValueError("give the text or its signature")
            signature = minhash_signature(text, self.params)
        candidates = self._lsh.query(signature)
        if candidates:
            if self.params.min_jaccard is None:
                return True
            if any(signature.jaccard(self._signatures[c]) >= self.params.min_jaccard for c in candidates):
                return True
        key = self._next_key
        self._next_key += 1
        self._lsh.insert(key, signature, check_duplication=False)
        if self.params.min_jaccard is not None:
            self._signatures[key] = signature
        return False


def dedup_texts(
    texts: Iterable[str],
    *,
    exact: bool = True,
    near: bool = True,
    params: MinHashParams = PAGE_PARAMS,
) -> tuple[list[int], Counter]:
    """Indices of the texts to keep (first occurrences) and a count of what was dropped why."""
    exact_index = ExactDeduplicator() if exact else None
    near_index = NearDeduplicator(params) if near else None
    kept: list[int] = []
    dropped: Counter = Counter()
    for i, text in enumerate(texts):
        if exact_index is not None and exact_index.is_duplicate(text):
            dropped["exact_duplicate"] += 1
        elif near_index is not None and near_index.is_duplicate(text):
            dropped["near_duplicate"] += 1
        else:
            kept.append(i)
    return kept, dropped


def dedup_topics(
    items: Sequence[str], *, near: bool = True, params: MinHashParams = TOPIC_PARAMS
) -> tuple[list[str], Counter]:
    """De-duplicate a list of short strings; returns the kept strings (in order) and drop counts.

    Empty strings are dropped as ``"empty"``; non-strings raise ``TypeError`` naming the index.
    """
    kept, dropped = dedup_topic_indices(items, near=near, params=params)
    return [items[i] for i in kept], dropped


def topic_texts(data: Any, source: str = "topics") -> tuple[list[str], Callable[[list[int]], Any]]:
    """The strings of a topic file and a function that rebuilds the file's shape from the kept indices.

    Two shapes: a JSON list of strings, or COMP4901B HW1's ``{"data": [{"text": ...}, ...]}`` (other
    fields of each item, and other top-level keys, are kept as they are).
    """
    if isinstance(data, list):
        return data, lambda kept: [data[i] for i in kept]
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        items = data["data"]
        texts = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "text" not in item:
                raise TypeError(f"{source}: data[{i}] is not an object with a 'text' field: {item!r}")
            texts.append(item["text"])
        return texts, lambda kept: {**data, "data": [items[i] for i in kept]}
    raise TypeError(
        f'{source}: expected a JSON list of strings or {{"data": [{{"text": ...}}, ...]}}, got {type(data).__name__}'
    )


def dedup_topic_indices(
    items: Sequence[str], *, near: bool = True, params: MinHashParams = TOPIC_PARAMS
) -> tuple[list[int], Counter]:
    """Like :func:`dedup_topics`, but the indices of the kept strings."""
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"topic item {i} is {type(item).__name__}, not a string: {item!r}")
    nonempty = [i for i, item in enumerate(items) if normalize_for_hash(item)]
    kept_idx, dropped = dedup_texts((items[i] for i in nonempty), near=near, params=params)
    n_empty = len(items) - len(nonempty)
    if n_empty:
        dropped["empty"] += n_empty
    return [nonempty[i] for i in kept_idx], dropped


def main(argv: list[str] | None = None) -> int:
    """``python -m data_tools.web.dedup TOPICS.json [--output OUT.json]``."""
    parser = argparse.ArgumentParser(
        description="De-duplicate the topics of a JSON file: a list of strings, or "
        'HW1\'s {"data": [{"text": ...}]} (the output keeps the input\'s shape).'
    )
    parser.add_argument("input", type=Path, help='JSON file: a list of strings, or {"data": [{"text": ...}, ...]}')
    parser.add_argument("--output", "-o", type=Path, help="where to write the kept list (default: stdout)")
    parser.add_argument("--exact-only", action="store_true", help="skip near-duplicate detection")
    parser.add_argument("--shingle-size", type=int, default=TOPIC_PARAMS.shingle_size)
    parser.add_argument("--num-perm", type=int, default=TOPIC_PARAMS.num_perm)
    parser.add_argument("--bands", type=int, default=TOPIC_PARAMS.bands)
    parser.add_argument("--rows", type=int, default=TOPIC_PARAMS.rows)
    parser.add_argument("--min-jaccard", type=float, default=TOPIC_PARAMS.min_jaccard)
    args = parser.parse_args(argv)

    try:
        data = json.loads(args.input.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        parser.error(f"{args.input}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}")
    try:
        items, rebuild = topic_texts(data, str(args.input))
    except TypeError as err:
        parser.error(str(err))
    params = MinHashParams(
        shingle_size=args.shingle_size,
        unit="char",
        num_perm=args.num_perm,
        bands=args.bands,
        rows=args.rows,
        min_jaccard=args.min_jaccard,
    )
    try:
        kept_idx, dropped = dedup_topic_indices(items, near=not args.exact_only, params=params)
    except TypeError as err:
        parser.error(f"{args.input}: {err}")
    kept = rebuild(kept_idx)
    out = json.dumps(kept, ensure_ascii=False, indent=2)
    if args.output:
        from minimind_hf.utils.atomic_files import atomic_write_text  # here: importing minimind_hf loads transformers

        atomic_write_text(args.output, out + "\n")
    else:
        print(out)
    summary = ", ".join(f"{reason}: {n}" for reason, n in dropped.most_common()) or "none"
    print(
        f"topic items before dedup {len(items)}, after dedup {len(kept_idx)} (dropped {sum(dropped.values())}: "
        f"{summary})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    from minimind_hf.utils.command_errors import one_line_errors  # here: importing minimind_hf loads transformers

    raise SystemExit(one_line_errors("python -m data_tools.web.dedup")(main)())
