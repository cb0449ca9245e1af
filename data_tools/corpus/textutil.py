"""Small text helpers shared by adapters and filters: whitespace, scripts, normalisation."""

from __future__ import annotations

import re
import unicodedata

# CJK Unified Ideographs (+ extension A, compatibility ideographs); enough to tell Chinese text.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{_CJK}]")
_WS_RUN = re.compile(r"\s+")
_CJK_NL_CJK = re.compile(f"(?<=[{_CJK}\u3000-\u303f\uff00-\uffef])\\s*\\n\\s*(?=[{_CJK}\u3000-\u303f\uff00-\uffef])")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LETTER = re.compile(r"[^\W\d_]")


def squash_ws(text: str) -> str:
    """Collapse whitespace to single spaces; a line break between two Chinese characters disappears."""
    text = text.replace("\u00a0", " ").replace("\u200b", "")
    text = _CJK_NL_CJK.sub("", text)
    return _WS_RUN.sub(" ", text).strip()


def cjk_count(text: str) -> int:
    return len(CJK_RE.findall(text))


def latin_share(text: str) -> float:
    """Share of Latin letters among all letters (ideographs included, digits not) of ``text``."""
    letters = _LETTER.findall(text)
    if not letters:
        return 0.0
    return len(_LATIN_LETTER.findall(text)) / len(letters)


def word_count(text: str) -> int:
    """Whitespace words that contain at least one letter (so ``-`` or ``42`` do not count)."""
    return sum(1 for w in text.split() if any(c.isalpha() for c in w))


def normalise_en(text: str) -> str:
    """The key used for de-duplication and splits: NFKC, lower case, letters and digits only."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.findall(r"\w+", text))
