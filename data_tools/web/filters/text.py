"""Text units shared by the quality filters: words, lines, paragraphs, sentences, punctuation.

Chinese (and Japanese) text has no spaces between words, so every CJK ideograph or kana
counts as one *word*; punctuation that follows it sticks to it, just as English punctuation
sticks to the word before it in whitespace tokenisation. This lets the word-based Gopher, C4
and FineWeb rules run on Chinese text unchanged ("character-based equivalents").
"""

from __future__ import annotations

import re

#: CJK Unified Ideographs (+ extension A, compatibility ideographs), kana.
CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff"
_WORD_RE = re.compile(rf"[{CJK_CHARS}][^\w\s]*|[^\s{CJK_CHARS}]+")
_LINE_SPLIT = re.compile(r"\n+")
_PARA_SPLIT = re.compile(r"\n{2,}")

#: Languages whose text is counted in characters.
CJK_LANGS = frozenset({"zh", "ja", "wuu", "yue", "gan", "lzh"})

#: A line "ends in terminal punctuation" (C4, FineWeb) if it ends with one of these.
#: English: the C4 set (. ? ! ") plus the typographic closing quote; Chinese: 。！？, full-width
#: ．！？ and the closing corner brackets that follow them.
TERMINAL_PUNCTUATION: tuple[str, ...] = (".", "!", "?", '"', "”", "。", "！", "？", "．", "」", "』")
#: Endings that look terminal but are not (C4 drops lines that trail off).
ELLIPSES: tuple[str, ...] = ("...", "…")
#: Line starts counted as bullets by the Gopher rule.
BULLETS: tuple[str, ...] = ("•", "-", "*", "·", "‣", "◦", "▪", "●", "–")

_SENTENCE_END = re.compile(r"[.!?]+(?=[\"”’')\]]*(?:\s|$))|[。！？．]+")

#: Gopher's stop words for English (MassiveText paper, appendix A).
STOP_WORDS_EN: frozenset[str] = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
#: The most frequent Chinese function characters, in Traditional and Simplified forms.
STOP_WORDS_ZH: frozenset[str] = frozenset({"的", "是", "了", "在", "和", "有", "不", "這", "这"})


def is_cjk_lang(lang: str | None) -> bool:
    """True for languages counted in characters."""
    return (lang or "").split("-")[0].split("_")[0].lower() in CJK_LANGS


def split_words(text: str) -> list[str]:
    """Whitespace words, with every CJK character (plus trailing punctuation) a word of its own."""
    return _WORD_RE.findall(text)


def is_symbol_word(word: str) -> bool:
    """True if ``word`` has no letter or digit (punctuation, arrows, bullets...)."""
    return not any(ch.isalnum() for ch in word)


def strip_punct(word: str) -> str:
    """``word`` without leading/trailing punctuation, lower-cased (for stop-word lookup)."""
    start, end = 0, len(word)
    while start < end and not word[start].isalnum():
        start += 1
    while end > start and not word[end - 1].isalnum():
        end -= 1
    return word[start:end].lower()


def split_lines(text: str) -> list[str]:
    """Lines of ``text``, blank lines removed."""
    return [line for line in _LINE_SPLIT.split(text) if line.strip()]


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of ``text`` (separated by one or more blank lines)."""
    return [p for p in _PARA_SPLIT.split(text.strip()) if p.strip()]


def ends_with_terminal_punctuation(line: str) -> bool:
    """True if ``line`` ends a sentence (and does not trail off with an ellipsis)."""
    line = line.rstrip()
    return line.endswith(TERMINAL_PUNCTUATION) and not line.endswith(ELLIPSES)


def count_sentences(text: str) -> int:
    """Rough sentence count: sentence-final punctuation marks, at least 1 for non-empty text that ends without one.

    (C4 used a trained sentence splitter; this approximation counts "Mr." as a sentence end.)
    """
    text = text.strip()
    if not text:
        return 0
    ends = len(_SENTENCE_END.findall(text))
    tail_open = not ends_with_terminal_punctuation(text)
    return ends + (1 if tail_open else 0)
