"""Scoring a speedrun checkpoint: chrF and BLEU on a fixed test slice, and the validation loss.

The test slice is :data:`TEST_ROWS` rows spread evenly over the test file (row ``i * n // 300``), so every
source of the corpus is in it and every run is scored on the same sentences. Translation goes through the
project's evaluation code (:func:`minimind_hf.evaluation.translate.translate`: the same chat prompts, greedy
by default, left-padded batches of :data:`BATCH_SIZE`, each translation capped at 3x its source's tokens + 8
as ``minimind eval`` does). BLEU uses sacrebleu's ``zh`` tokenizer.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from minimind_hf.evaluation.scores import corpus_scores
from minimind_hf.evaluation.translate import translate
from minimind_hf.utils.jsonl import read_jsonl

TEST_ROWS = 300
BATCH_SIZE = 16  # fixed for every row of the leaderboard
LENGTH_RATIO = 3.0
EXAMPLES = 3


def test_slice(path: str | Path, rows: int = TEST_ROWS) -> list[dict[str, str]]:
    """``rows`` pairs spread evenly over the ``{"en", "zh"}`` jsonl at ``path`` (all of them if fewer)."""
    pairs = [row for _, row in read_jsonl(Path(path))]
    if len(pairs) <= rows:
        return pairs
    return [pairs[i * len(pairs) // rows] for i in range(rows)]


def score_translations(translate_fn, pairs: list[dict[str, str]]) -> dict[str, Any]:
    """chrF / BLEU of ``translate_fn(sources) -> hypotheses`` on ``pairs``, with the CPU seconds it took."""
    start = time.process_time()
    hypotheses = translate_fn([p["en"] for p in pairs])
    scores = corpus_scores(hypotheses, [p["zh"] for p in pairs])
    return {
        "chrf": round(scores["chrf"], 2),
        "bleu": round(scores["bleu"], 2),
        "n": len(pairs),
        "eval_cpu_s": round(time.process_time() - start, 1),
        "examples": [
            {"en": p["en"], "ref": p["zh"], "hyp": h}
            for p, h in zip(pairs[:EXAMPLES], hypotheses[:EXAMPLES], strict=True)
        ],
    }


def score_causal_lm(
    model, tokenizer, pairs, prompt_id: int = 0, system: str | None = None, **generate_kwargs: Any
) -> dict[str, Any]:
    """Scores of a MiniMind checkpoint, asked with the project's prompt ``prompt_id``."""
    return score_translations(
        lambda sources: translate(
            model,
            tokenizer,
            sources,
            batch_size=BATCH_SIZE,
            prompt_id=prompt_id,
            system=system,
            length_ratio=LENGTH_RATIO,
            show_progress=False,
            **generate_kwargs,
        ),
        pairs,
    )


@torch.inference_mode()
def validation_loss(model, dataset, collator, batch_size: int = 64) -> float:
    """Mean next-token loss per labelled token over ``dataset`` (rows with ``labels``, -100 = none)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        targets = batch["labels"][:, 1:]
        keep = targets != -100
        total += torch.nn.functional.cross_entropy(logits[:, :-1][keep].float(), targets[keep], reduction="sum").item()
        count += int(keep.sum())
    return round(total / max(count, 1), 4) if count else math.nan
