"""From scored candidates to DPO pairs: best as chosen, worst as rejected, when they differ enough.

Every source sentence ends in exactly one bucket of :class:`SelectionStats`: ``kept`` (a pair was
written), or a ``dropped`` reason — ``margin_below_threshold`` (best and worst score alike: no
preference signal), ``no_finished_candidate`` (the length cap cut every candidate off),
``single_distinct_candidate`` (one distinct non-empty text, and not a poor one the reference could replace) or
``duplicate_pair`` (the same prompt, chosen and rejected already written). When even the best
candidate scores below ``poor_threshold`` the reference translation becomes ``chosen`` (counted as
``reference_as_chosen``): a pair should teach the model something better than its own best guess. That
holds for a lone distinct candidate too (the others cut off, or all the same text).
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from data_tools.corpus.splits import coarse_en
from minimind_hf.prompts import translation_messages


@dataclass(frozen=True)
class Candidate:
    text: str
    score: float
    origin: str = "sample"  # "greedy", "sample" or "reference"


@dataclass
class SelectionStats:
    sources: int = 0
    kept: int = 0
    reference_as_chosen: int = 0
    dropped: Counter = field(default_factory=Counter)
    margins: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        margins = sorted(self.margins)
        summary: dict[str, Any] = {"n": len(margins)}
        if margins:
            summary.update(
                min=margins[0],
                median=statistics.median(margins),
                mean=statistics.fmean(margins),
                p90=margins[int(0.9 * (len(margins) - 1))],
                max=margins[-1],
            )
        return {
            "sources": self.sources,
            "kept": self.kept,
            "reference_as_chosen": self.reference_as_chosen,
            "dropped": dict(self.dropped),
            "margin": summary,
        }


def select_pair(
    candidates: Sequence[Candidate], reference: str, min_margin: float, poor_threshold: float
) -> tuple[Candidate, Candidate] | str:
    """``(chosen, rejected)`` or the reason no pair is made (see the module docstring)."""
    if not candidates:
        return "no_finished_candidate"
    distinct: dict[str, Candidate] = {}
    for cand in candidates:
        text = cand.text.strip()
        if text and (text not in distinct or cand.score > distinct[text].score):
            distinct[text] = cand
    ranked = sorted(distinct.values(), key=lambda c: c.score, reverse=True)
    if not ranked:
        return "single_distinct_candidate"
    best, worst = ranked[0], ranked[-1]
    if len(ranked) == 1 and (best.score >= poor_threshold or reference.strip() in distinct):
        return "single_distinct_candidate"
    if best.score < poor_threshold and reference.strip() not in distinct:
        best = Candidate(reference.strip(), float("inf"), origin="reference")
    elif best.score - worst.score < min_margin:
        return "margin_below_threshold"
    return best, worst


def make_pairs(
    rows: Sequence[dict],
    scored: Sequence[Sequence[Candidate]],
    *,
    min_margin: float,
    poor_threshold: float,
    system: str | None = None,
    prompt_id: int = 0,
) -> tuple[list[dict], SelectionStats]:
    """DPO records ``{"chosen": [...], "rejected": [...], ...}`` for ``rows`` (``{"en", "zh"}``)."""
    stats = SelectionStats()
    seen: set[tuple[str, str, str]] = set()
    records = []
    for row, candidates in zip(rows, scored, strict=True):
        stats.sources += 1
        picked = select_pair(candidates, row["zh"], min_margin, poor_threshold)
        if isinstance(picked, str):
            stats.dropped[picked] += 1
            continue
        chosen, rejected = picked
        key = (row["en"], chosen.text, rejected.text)
        if key in seen:
            stats.dropped["duplicate_pair"] += 1
            continue
        seen.add(key)
        prompt = translation_messages(row["en"], prompt_id=prompt_id, system=system)
        margin = None if chosen.origin == "reference" else chosen.score - rejected.score
        if chosen.origin == "reference":
            stats.reference_as_chosen += 1
        else:
            stats.margins.append(margin)
        stats.kept += 1
        records.append(
            {
                "chosen": [*prompt, {"role": "assistant", "content": chosen.text}],
                "rejected": [*prompt, {"role": "assistant", "content": rejected.text}],
                "kind": "generated",
                "chosen_origin": chosen.origin,
                "scores": {
                    "chosen": None if chosen.origin == "reference" else round(chosen.score, 3),
                    "rejected": round(rejected.score, 3),
                    "margin": None if margin is None else round(margin, 3),
                },
                **({"id": row["id"]} if "id" in row else {}),
            }
        )
    return records, stats


def holdout_rows(rows: Sequence[dict], n: int) -> list[int]:
    """Indices of at least ``n`` rows (fewer only if there are not enough) held out for validation pairs.

    Rows are taken by groups of the same coarse English key (:func:`data_tools.corpus.splits.coarse_en`:
    near-duplicates stay together), groups in the order of a hash of their key, so the choice is the same
    on every run and the training pairs never see a near-duplicate of a validation source.
    """
    if n <= 0:
        return []
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(coarse_en(row["en"]), []).append(i)

    def order(key: str) -> bytes:
        return hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=b"mm-dpo-val").digest()

    held: list[int] = []
    for key in sorted(groups, key=order):
        if len(held) >= n:
            break
        held.extend(groups[key])
    return sorted(held)
