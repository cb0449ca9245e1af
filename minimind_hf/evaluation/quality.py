"""What a score alone hides.

Empty, looping, untranslated and over-long outputs, the length ratio, and two floors computed on the same references.

* **looping**: a unit of 1-12 characters holding a letter or CJK character repeated back to back
  (4+ times for one character, 3+ times for longer units: ``在在在在``, ``.org.org.org``). Digits and
  punctuation alone do not count (``1000000``, ``……``).
* **untranslated**: the output is the English source, or holds no CJK character although the
  reference does.
* **no CJK** / **Chinese**: a non-empty output with no CJK character / with at least one (with the
  empty share these three add up to 1; the Traditional share is measured over the Chinese ones).
* **over-long**: more than twice the reference's characters plus 10.
* **floors**: the English source copied as the "translation" (names, commands and numbers stay in
  Latin script in zh-TW references, so this is not zero), and the model's own outputs scored against
  shuffled references (what the metric gives for fluent text that translates nothing).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORDY = re.compile(r"[^\W\d_]")  # a letter of any script, CJK included
_REPEAT = re.compile(r"(.{1,12}?)\1{2,}", flags=re.S)


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def is_looping(text: str) -> bool:
    for match in _REPEAT.finditer(text):
        unit = match.group(1)
        repeats = len(match.group(0)) // len(unit)
        if _WORDY.search(unit) and (repeats >= 4 if len(unit) == 1 else repeats >= 3):
            return True
    return False


def is_untranslated(hypothesis: str, source: str, reference: str) -> bool:
    hyp = hypothesis.strip()
    return hyp == source.strip() or (has_cjk(reference) and not has_cjk(hyp) and bool(hyp))


def is_over_long(hypothesis: str, reference: str) -> bool:
    return len(hypothesis) > 2 * len(reference) + 10


def output_flags(hypothesis: str, source: str, reference: str) -> dict[str, bool]:
    return {
        "empty": not hypothesis.strip(),
        "looping": is_looping(hypothesis),
        "untranslated": is_untranslated(hypothesis, source, reference),
        "over_long": is_over_long(hypothesis, reference),
    }


def output_health(hypotheses: Sequence[str], sources: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Shares of empty / looping / untranslated / over-long outputs, and the character length ratio.

    Also the shares of non-empty outputs with no CJK character and of outputs with one (``chinese_share``).
    """
    flags = [output_flags(h, s, r) for h, s, r in zip(hypotheses, sources, references, strict=True)]
    n = len(flags)
    shares = {
        f"{key}_share": sum(f[key] for f in flags) / n if n else 0.0
        for key in ("empty", "looping", "untranslated", "over_long")
    }
    ref_chars = sum(len(r) for r in references)
    chinese = sum(has_cjk(h) for h in hypotheses)
    return {
        **shares,
        "no_cjk_share": sum(bool(h.strip()) and not has_cjk(h) for h in hypotheses) / n if n else 0.0,
        "chinese_share": chinese / n if n else 0.0,
        "length_ratio": sum(len(h) for h in hypotheses) / ref_chars if ref_chars else 0.0,
        "references_looping_share": sum(is_looping(r) for r in references) / n if n else 0.0,
    }


def derangement(n: int, seed: int = 0) -> list[int]:
    """A fixed permutation with no fixed point (each output is paired with someone else's reference)."""
    if n < 2:
        return list(range(n))
    order = list(range(n))
    random.Random(seed).shuffle(order)
    target = [0] * n
    for place, i in enumerate(order):  # each item takes the reference of the next one in a shuffled cycle
        target[i] = order[(place + 1) % n]
    return target


def floors(
    score: Callable[[Sequence[str], Sequence[str]], dict[str, float]],
    hypotheses: Sequence[str],
    sources: Sequence[str],
    references: Sequence[str],
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """``score(hypotheses, references)`` for the copied source and for shuffled references."""
    perm = derangement(len(references), seed)
    return {
        "copy_source": score(list(sources), list(references)),
        "shuffled_references": score(list(hypotheses), [references[j] for j in perm]),
    }
