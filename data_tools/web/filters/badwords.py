"""Bad-words filter (C4 rule): drop a page that contains a word from a block list.

The lists ship with the project (``data_tools/resources/badwords_en.txt`` and
``badwords_zh.txt``; one entry per line, ``#`` starts a comment). English entries match
whole words, case-insensitively; Chinese entries match as substrings (no word boundaries in
Chinese). Both lists are applied to every page, whatever its language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .base import DocumentFilter


def load_word_list(source: str | Path) -> tuple[str, ...]:
    """Entries of a word list: a file path, or the name of a file shipped in ``data_tools/resources``."""
    path = Path(source)
    if path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        shipped = resources.files("data_tools").joinpath("resources", str(source))
        if not shipped.is_file():
            raise FileNotFoundError(f"word list {source!r}: no such file, nor in data_tools/resources")
        text = shipped.read_text(encoding="utf-8")
    entries = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            entries.append(entry)
    return tuple(dict.fromkeys(entries))


@lru_cache(maxsize=8)
def _compile(words: tuple[str, ...], whole_words: bool) -> re.Pattern[str] | None:
    if not words:
        return None
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    if whole_words:
        return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)
    return re.compile(alternation)


@dataclass(frozen=True)
class BadWordsFilter(DocumentFilter):
    """Drops a page with more than ``max_hits`` block-list matches (C4: any match drops)."""

    name = "badwords"

    words_en: tuple[str, ...] = field(default_factory=lambda: load_word_list("badwords_en.txt"))
    words_zh: tuple[str, ...] = field(default_factory=lambda: load_word_list("badwords_zh.txt"))
    max_hits: int = 0

    def hits(self, text: str) -> int:
        """Number of block-list matches in ``text``."""
        return self._count(text, limit=None)

    def _count(self, text: str, limit: int | None) -> int:
        n = 0
        for pattern in (_compile(self.words_en, True), _compile(self.words_zh, False)):
            if pattern is None:
                continue
            for _ in pattern.finditer(text):
                n += 1
                if limit is not None and n > limit:
                    return n
        return n

    def reason(self, text: str, lang: str = "en") -> str | None:
        return "badword" if self._count(text, limit=self.max_hits) > self.max_hits else None
