"""C4's line and page rules.

From Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer", section
2.2, and the reference ``c4_utils`` code.

Line by line: lines with a word over ``max_word_length`` characters, without terminal
punctuation, with fewer than ``min_words_per_line`` words, mentioning "javascript" or a
cookie / terms-of-use notice are removed; Wikipedia-style citation marks ``[1]`` are cut out.
A page is dropped if a kept line contains "lorem ipsum" or a curly bracket ``{``, or if fewer
than ``min_sentences`` sentences are left. For Chinese, CJK characters count as words and
。！？ as terminal punctuation.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .base import DocumentFilter, FilterResult
from .text import count_sentences, ends_with_terminal_punctuation, split_words

CITATION_RE = re.compile(r"\[\d+\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
POLICY_PHRASES: tuple[str, ...] = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


@dataclass(frozen=True)
class C4QualityFilter(DocumentFilter):
    """C4's line-level clean-up and page-level rules; edits the text (kept lines only)."""

    name = "c4_quality"

    remove_citations: bool = True
    filter_no_terminal_punct: bool = True
    min_words_per_line: int | None = 3
    max_word_length: int | None = 1000
    filter_javascript: bool = True
    filter_policy: bool = True
    filter_lorem_ipsum: bool = True
    filter_curly_bracket: bool = True
    min_sentences: int | None = 5

    def apply(self, text: str, lang: str = "en") -> FilterResult:
        notes: Counter = Counter()
        kept: list[str] = []
        n_sentences = 0
        for raw_line in text.split("\n"):
            line = raw_line.strip()
            if not line:
                continue
            notes["lines_in"] += 1
            words = split_words(line)
            if self.max_word_length is not None and any(len(w) > self.max_word_length for w in words):
                notes["lines_removed: word too long"] += 1
                continue
            if self.remove_citations:
                line = CITATION_RE.sub("", line).strip()
            if self.filter_no_terminal_punct and not ends_with_terminal_punctuation(line):
                notes["lines_removed: no terminal punctuation"] += 1
                continue
            if self.min_words_per_line is not None and len(words) < self.min_words_per_line:
                notes["lines_removed: too few words"] += 1
                continue
            lowered = line.lower()
            if self.filter_lorem_ipsum and "lorem ipsum" in lowered:
                return FilterResult(None, "lorem_ipsum", notes)
            if self.filter_javascript and "javascript" in lowered:
                notes["lines_removed: javascript"] += 1
                continue
            if self.filter_curly_bracket and "{" in line:
                return FilterResult(None, "curly_bracket", notes)
            if self.filter_policy and any(p in lowered for p in POLICY_PHRASES):
                notes["lines_removed: policy notice"] += 1
                continue
            n_sentences += count_sentences(line)
            kept.append(line)
        if self.min_sentences is not None and n_sentences < self.min_sentences:
            return FilterResult(None, "too_few_sentences", notes)
        notes["lines_kept"] += len(kept)
        return FilterResult("\n".join(kept), None, notes)

    def reason(self, text: str, lang: str = "en") -> str | None:
        return self.apply(text, lang).reason
