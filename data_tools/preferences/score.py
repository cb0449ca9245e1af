"""Scoring candidate translations against the reference, on one 0-100 scale.

* ``comet`` (when a local COMET checkpoint is given): segment COMET x 100;
* ``chrf+semantic`` (the offline default): the mean of sentence chrF++ and 100 x the sentence-encoder
  similarity of candidate and reference (:mod:`minimind_hf.evaluation.semantic`);
* ``judge`` (``--judge-url``): the rank an OpenAI-compatible chat model gives, best = 100, worst = 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from minimind_hf.evaluation.scores import comet_score, sentence_scores

from .judge import ChatJudge

METHODS = ("comet", "chrf+semantic", "judge")


def score_candidates(
    sources: Sequence[str],
    candidates: Sequence[Sequence[str]],
    references: Sequence[str],
    method: str = "chrf+semantic",
    comet_model: str | None = None,
    judge: ChatJudge | None = None,
) -> list[list[float]]:
    """One score per candidate of every source (0-100, higher is better)."""
    if method not in METHODS:
        raise ValueError(f"unknown scoring method {method!r}; use one of {METHODS}")
    flat_src = [s for s, cands in zip(sources, candidates, strict=True) for _ in cands]
    flat_hyp = [c for cands in candidates for c in cands]
    flat_ref = [r for r, cands in zip(references, candidates, strict=True) for _ in cands]
    if method == "judge":
        if judge is None:
            raise ValueError("the judge method needs a judge (--judge-url and --judge-model)")
        return [[100 * s / max(1, len(cands) - 1) for s in judge.rank(src, cands)]
                for src, cands in zip(sources, candidates, strict=True)]
    if method == "comet":
        if not comet_model:
            raise ValueError("the comet method needs --comet-model PATH (a local COMET checkpoint)")
        flat = [100 * x for x in comet_score(flat_src, flat_hyp, flat_ref, comet_model)["comet_segments"]]
    else:
        from minimind_hf.evaluation.semantic import similarities

        chrf = [row["chrf++"] for row in sentence_scores(flat_hyp, flat_ref)]
        semantic = similarities(flat_hyp, flat_ref)
        flat = [(c + 100 * float(s)) / 2 for c, s in zip(chrf, semantic, strict=True)]
    out, at = [], 0
    for cands in candidates:
        out.append(flat[at : at + len(cands)])
        at += len(cands)
    return out
