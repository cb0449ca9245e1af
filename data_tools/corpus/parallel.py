"""Cleaning parallel pairs: one small function per filter, each kept / dropped count by reason.

A filter takes a :class:`Pair` and returns either a (possibly rewritten) pair or a :class:`Drop`
naming the reason. :func:`run_filters` chains them and counts, in the build's :class:`Stats`, what
each step kept and dropped (``parallel.<filter>``). The default chain is :func:`default_filters`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from data_tools.corpus.records import Pair
from data_tools.corpus.textutil import CJK_RE, cjk_count, latin_share, normalise_en, squash_ws, word_count
from data_tools.stats import Stats


@dataclass(frozen=True)
class Drop:
    """A filter's verdict that a pair must go, with the reason counted in the tally."""

    reason: str


Filter = Callable[[Pair], "Pair | Drop"]

# --------------------------------------------------------------------------------------------------
# markup and UI artefacts

_TAG = re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>")
_WIKI_LINK = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]")
_WIKI_EXT_LINK = re.compile(r"\[(?:https?:)?//\S+\s+([^\]]+)\]")
_WIKI_QUOTES = re.compile(r"'{2,}")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_PRODUCT = re.compile(r"%PRODUCTNAME|\$\[officename\]|%productname", re.IGNORECASE)


def strip_markup(pair: Pair) -> Pair | Drop:
    """Remove HTML/Pango tags and MediaWiki links/bold, unescape entities.

    Wikitext templates (``{{PLURAL:..}}``) cannot be reduced and drop the pair. ``%PRODUCTNAME`` becomes LibreOffice.
    """

    def clean(text: str) -> str:
        text = _PRODUCT.sub("LibreOffice", text)
        text = _TAG.sub("", text)
        text = _WIKI_LINK.sub(r"\1", text)
        text = _WIKI_EXT_LINK.sub(r"\1", text)
        text = _WIKI_QUOTES.sub("", text)
        return squash_ws(html.unescape(text))

    if _TEMPLATE.search(pair.en) or _TEMPLATE.search(pair.zh):
        return Drop("wikitext_template")
    return replace(pair, en=clean(pair.en), zh=clean(pair.zh))


_ACCEL_PAREN = re.compile(r"\s*[(（]\s*[_&~]?[A-Za-z0-9]\s*[)）]")
_ACCEL_KEY = re.compile(r"[(（]\s*[_&~]([A-Za-z0-9])\s*[)）]")
_ACCEL_AMP = re.compile(r"(?<![\w&])&(?=\w)|(?<=[\u4e00-\u9fff])&(?=[A-Za-z0-9])")
_ACCEL_UNDERSCORE = re.compile(r"(?<![\w_])_(?=[^\W_])|(?<=[\u4e00-\u9fff])_(?=[A-Za-z0-9])")
_ACCEL_TILDE = re.compile(r"(?<![~/\\])~(?=\w)")
_TRAILING_DOTS = re.compile(r"\s*(?:\.\.\.|…|⋯)+$")


def strip_accelerators(pair: Pair) -> Pair | Drop:
    """Remove menu accelerator marks.

    ``_File``, ``&File``, ``~File``, ``檔案(&F)``, ``(_F)``; and a trailing ``...`` of menu items.
    """
    key = _ACCEL_KEY.search(pair.zh)
    en = pair.en
    if key:  # the translation names the key: remove its mark inside an English word too ("C_onnect")
        en = re.sub(f"[_&~](?=[{key.group(1).lower()}{key.group(1).upper()}])", "", en, count=1)

    def clean(text: str) -> str:
        text = _ACCEL_PAREN.sub("", text)
        text = _ACCEL_AMP.sub("", text)
        text = _ACCEL_UNDERSCORE.sub("", text)
        text = _ACCEL_TILDE.sub("", text)
        return _TRAILING_DOTS.sub("", text).strip()

    return replace(pair, en=clean(en), zh=clean(pair.zh))


# --------------------------------------------------------------------------------------------------
# placeholders and numbers

PLACEHOLDER = re.compile(
    r"%(?:\d+\$)?[-+#0']*(?:\d+|\*)?(?:\.\d+|\.\*)?(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGcsSpaAn]"  # printf
    r"|%\(\w+\)[-+ #0]*\d*(?:\.\d+)?[diouxXeEfFgGcsr]"  # python %(name)s
    r"|%\{\w+\}|%\d+|%[A-Z][A-Z_]+%?"  # %{name}, %1, %NAME%
    r"|\{\d*(?::[^{}]*)?\}|\{[A-Za-z_][\w.]*(?::[^{}]*)?\}"  # {0} {name} {0:.2f}
    r"|\$\(\w+\)|\$\{\w+\}|\$\d+|\$[A-Z][A-Z0-9_]+|@[A-Z][A-Z0-9_]*@"  # $(ARG) ${x} $1 $NAME @NAME@
    r"|<\s*\w+\s*>"  # <name> left after markup stripping
)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?，。；：！？、）)\]」』])")
_EMPTY_BRACKETS = re.compile(r"[(（\[「『\"“']\s*[)）\]」』\"”']")


def placeholders(text: str) -> Counter:
    return Counter(m.group(0) for m in PLACEHOLDER.finditer(text.replace("%%", "")))


def check_placeholders(pair: Pair) -> Pair | Drop:
    """Drop a pair whose two sides carry different placeholders (``%s``, ``{0}``, ``$(ARG)``, ...)."""
    if placeholders(pair.en) != placeholders(pair.zh):
        return Drop("placeholder_mismatch")
    return pair


def _inner_placeholder(text: str) -> bool:
    """True when a placeholder sits inside the sentence (words on both sides of it)."""
    text = text.replace("%%", "")
    for m in PLACEHOLDER.finditer(text):
        before, after = text[: m.start()], text[m.end() :]
        if re.search(r"\w", PLACEHOLDER.sub("", before)) and re.search(r"\w", PLACEHOLDER.sub("", after)):
            return True
    return False


def strip_placeholders(pair: Pair) -> Pair | Drop:
    """Remove (matching) placeholders that open or close a text and tidy the punctuation left.

    ``%s: not found`` becomes ``not found``. A placeholder inside a sentence cannot be removed without breaking it, so
    such pairs are dropped (``placeholder_inside``).
    """

    def clean(text: str) -> str:
        text = PLACEHOLDER.sub(" ", text.replace("%%", "\0")).replace("\0", "%")
        text = _EMPTY_BRACKETS.sub(" ", text)
        text = squash_ws(text)
        text = re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])", "", text)
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
        return text.strip(" :：,，;；-–—")

    if not placeholders(pair.en) and not placeholders(pair.zh):
        return replace(pair, en=pair.en.replace("%%", "%"), zh=pair.zh.replace("%%", "%"))
    text_en, text_zh = pair.en, pair.zh
    if _inner_placeholder(text_en) or _inner_placeholder(text_zh):
        return Drop("placeholder_inside")
    return replace(pair, en=clean(text_en), zh=clean(text_zh))


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers(text: str) -> Counter:
    text = unicodedata.normalize("NFKC", text)
    return Counter(n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text))


def check_numbers(pair: Pair) -> Pair | Drop:
    """Drop a pair whose sides hold different numbers (full-width digits and ``1,000`` normalised)."""
    if numbers(pair.en) != numbers(pair.zh):
        return Drop("number_mismatch")
    return pair


# --------------------------------------------------------------------------------------------------
# scripts and lengths


@lru_cache(maxsize=4)
def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


def to_traditional(pair: Pair) -> Pair | Drop:
    """Simplified Chinese sides go through OpenCC ``s2twp`` (Taiwan standard, with Taiwanese phrases)."""
    if pair.script != "hans":
        return pair
    return replace(pair, zh=_opencc("s2twp").convert(pair.zh), script="hant", origin_script="hans")


_CONTROL = re.compile(r"<\|[^|<>]*\|>|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_control(pair: Pair) -> Pair | Drop:
    """Drop pairs holding chat control tokens (``<|im_start|>``) or control characters."""
    if _CONTROL.search(pair.en) or _CONTROL.search(pair.zh):
        return Drop("control_token")
    return pair


def check_lengths(pair: Pair, min_en_chars: int = 2, max_en_chars: int = 800, max_zh_chars: int = 600) -> Pair | Drop:
    """Drop empty, one-character and overly long sides."""
    if len(pair.en) < min_en_chars or not any(c.isalpha() for c in pair.en):
        return Drop("en_too_short")
    if not pair.zh:
        return Drop("zh_empty")
    if len(pair.en) > max_en_chars or len(pair.zh) > max_zh_chars:
        return Drop("too_long")
    return pair


_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")


def check_scripts(pair: Pair, min_en_latin: float = 0.8, min_zh_cjk: float = 0.2) -> Pair | Drop:
    """The Chinese side must hold Chinese characters (and no kana / hangul).

    The English side must be mostly Latin letters and hold none.
    """
    if CJK_RE.search(pair.en):
        return Drop("en_has_cjk")
    if latin_share(pair.en) < min_en_latin:
        return Drop("en_not_latin")
    n_cjk = cjk_count(pair.zh)
    if n_cjk == 0:
        return Drop("zh_no_cjk")
    if _KANA.search(pair.zh) or _HANGUL.search(pair.zh):
        return Drop("zh_kana_or_hangul")
    latin = len(re.findall(r"[A-Za-z]", pair.zh))
    if n_cjk / (n_cjk + latin) < min_zh_cjk:
        return Drop("zh_mostly_latin")
    return pair


def check_length_ratio(pair: Pair, low: float = 0.1, high: float = 1.6, min_en_chars: int = 20) -> Pair | Drop:
    """Drop pairs whose Chinese/English character ratio is implausible.

    Only checked when the English side has ``min_en_chars`` characters or more; short UI labels vary too much.
    """
    if len(pair.en) < min_en_chars:
        return pair
    ratio = len(pair.zh) / len(pair.en)
    if ratio < low:
        return Drop("ratio_zh_too_short")
    if ratio > high:
        return Drop("ratio_zh_too_long")
    return pair


class Deduplicate:
    """De-duplication keyed on the normalised English side.

    Identical pairs go (``duplicate_pair``). Sources are read in priority order, so the first
    translation of an English text is the preferred one (native zh-TW before converted zh-CN); up
    to ``max_per_en`` distinct translations are kept (``duplicate_en_over_limit`` beyond that).
    With ``converted_variants=False`` a converted (Simplified -> s2twp) translation is only taken
    for English that no earlier source translated (``duplicate_en_converted``).
    """

    def __init__(self, max_per_en: int = 1, converted_variants: bool = False) -> None:
        self.max_per_en = max_per_en
        self.converted_variants = converted_variants
        self.count_en: Counter = Counter()
        self.seen_pair: set[tuple[str, str]] = set()

    def __call__(self, pair: Pair) -> Pair | Drop:
        key = normalise_en(pair.en)
        zh_key = re.sub(r"\s+", "", pair.zh)
        if (key, zh_key) in self.seen_pair:
            return Drop("duplicate_pair")
        if self.count_en[key]:
            if pair.origin_script == "hans" and not self.converted_variants:
                return Drop("duplicate_en_converted")
            if self.count_en[key] >= self.max_per_en:
                return Drop("duplicate_en_over_limit")
        self.seen_pair.add((key, zh_key))
        self.count_en[key] += 1
        return pair


def is_sentence_like(pair: Pair, min_words: int = 6) -> bool:
    """Whether a pair is sentence-like: its English side has ``min_words`` or more words."""
    return word_count(pair.en) >= min_words


def default_filters(max_per_en: int = 1, converted_variants: bool = False) -> list[tuple[str, Filter]]:
    """The build's filter chain, in order, with the names the tally counts them under.

    (The optional semantic filter, :class:`data_tools.corpus.semantic.SemanticFilter`, works on
    batches and runs after this chain.)
    """
    chain: list[tuple[str, Filter]] = [
        ("control", check_control),
        ("markup", strip_markup),
        ("accelerators", strip_accelerators),
        ("placeholders_match", check_placeholders),
        ("placeholders_strip", strip_placeholders),
        ("numbers", check_numbers),
        ("lengths", check_lengths),
        ("opencc_s2twp", to_traditional),
        ("scripts", check_scripts),
        ("length_ratio", check_length_ratio),
    ]
    chain.append(("dedup", Deduplicate(max_per_en, converted_variants)))
    return chain


def run_filters(pairs: Iterable[Pair], filters: list[tuple[str, Filter]], tally: Stats) -> Iterator[Pair]:
    """Apply ``filters`` in order; a dropped pair stops there. Counts go to ``parallel.<name>``."""
    for pair in pairs:
        current: Pair | Drop = pair
        for name, fn in filters:
            current = fn(current)
            if isinstance(current, Drop):
                tally.drop(f"parallel.{name}", current.reason)
                tally.note("parallel.dropped_by_source", pair.source)
                break
            tally.keep(f"parallel.{name}")
        else:
            yield current
