"""Train / validation / test assignment, stable across runs and machines.

A pair's split is a function of its normalised English side alone (a blake2b hash), so the same
sentence lands in the same split whichever source or stage it appears in, and re-running the build
never moves a pair. Finance pairs (scarcer) hold out larger shares than general ones; the domain is
itself a function of the English text, so the assignment stays deterministic and the splits
disjoint across all output files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from data_tools.corpus.textutil import normalise_en

SPLITS = ("train", "validation", "test")


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
