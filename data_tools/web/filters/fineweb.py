"""FineWeb's extra quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.4).

They target what Gopher and C4 let through on Common Crawl: pages where few lines end like
sentences, pages made of short lines (menus, lists of links), pages with repeated lines, and
list-like pages with many line breaks per word. For Chinese, CJK characters count as words.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import DocumentFilter
from .gopher import _duplicate_stats
from .text import ends_with_terminal_punctuation, split_lines, split_words


@dataclass(frozen=True)
class FineWebQualityFilter(DocumentFilter):
    """FineWeb's quality rules: drops a page when any of these holds.

    * fewer than ``min_line_punct_ratio`` of its lines end in terminal punctuation;
    * more than ``max_short_line_ratio`` of its lines have at most ``short_line_length`` characters;
    * characters in lines that repeat an earlier line exceed ``max_dup_line_char_ratio`` of all
      characters (newlines not counted);
    * it has more than ``max_newline_word_ratio`` line breaks per word (a list, not prose).
    """

    name = "fineweb_quality"

    min_line_punct_ratio: float | None = 0.12
    max_short_line_ratio: float | None = 0.67
    short_line_length: int = 30
    max_dup_line_char_ratio: float | None = 0.01
    max_newline_word_ratio: float | None = 0.3

    def reason(self, text: str, lang: str = "en") -> str | None:
        lines = split_lines(text)
        if not lines:
            return "empty"
        if self.min_line_punct_ratio is not None:
            ratio = sum(ends_with_terminal_punctuation(line) for line in lines) / len(lines)
            if ratio < self.min_line_punct_ratio:
                return "line_punct_ratio"
        if self.max_short_line_ratio is not None:
            ratio = sum(len(line.strip()) <= self.short_line_length for line in lines) / len(lines)
            if ratio > self.max_short_line_ratio:
                return "short_line_ratio"
        if self.max_dup_line_char_ratio is not None:
            _, dup_chars = _duplicate_stats([line.strip() for line in lines])
            if dup_chars / max(len(text.replace("\n", "")), 1) > self.max_dup_line_char_ratio:
                return "dup_line_char_ratio"
        if self.max_newline_word_ratio is not None:
            n_words = max(len(split_words(text)), 1)
            if text.count("\n") / n_words > self.max_newline_word_ratio:
                return "list_ratio"
        return None
