"""Gopher quality and repetition rules.

From Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher", appendix A and table
A1.

Defaults are the paper's values. For Chinese the same thresholds apply with every CJK
character counted as a word; the mean-word-length rule is skipped (a character "word" is
always one long), and the stop words are common Chinese function characters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .base import DocumentFilter
from .text import (
    BULLETS,
    ELLIPSES,
    STOP_WORDS_EN,
    STOP_WORDS_ZH,
    is_cjk_lang,
    is_symbol_word,
    split_paragraphs,
    split_words,
    strip_punct,
)


@dataclass(frozen=True)
class GopherQualityFilter(DocumentFilter):
    """Gopher's document quality heuristics.

    Drops a document when:
      * it has fewer than ``min_doc_words`` or more than ``max_doc_words`` words (symbol-only
        tokens not counted);
      * its mean word length is outside [``min_avg_word_length``, ``max_avg_word_length``];
      * the ``#`` symbol or the ellipsis occurs more than ``max_symbol_word_ratio`` times per word;
      * more than ``max_bullet_lines_ratio`` of its lines start with a bullet, or more than
        ``max_ellipsis_lines_ratio`` end with an ellipsis;
      * fewer than ``min_alpha_words_ratio`` of its words contain a letter;
      * it contains fewer than ``min_stop_words`` distinct stop words.

    A threshold set to ``None`` turns its rule off.
    """

    name = "gopher_quality"

    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words_en: frozenset[str] = STOP_WORDS_EN
    stop_words_zh: frozenset[str] = STOP_WORDS_ZH

    def reason(self, text: str, lang: str = "en") -> str | None:
        cjk = is_cjk_lang(lang)
        words = split_words(text)
        content_words = [w for w in words if not is_symbol_word(w)]
        n_content = len(content_words)
        if self.min_doc_words is not None and n_content < self.min_doc_words:
            return "too_few_words"
        if self.max_doc_words is not None and n_content > self.max_doc_words:
            return "too_many_words"

        if not cjk and (self.min_avg_word_length is not None or self.max_avg_word_length is not None):
            lengths = [len(strip_punct(w)) for w in content_words]
            mean_length = sum(lengths) / max(len(lengths), 1)
            if self.min_avg_word_length is not None and mean_length < self.min_avg_word_length:
                return "mean_word_length_low"
            if self.max_avg_word_length is not None and mean_length > self.max_avg_word_length:
                return "mean_word_length_high"

        n_words = max(len(words), 1)
        if self.max_symbol_word_ratio is not None:
            if text.count("#") / n_words > self.max_symbol_word_ratio:
                return "hash_ratio"
            n_ellipses = text.count("...") + text.count("…")
            if n_ellipses / n_words > self.max_symbol_word_ratio:
                return "ellipsis_ratio"

        lines = [line.strip() for line in text.split("\n") if line.strip()]
        n_lines = max(len(lines), 1)
        if self.max_bullet_lines_ratio is not None:
            if sum(line.startswith(BULLETS) for line in lines) / n_lines > self.max_bullet_lines_ratio:
                return "bullet_lines"
        if self.max_ellipsis_lines_ratio is not None:
            if sum(line.endswith(ELLIPSES) for line in lines) / n_lines > self.max_ellipsis_lines_ratio:
                return "ellipsis_lines"

        if self.min_alpha_words_ratio is not None:
            alpha = sum(any(ch.isalpha() for ch in w) for w in words)
            if alpha / n_words < self.min_alpha_words_ratio:
                return "alpha_words_ratio"

        if self.min_stop_words is not None:
            stop_words = self.stop_words_zh if cjk else self.stop_words_en
            if cjk:
                found = {w[0] for w in words if w and w[0] in stop_words}
            else:
                found = {s for s in map(strip_punct, words) if s in stop_words}
            if len(found) < self.min_stop_words:
                return "too_few_stop_words"
        return None


def _duplicate_stats(items: list[str]) -> tuple[int, int]:
    """(number of items that repeat an earlier one, characters in those repeats)."""
    seen: set[str] = set()
    n_dup = chars_dup = 0
    for item in items:
        if item in seen:
            n_dup += 1
            chars_dup += len(item)
        else:
            seen.add(item)
    return n_dup, chars_dup


def _top_ngram_char_fraction(words: list[str], n: int, total_chars: int) -> float:
    """Characters covered by the most frequent word n-gram (if it occurs twice or more) / all."""
    if len(words) < n or total_chars == 0:
        return 0.0
    counts = Counter(zip(*(words[i:] for i in range(n)), strict=False))
    gram, count = counts.most_common(1)[0]
    if count < 2:
        return 0.0
    return sum(len(w) for w in gram) * count / total_chars


def _duplicate_ngram_char_fraction(words: list[str], n: int, total_chars: int) -> float:
    """Characters of words inside any repeated occurrence of a word n-gram / all characters.

    Words covered by several overlapping repeats are counted once.
    """
    if len(words) < n or total_chars == 0:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    covered = bytearray(len(words))
    for i, gram in enumerate(zip(*(words[j:] for j in range(n)), strict=False)):
        if gram in seen:
            covered[i : i + n] = b"\x01" * n
        else:
            seen.add(gram)
    return sum(len(w) for w, c in zip(words, covered, strict=True) if c) / total_chars


@dataclass(frozen=True)
class GopherRepetitionFilter(DocumentFilter):
    """Gopher's repetition rules (table A1).

    Drops a document when, among its lines / paragraphs, the fraction that duplicate an earlier
    one (or the fraction of characters in them) is too high; when the most frequent 2-, 3-, 4-gram
    covers too many characters; or when the characters inside repeated 5- to 10-grams are too many.
    """

    name = "gopher_repetition"

    max_dup_line_frac: float | None = 0.30
    max_dup_para_frac: float | None = 0.30
    max_dup_line_char_frac: float | None = 0.20
    max_dup_para_char_frac: float | None = 0.20
    top_ngram_max_char_frac: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    dup_ngram_max_char_frac: tuple[tuple[int, float], ...] = (
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    )

    def reason(self, text: str, lang: str = "en") -> str | None:
        if not text.strip():
            return "empty"
        n_chars = len(text)
        paragraphs = split_paragraphs(text)
        n_dup, dup_chars = _duplicate_stats(paragraphs)
        if self.max_dup_para_frac is not None and n_dup / len(paragraphs) > self.max_dup_para_frac:
            return "dup_para_frac"
        if self.max_dup_para_char_frac is not None and dup_chars / n_chars > self.max_dup_para_char_frac:
            return "dup_para_char_frac"

        lines = [line for line in text.split("\n") if line.strip()]
        n_dup, dup_chars = _duplicate_stats(lines)
        if self.max_dup_line_frac is not None and n_dup / len(lines) > self.max_dup_line_frac:
            return "dup_line_frac"
        if self.max_dup_line_char_frac is not None and dup_chars / n_chars > self.max_dup_line_char_frac:
            return "dup_line_char_frac"

        words = split_words(text)
        word_chars = sum(len(w) for w in words)
        for n, limit in self.top_ngram_max_char_frac:
            if _top_ngram_char_fraction(words, n, word_chars) > limit:
                return f"top_{n}gram_char_frac"
        checks = sorted(self.dup_ngram_max_char_frac)
        for i, (n, limit) in enumerate(checks):
            fraction = _duplicate_ngram_char_fraction(words, n, word_chars)
            if fraction > limit:
                return f"dup_{n}gram_char_frac"
            # Words inside repeated (n+1)-grams are inside repeated n-grams too, so the fraction
            # can only shrink with n: below every remaining limit, no later check can fail.
            if all(fraction <= later for _, later in checks[i + 1 :]):
                break
        return None
