"""The web pipeline's steps as datatrove blocks, for datatrove's executors (local, Slurm, Ray).

Every block calls the same function as the plain pipeline, and reports its drop reasons
through datatrove's stats (``dropped_<reason>``). Example, one machine::

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.writers import JsonlWriter
    from data_tools.web.datatrove_steps import web_pipeline

    LocalPipelineExecutor(
        pipeline=[*web_pipeline("crawl/warcs/"), JsonlWriter("out/web")],
        tasks=8, logging_dir="logs/web",
    ).run()

At Common Crawl scale swap :class:`ExactDedupFilter` / :class:`NearDedupFilter` (they hold one
task's documents in memory) for datatrove's multi-stage ``MinhashDedup*`` blocks, which
de-duplicate across tasks.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.formatters.base import BaseFormatter
from datatrove.pipeline.readers.base import BaseDiskReader

from ..stats import StepStats, reason_tag
from .clean import Normalization, clean_text
from .dedup import PAGE_PARAMS, ExactDeduplicator, MinHashParams, NearDeduplicator
from .extract import Extractor, decode_html, html_to_text
from .filters import (
    BadWordsFilter,
    C4QualityFilter,
    DocumentFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from .langid import DEFAULT_THRESHOLD, detect_language
from .pii import replace_pii_counted
from .read import MAX_PAYLOAD_BYTES, read_html_pages


def _report(step: PipelineStep, stats: StepStats) -> None:
    """Copy our drop reasons and notes into a datatrove step's stats."""
    for reason, n in stats.dropped.items():
        step.stat_update(f"dropped_{reason}", value=n)
    for key, n in stats.notes.items():
        step.stat_update(key, value=n)


class WarcHtmlReader(BaseDiskReader):
    """Reads HTML responses from WARC/ARC files with :func:`read_html_pages`.

    Each document's text is the decoded HTML; its metadata has ``url``, ``warc``, ``date`` and
    the ``encoding`` used. Skipped records are counted as ``dropped_<reason>``.
    """

    name = "🕸 WARC HTML pages"

    def __init__(
        self,
        data_folder: Any,
        *,
        glob_pattern: str | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        limit: int = -1,
        file_progress: bool = False,
        doc_progress: bool = False,
    ) -> None:
        super().__init__(
            data_folder,
            limit=limit,
            file_progress=file_progress,
            doc_progress=doc_progress,
            glob_pattern=glob_pattern,
        )
        self.max_payload_bytes = max_payload_bytes

    def read_file(self, filepath: str) -> DocumentsPipeline:
        stats = StepStats("read")
        name = PurePath(filepath).name
        with self.data_folder.open(filepath, "rb", compression=None) as fh:
            for i, page in enumerate(read_html_pages(fh, stats, name=name, max_payload_bytes=self.max_payload_bytes)):
                with self.track_time():
                    html, encoding = decode_html(page.payload, page.http_charset)
                    document = self.get_document_from_dict(
                        {
                            "text": html,
                            "id": page.record_id,
                            "url": page.url,
                            "warc": name,
                            "date": page.date,
                            "encoding": encoding,
                        },
                        filepath,
                        i,
                    )
                if document is not None:
                    yield document
        _report(self, stats)


class HtmlToText(PipelineStep):
    """Main-content extraction with :func:`html_to_text` (resiliparse or trafilatura)."""

    name = "🗞 HTML to text"
    type = "🛢 - EXTRAC"

    def __init__(self, extractor: Extractor = "resiliparse") -> None:
        super().__init__()
        self.extractor = extractor

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                text = html_to_text(doc.text, self.extractor)
            if not text:
                self.stat_update("dropped", "dropped_no_text_extracted")
                continue
            doc.text = text
            self.stat_update("forwarded")
            yield doc


class CleanText(BaseFormatter):
    """:func:`clean_text`: ftfy repair, Unicode normalisation, whitespace and control characters."""

    name = "🧽 Clean text"

    def __init__(self, normalization: Normalization = "NFC") -> None:
        super().__init__()
        self.normalization = normalization

    def format(self, text: str) -> str:
        return clean_text(text, normalization=self.normalization)


class ReplacePII(BaseFormatter):
    """:func:`replace_pii`: e-mails, phones, IPs, SSNs, card numbers -> placeholders."""

    name = "🕵 Replace PII"

    def __init__(self, placeholders: dict[str, str] | None = None) -> None:
        super().__init__()
        self.placeholders = placeholders

    def format(self, text: str) -> str:
        text, counts = replace_pii_counted(text, self.placeholders)
        for kind, n in counts.items():
            self.stat_update(f"replaced_{kind}", value=n)
        return text


class WebLanguageFilter(BaseFilter):
    """fastText (bundled lite model) language ID.

    Sets ``metadata["language"]`` and ``metadata["language_score"]``, keeps ``languages`` scoring at least
    ``threshold``.
    """

    name = "🌍 Language ID (fastText lite)"

    def __init__(self, languages: tuple[str, ...] | None = ("en", "zh"), threshold: float = DEFAULT_THRESHOLD) -> None:
        super().__init__()
        self.languages = languages
        self.threshold = threshold

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        lang, score = detect_language(doc.text)
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = score
        if self.languages is not None and lang not in self.languages:
            return False, "language_not_kept"
        if score < self.threshold:
            return False, reason_tag(lang, "score_below_threshold")
        return True


class QualityRuleFilter(BaseFilter):
    """Run one of this package's :class:`DocumentFilter` rules on each document.

    The rule runs in the document's ``metadata["language"]``; rules that edit text (C4) update ``doc.text``.
    """

    def __init__(self, rule: DocumentFilter) -> None:
        self.rule = rule
        self.name = f"🧹 {rule.name}"  # before super().__init__(), which names the stats
        super().__init__()

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        result = self.rule.apply(doc.text, doc.metadata.get("language") or "en")
        for key, n in result.notes.items():
            self.stat_update(key, value=n)
        if result.reason is not None:
            return False, result.reason
        if result.text is not None:
            doc.text = result.text
        return True


class GopherRepetition(QualityRuleFilter):
    """:class:`GopherRepetitionFilter` as a datatrove filter (keyword arguments = thresholds)."""

    def __init__(self, **thresholds: Any) -> None:
        super().__init__(GopherRepetitionFilter(**thresholds))


class GopherQuality(QualityRuleFilter):
    """:class:`GopherQualityFilter` as a datatrove filter (keyword arguments = thresholds)."""

    def __init__(self, **thresholds: Any) -> None:
        super().__init__(GopherQualityFilter(**thresholds))


class FineWebQuality(QualityRuleFilter):
    """:class:`FineWebQualityFilter` as a datatrove filter (keyword arguments = thresholds)."""

    def __init__(self, **thresholds: Any) -> None:
        super().__init__(FineWebQualityFilter(**thresholds))


class C4Quality(QualityRuleFilter):
    """:class:`C4QualityFilter` as a datatrove filter (keyword arguments = thresholds)."""

    def __init__(self, **thresholds: Any) -> None:
        super().__init__(C4QualityFilter(**thresholds))


class BadWords(QualityRuleFilter):
    """:class:`BadWordsFilter` as a datatrove filter (keyword arguments = options)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(BadWordsFilter(**options))


class ExactDedupFilter(BaseFilter):
    """Drops documents whose normalised text this task has already seen."""

    name = "🫂 Exact dedup (in memory)"

    def __init__(self) -> None:
        super().__init__()
        self.index = ExactDeduplicator()

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return (False, "exact_duplicate") if self.index.is_duplicate(doc.text) else True


class NearDedupFilter(BaseFilter):
    """Drops near-duplicates of documents this task has already seen (MinHash LSH)."""

    name = "🫂 MinHash near dedup (in memory)"

    def __init__(self, params: MinHashParams = PAGE_PARAMS) -> None:
        super().__init__()
        self.params = params
        self.index = NearDeduplicator(params)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return (False, "near_duplicate") if self.index.is_duplicate(doc.text) else True


def web_pipeline(
    data_folder: Any,
    *,
    glob_pattern: str | None = None,
    extractor: Extractor = "resiliparse",
    languages: tuple[str, ...] | None = ("en", "zh"),
    lang_threshold: float = DEFAULT_THRESHOLD,
    normalization: Normalization = "NFC",
    dedup: bool = True,
) -> list[PipelineStep]:
    """The same stages as :func:`data_tools.web.run_pipeline`, as a list of datatrove blocks.

    Add a writer (e.g. ``JsonlWriter``) at the end.
    """
    steps: list[PipelineStep] = [
        WarcHtmlReader(data_folder, glob_pattern=glob_pattern),
        HtmlToText(extractor),
        CleanText(normalization),
        WebLanguageFilter(languages, lang_threshold),
        GopherRepetition(),
        GopherQuality(),
        FineWebQuality(),
        C4Quality(),
        BadWords(),
        ReplacePII(),
    ]
    if dedup:
        steps += [ExactDedupFilter(), NearDedupFilter()]
    return steps
