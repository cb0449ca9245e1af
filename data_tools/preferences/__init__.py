r"""Preference pairs for DPO, made and judged by the project itself.

For each source sentence (a ``{"en", "zh"}`` row, e.g. ``data/lora.jsonl``) the SFT + LoRA model
translates greedily and samples N more candidates; each candidate is checked for what makes it poor
whatever a metric says (empty, untranslated, Simplified, looping, over-long, cut off: score 0) and
otherwise scored against the reference on an absolute 0-100 scale (:mod:`.score`: COMET with a local
checkpoint, else chrF with a sentence-encoder similarity, or an OpenAI-compatible chat model that sees
the reference as the judge); the best and the worst become ``chosen`` and ``rejected`` when their margin
is large enough, with the reference as ``chosen`` where even the best candidate is poor (:mod:`.select`).
Candidates the length cap cut off are dropped. With ``--validation-rows N``, N source rows (whole groups of
near-duplicates) are held out and their pairs, made the same way, written as validation pairs. Output in the
project's DPO format, with a report of what was kept, every sampling setting and the margins::

    python -m data_tools.preferences --model out/sft --adapter out/lora --input data/lora.jsonl \
        --output out/pairs/dpo.jsonl --num-candidates 4 --system finance --validation-rows 100
"""

from .judge import ChatJudge, JudgeError
from .score import score_candidates
from .select import Candidate, SelectionStats, holdout_rows, make_pairs, select_pair

__all__ = [
    "Candidate",
    "ChatJudge",
    "JudgeError",
    "SelectionStats",
    "holdout_rows",
    "make_pairs",
    "score_candidates",
    "select_pair",
]
