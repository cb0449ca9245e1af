"""Pipeline steps: each wraps one of the small functions of this package, and counts.

A step takes a :class:`WebDocument` and returns it (possibly changed) or ``None`` to drop it,
recording the outcome in the :class:`~data_tools.stats.StepStats` it is given. The
pipeline (:mod:`data_tools.web.pipeline`) runs them in order; you can also build your own list.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from datasketch import LeanMinHash

from ..stats import StepStats, reason_tag
from .clean import Normalization, clean_text
from .dedup import PAGE_PARAMS, ExactDeduplicator, MinHashParams, NearDeduplicator, minhash_signature
from .extract import Extractor, decode_html, html_to_text
from .filters.base import DocumentFilter
from .langid import DEFAULT_MAX_CHARS, DEFAULT_THRESHOLD, detect_language
from .pii import replace_pii_counted
from .read import HtmlPage


@dataclass
class WebDocument:
    """A page's text on its way through the pipeline, with where it came from."""

    text: str
    url: str
    warc: str
    record_id: str
    date: str | None = None
    encoding: str | None = None
    lang: str | None = None
    lang_score: float | None = None
    signature: LeanMinHash | None = field(default=None, repr=False)

    def to_record(self) -> dict[str, Any]:
        """The JSON line written to the output file."""
        return {
            "text": self.text,
            "url": self.url,
            "lang": self.lang,
            "lang_score": None if self.lang_score is None else round(self.lang_score, 4),
            "warc": self.warc,
            "record_id": self.record_id,
            "date": self.date,
        }


class Step(ABC):
    """One stage of the pipeline."""

    name: str = "step"

    @abstractmethod
    def process(self, doc: WebDocument, stats: StepStats) -> WebDocument | None:
        """Return the document to pass on, or ``None`` after ``stats.drop(reason)``."""


@dataclass
class ExtractStep:
    """HTML page -> :class:`WebDocument` (charset detection, then main-content extraction)."""

    extractor: Extractor = "resiliparse"
    min_chars: int = 1
    name: str = "extract"

    def process_page(self, page: HtmlPage, stats: StepStats) -> WebDocument | None:
        html, encoding = decode_html(page.payload, page.http_charset)
        stats.note(f"encoding {encoding}")
        text = html_to_text(html, self.extractor)
        if len(text) < self.min_chars:
            stats.drop("no_text_extracted")
            return None
        stats.keep()
        return WebDocument(
            text=text, url=page.url, warc=page.warc, record_id=page.record_id, date=page.date, encoding=encoding
        )


@dataclass
class CleanStep(Step):
    """ftfy repair, Unicode normalisation and whitespace clean-up (:func:`clean_text`)."""

    normalization: Normalization = "NFC"
    min_chars: int = 1
    name: str = "clean"

    def process(self, doc: WebDocument, stats: StepStats) -> WebDocument | None:
        cleaned = clean_text(doc.text, normalization=self.normalization)
        if cleaned != doc.text:
            stats.note("changed")
        if len(cleaned) < self.min_chars:
            stats.drop("empty_after_cleaning")
            return None
        doc.text = cleaned
        stats.keep()
        return doc


@dataclass
class LanguageStep(Step):
    """fastText language ID; keeps the languages in ``langs`` with score >= ``threshold``.

    ``thresholds`` gives per-language minimum scores that override ``threshold``.
    """

    langs: tuple[str, ...] | None = ("en", "zh")
    threshold: float = DEFAULT_THRESHOLD
    thresholds: dict[str, float] = field(default_factory=dict)
    max_chars: int | None = DEFAULT_MAX_CHARS
    name: str = "language"

    def process(self, doc: WebDocument, stats: StepStats) -> WebDocument | None:
        lang, score = detect_language(doc.text, max_chars=self.max_chars)
        doc.lang, doc.lang_score = lang, score
        stats.note(f"detected {lang}")
        if self.langs is not None and lang not in self.langs:
            stats.drop("language_not_kept")
            return None
        if score < self.thresholds.get(lang, self.threshold):
            stats.drop(reason_tag(lang, "score_below_threshold"))
            return None
        stats.keep()
        return doc


@dataclass
class FilterStep(Step):
    """Runs one :class:`DocumentFilter`; its name is the stage name."""

    rule: DocumentFilter
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.rule.name

    def process(self, doc: WebDocument, stats: StepStats) -> WebDocument | None:
        result = self.rule.apply(doc.text, doc.lang or "en")
        stats.notes.update(result.notes)
        if result.reason is not None:
            stats.drop(result.reason)
            return None
        doc.text = result.text if result.text is not None else doc.text
        stats.keep()
        return doc


@dataclass
class PIIStep(Step):
    """Replaces e-mails, phones, IPs, SSNs and card numbers; counts replacements by kind."""

    placeholders: dict[str, str] | None = None
    name: str = "pii"

    def process(self, doc: WebDocument, stats: StepStats) -> WebDocument | None:
        doc.text, counts = replace_pii_counted(doc.text, self.placeholders)
        for kind, n in counts.items():
            stats.note(f"replaced {kind}", n)
        if counts:
            stats.note("documents changed")
        stats.keep()
        return doc


@dataclass
class MinHashStep(Step):
    """Computes the MinHash signature used by :class:`NearDedupStep` (done in the workers)."""

    params: MinHashParams = PAGE_PARAMS
    name: str = "minhash"

    def process(self, doc: WebDocument, stats: StepStats) -> WebDocument | None:
        doc.signature = minhash_signature(doc.text, self.params)
        stats.keep()
        return doc


class ExactDedupStep(Step):
    """Drops documents whose normalised text was seen before (run over all files at once)."""

    name = "exact_dedup"

    def __init__(self) -> None:
        self.index = ExactDeduplicator()

    def process(self, doc: WebDocument, stats: StepStats) -> WebDocument | None:
        if self.index.is_duplicate(doc.text):
            stats.drop("exact_duplicate")
            return None
        stats.keep()
        return doc


class NearDedupStep(Step):
    """Drops near-duplicates with MinHash LSH (uses ``doc.signature`` when already computed)."""

    name = "near_dedup"

    def __init__(self, params: MinHashParams = PAGE_PARAMS) -> None:
        self.index = NearDeduplicator(params)

    def process(self, doc: WebDocument, stats: StepStats) -> WebDocument | None:
        if self.index.is_duplicate(doc.text, doc.signature):
            stats.drop("near_duplicate")
            return None
        stats.keep()
        return doc
