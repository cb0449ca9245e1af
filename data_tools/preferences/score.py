"""Scoring candidate translations on one absolute 0-100 scale that knows the target: Traditional Chinese.

First every candidate is checked for what makes it a poor translation whatever a metric says
(:func:`candidate_problems`, from the evaluation's own output-health and script checks): empty,
untranslated (no Chinese where the reference has some, or the English source copied), Simplified-only
characters, looping, over-long, or cut off by the length cap before it ended. Such a candidate scores
0. The others get:

* ``comet`` (when a local COMET checkpoint is given): segment COMET x 100;
* ``chrf+semantic`` (the offline default): the geometric mean of sentence chrF (character n-grams;
  chrF++'s word bigrams mean nothing for unsegmented Chinese) and 100 x the sentence-encoder similarity
  of candidate and reference (:mod:`minimind_hf.evaluation.semantic`, negative taken as 0), so a
  candidate scores well only if it both shares the reference's characters and means the same: fluent
  Chinese on the same topic that translates something else keeps a low chrF and a low score. It is
  multiplied by the square root of the length agreement (shorter / longer, in characters): chrF weighs
  recall twice as much as precision, so without it a long string that merely contains the reference's
  characters ("Tax Rates" -> 折扣和稅金都以未稅價格計算 against 稅率) scores like a translation;
* ``judge`` (``--judge-url``): an absolute 0-100 grade from an OpenAI-compatible chat model that sees
  the source and the reference (:mod:`.judge`), never a rank, so a set of poor candidates stays poor
  and the reference can take their place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from minimind_hf.evaluation.quality import output_flags
from minimind_hf.evaluation.scores import comet_score, sentence_scores
from minimind_hf.evaluation.script_check import simplified_characters_in

from .judge import ChatJudge

METHODS = ("comet", "chrf+semantic", "judge")
PROBLEMS = ("empty", "untranslated", "simplified", "looping", "over_long", "cut_off")


def _length_agreement(hypothesis: str, reference: str) -> float:
    """``shorter / longer`` of the two lengths in characters (1: the same length; 0: one is empty)."""
    a, b = len(hypothesis.strip()), len(reference.strip())
    return min(a, b) / max(a, b) if max(a, b) else 0.0


def candidate_problems(text: str, source: str, reference: str, ended: bool = True) -> list[str]:
    """What makes ``text`` a poor Traditional Chinese translation of ``source`` (empty list: nothing)."""
    flags = output_flags(text, source, reference)
    problems = [name for name in ("empty", "untranslated", "looping", "over_long") if flags[name]]
    if simplified_characters_in(text):
        problems.append("simplified")
    if not ended:
        problems.append("cut_off")
    return [p for p in PROBLEMS if p in problems]


def score_candidates(
    sources: Sequence[str],
    candidates: Sequence[Sequence[str]],
    references: Sequence[str],
    method: str = "chrf+semantic",
    comet_model: str | None = None,
    judge: ChatJudge | None = None,
    ended: Sequence[Sequence[bool]] | None = None,
) -> list[list[float]]:
    """One score per candidate of every source (0-100, higher is better; 0 for a poor candidate).

    ``ended[i][j]`` says whether candidate ``j`` of source ``i`` emitted the end token (default: all did).
    """
    if method not in METHODS:
        raise ValueError(f"unknown scoring method {method!r}; use one of {METHODS}")
    if ended is None:
        ended = [[True] * len(cands) for cands in candidates]
    poor = [
        [bool(candidate_problems(c, src, ref, e)) for c, e in zip(cands, ends, strict=True)]
        for src, cands, ref, ends in zip(sources, candidates, references, ended, strict=True)
    ]
    if method == "judge":
        if judge is None:
            raise ValueError("the judge method needs a judge (--judge-url and --judge-model)")
        raw = [
            judge.grade(src, ref, cands) if cands else []
            for src, ref, cands in zip(sources, references, candidates, strict=True)
        ]
    else:
        flat_src = [s for s, cands in zip(sources, candidates, strict=True) for _ in cands]
        flat_hyp = [c for cands in candidates for c in cands]
        flat_ref = [r for r, cands in zip(references, candidates, strict=True) for _ in cands]
        if method == "comet":
            if not comet_model:
                raise ValueError("the comet method needs --comet-model PATH (a local COMET checkpoint)")
            flat = [100 * x for x in comet_score(flat_src, flat_hyp, flat_ref, comet_model)["comet_segments"]]
        else:
            from minimind_hf.evaluation.semantic import similarities

            chrf = [row["chrf"] for row in sentence_scores(flat_hyp, flat_ref)]
            semantic = similarities(flat_hyp, flat_ref)
            flat = [
                math.sqrt(c * 100 * max(0.0, float(s)) * _length_agreement(h, r))
                for c, s, h, r in zip(chrf, semantic, flat_hyp, flat_ref, strict=True)
            ]
        raw, at = [], 0
        for cands in candidates:
            raw.append(flat[at : at + len(cands)])
            at += len(cands)
    return [
        [0.0 if bad else float(s) for s, bad in zip(scores, bads, strict=True)]
        for scores, bads in zip(raw, poor, strict=True)
    ]
