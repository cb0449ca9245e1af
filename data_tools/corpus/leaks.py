"""How much of the held-out data training already saw: the figures behind the data card's split table.

For each held-out file (validation and test, general and finance) :func:`heldout_overlap` counts the
rows whose English side is in training exactly (normalised) or as a near-duplicate (same
:func:`~data_tools.corpus.splits.coarse_en` key: articles, plurals, case and punctuation aside), and
the rows whose reference is identical to a training target. ``python -m data_tools.corpus
check-splits --data DIR`` measures a built data directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from data_tools.corpus.records import CorpusError
from data_tools.corpus.splits import coarse_en, zh_key
from data_tools.corpus.textutil import normalise_en
from minimind_hf.data.layout import split_file
from minimind_hf.utils.jsonl import read_jsonl

TRAIN_FILES = tuple(split_file(stage) for stage in ("sft", "lora"))
HELDOUT_FILES = tuple(split_file(stage, split) for stage in ("sft", "lora") for split in ("validation", "test"))


class TrainIndex:
    """The keys of the training pairs."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.en: set[str] = set()
        self.coarse: set[str] = set()
        self.zh: set[str] = set()
        self.zh_folded: set[str] = set()
        for en, zh in pairs:
            self.en.add(normalise_en(en))
            self.coarse.add(coarse_en(en))
            self.zh.add(zh.strip())
            self.zh_folded.add(zh_key(zh))

    def overlap(self, pairs: Iterable[tuple[str, str]]) -> dict[str, float | int]:
        """Counts and shares of held-out ``pairs`` that training already covers."""
        rows = same_en = near = same_ref = near_ref = 0
        for en, zh in pairs:
            rows += 1
            same_en += normalise_en(en) in self.en
            near += coarse_en(en) in self.coarse
            same_ref += zh.strip() in self.zh
            near_ref += zh_key(zh) in self.zh_folded
        counts = {
            "rows": rows,
            "english_in_train": same_en,
            "near_duplicate_in_train": near,
            "reference_is_a_train_target": same_ref,
            "reference_folded_is_a_train_target": near_ref,
        }
        for key in list(counts)[1:]:
            counts[key + "_share"] = round(counts[key] / rows, 4) if rows else 0.0
        return counts


def _pairs(path: Path) -> list[tuple[str, str]]:
    from data_tools.corpus.sample import en_from_prompt

    out = []
    for line, row in read_jsonl(path, error=CorpusError):
        if "en" in row and "zh" in row:
            out.append((row["en"], row["zh"]))
        elif "conversations" in row:
            turns = row["conversations"]
            out.append((en_from_prompt(turns[-2]["content"]), turns[-1]["content"]))
        else:
            raise CorpusError(f"{path}:{line}: neither an {{'en', 'zh'}} row nor a chat with 'conversations'")
    return out


def check_data_dir(data: Path | str) -> dict[str, dict]:
    """:meth:`TrainIndex.overlap` of every held-out file of a built data directory."""
    data = Path(data)
    missing = [name for name in TRAIN_FILES if not (data / name).is_file()]
    if missing:
        raise CorpusError(f"{data}: no {', '.join(missing)} (is it a built data directory?)")
    index = TrainIndex(p for name in TRAIN_FILES for p in _pairs(data / name))
    return {name: index.overlap(_pairs(data / name)) for name in HELDOUT_FILES if (data / name).is_file()}
