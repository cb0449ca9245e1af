"""Train / validation / test assignment, stable across runs and machines.

Pairs are grouped before they are split: two pairs belong to one group when their English sides
share a *coarse key* (:func:`coarse_en`: normalised, articles dropped, plurals folded, so "Account
Type" / "Account Types" and "Nominal rate" / "The nominal rate" meet) or their Chinese sides share a
key (:func:`zh_key`: punctuation and spaces folded away). A whole group lands in one split, so no
held-out row has a near-duplicate, or its reference as a target, in training.

A Chinese reference shared by several different English texts (different coarse keys) is
*suspect*: it is ambiguous at best ("Close" / "Shut down" -> 關閉) and a misalignment upstream at
worst ("Imported transactions needing review" -> the translation of another string). A group that
holds a suspect reference always trains; it is never a test or validation item.

The split of every other group is a function of its smallest coarse English key alone (a blake2b
hash), so re-running the build never moves a pair and the same text lands in the same split whichever
source it comes from. Finance groups (scarcer) hold out larger shares than general ones.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from data_tools.corpus.textutil import normalise_en

SPLITS = ("train", "validation", "test")
ARTICLES = frozenset({"a", "an", "the"})
_ES_PLURAL = ("sses", "shes", "ches", "xes", "zes")


@dataclass(frozen=True)
class SplitShares:
    """Per-mille shares held out for validation and test."""

    validation: int = 10
    test: int = 10

    def __post_init__(self) -> None:
        if self.validation < 0 or self.test < 0 or self.validation + self.test >= 1000:
            raise ValueError(f"split shares must be >= 0 and sum below 1000 per mille, got {self}")


GENERAL = SplitShares(validation=10, test=10)
FINANCE = SplitShares(validation=60, test=80)


def _singular(word: str) -> str:
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(_ES_PLURAL):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def coarse_en(text: str) -> str:
    """The English grouping key.

    :func:`normalise_en` (case and punctuation folded), articles dropped, each word's plural folded to its singular. A
    text of articles alone keeps its normalised form.
    """
    words = normalise_en(text).split()
    kept = [_singular(w) for w in words if w not in ARTICLES]
    return " ".join(kept) if kept else " ".join(words)


def zh_key(text: str) -> str:
    """The Chinese grouping key: NFKC, case folded, letters / ideographs / digits only."""
    return "".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))


def bucket(en: str) -> int:
    """A stable bucket in ``0..999`` for an English text (normalised first)."""
    digest = hashlib.blake2b(normalise_en(en).encode("utf-8"), digest_size=8, person=b"mm-split").digest()
    return int.from_bytes(digest, "little") % 1000


def assign_split(en: str, shares: SplitShares = GENERAL) -> str:
    """``"test"`` for the first ``shares.test`` buckets, then ``"validation"``, else ``"train"``."""
    b = bucket(en)
    if b < shares.test:
        return "test"
    if b < shares.test + shares.validation:
        return "validation"
    return "train"


@dataclass(frozen=True)
class GroupedSplits:
    """What :func:`group_splits` decided: a split per pair and which pairs hold a suspect reference."""

    splits: list[str]
    suspect: list[bool]
    groups: int
    suspect_held_out: int  # suspect rows whose group would have been held out without the check
    moved_to_train: int  # rows of those groups (suspect or not) that train instead


def group_splits(
    pairs: Sequence[tuple[str, str, bool]], general: SplitShares = GENERAL, finance: SplitShares = FINANCE
) -> GroupedSplits:
    """A split for every ``(en, zh, is_finance)`` pair (see the module docstring)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    en_keys = [coarse_en(en) for en, _, _ in pairs]
    zh_keys = [zh_key(zh) for _, zh, _ in pairs]
    en_of_zh: dict[str, set[str]] = defaultdict(set)
    for e, z in zip(en_keys, zh_keys, strict=True):
        a = find("en:" + e)
        if z:
            en_of_zh[z].add(e)
            b = find("zh:" + z)
            if a != b:
                parent[max(a, b)] = min(a, b)
    suspect = [bool(z) and len(en_of_zh[z]) > 1 for z in zh_keys]
    first_key: dict[str, str] = {}
    is_finance: dict[str, bool] = defaultdict(bool)
    has_suspect: dict[str, bool] = defaultdict(bool)
    roots = []
    for (_, _, fin), e, bad in zip(pairs, en_keys, suspect, strict=True):
        root = find("en:" + e)
        roots.append(root)
        first_key[root] = min(first_key.get(root, e), e)
        is_finance[root] |= fin
        has_suspect[root] |= bad
    by_root = {root: assign_split(key, finance if is_finance[root] else general) for root, key in first_key.items()}
    splits = ["train" if has_suspect[r] else by_root[r] for r in roots]
    suspect_moved = sum(bad and by_root[r] != "train" for r, bad in zip(roots, suspect, strict=True))
    moved = sum(has_suspect[r] and by_root[r] != "train" for r in roots)
    return GroupedSplits(splits, suspect, len(first_key), suspect_moved, moved)
