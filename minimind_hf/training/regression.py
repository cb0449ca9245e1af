"""Did a stage's own validation say it made the model worse? Then say so, loudly, everywhere it is read.

A stage can finish "successfully" and still leave the model worse than it started: DPO on a few dozen pairs for
many epochs drives its training loss to zero while its validation loss climbs past the untrained ``ln 2``.
:func:`validation_warnings` reads the stage's evaluations and returns one sentence per sign of that:

* the final validation loss above the first one measured (more than 1% higher), for the stages whose
  validation loss is a language-model or preference loss;
* GRPO: the final validation reward below the first one measured (more than 1% of it lower); GRPO's own loss
  is a policy-gradient surrogate, not a measure of the model, so it is not judged;
* DPO: a validation loss above ``ln 2`` = 0.693 (what the untouched model scores: the policy equals the
  reference), a negative validation reward margin, a reward accuracy below one half (the model prefers the
  rejected answers).

The runner logs them as warnings at the end of the stage and records them in ``stage_complete.json``
(``warnings``); the model card and the quality summary show them, and ``make all`` repeats them at its end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

LN2 = math.log(2)
RISE = 0.01  # a final validation loss more than 1% above the first one

__all__ = ["LN2", "validation_warnings"]


def _first_eval(log_history: Iterable[dict[str, Any]], key: str = "eval_loss") -> tuple[int, float] | None:
    for entry in log_history:
        if key in entry:
            return int(entry.get("step", 0)), float(entry[key])
    return None


def _reward_warnings(stage: str, log_history: list[dict[str, Any]], metrics: dict[str, Any]) -> list[str]:
    final, first = metrics.get("eval_reward"), _first_eval(log_history, "eval_reward")
    if final is None or first is None or final >= first[1] - RISE * abs(first[1]):
        return []
    return [f"{stage}: validation reward fell from {first[1]:.4g} (step {first[0]}) to {final:.4g} at the end"]


def validation_warnings(stage: str, log_history: list[dict[str, Any]], metrics: dict[str, Any]) -> list[str]:
    """Sentences naming each way the stage's validation says the model got worse (empty when none)."""
    if stage == "grpo":
        return _reward_warnings(stage, log_history, metrics)
    final = metrics.get("eval_loss")
    if final is None:
        return []
    warnings: list[str] = []
    first = _first_eval(log_history)
    if first is not None and final > first[1] + RISE * abs(first[1]):
        warnings.append(
            f"{stage}: validation loss rose from {first[1]:.4g} (step {first[0]}) to {final:.4g} at the "
            "end: the stage overfitted its training data"
        )
    if stage == "dpo":
        if final > LN2 * (1 + RISE):
            warnings.append(
                f"dpo: validation loss {final:.4g} is above ln 2 = {LN2:.3f}, what the model scored "
                "before DPO: it now prefers the rejected answers more than it did"
            )
        margin, accuracy = metrics.get("eval_rewards/margins"), metrics.get("eval_rewards/accuracies")
        if margin is not None and margin < 0:
            warnings.append(f"dpo: validation reward margin {margin:.4g} is negative")
        if accuracy is not None and accuracy < 0.5:
            warnings.append(f"dpo: validation reward accuracy {accuracy:.3g} is below 0.5")
    return warnings
