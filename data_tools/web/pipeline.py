"""The whole web-text pipeline: WARC files in, clean de-duplicated JSON lines out.

::

    read ─► extract ─► clean ─► language ─► gopher_repetition ─► gopher_quality
         ─► fineweb_quality ─► c4_quality ─► badwords ─► pii ─► minhash      (per file, in workers)
         ─► exact_dedup ─► near_dedup ─► output                               (all files, in order)

Files are processed in parallel (one process per file at a time); the de-duplication stages
then see all documents in input-file order, so the output does not depend on ``workers``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..stats import Stats, StepStats, reason_tag
from .clean import Normalization
from .dedup import PAGE_PARAMS, MinHashParams
from .extract import Extractor
from .filters import DocumentFilter, default_filters
from .langid import DEFAULT_THRESHOLD
from .pii import check_placeholders
from .read import MAX_PAYLOAD_BYTES, read_html_pages
from .steps import (
    CleanStep,
    ExactDedupStep,
    ExtractStep,
    FilterStep,
    LanguageStep,
    MinHashStep,
    NearDedupStep,
    PIIStep,
    Step,
    WebDocument,
)

logger = logging.getLogger(__name__)


@dataclass
class WebPipelineConfig:
    """Everything that decides what the pipeline keeps. Defaults are the published values.

    Attributes:
        extractor: ``"resiliparse"`` or ``"trafilatura"``.
        langs: languages to keep (fastText codes); ``None`` keeps all.
        lang_threshold: minimum language-ID score.
        normalization: Unicode normal form applied by the clean step.
        filters: quality filters, in the order they run.
        replace_pii: run the PII step.
        exact_dedup, near_dedup: run the de-duplication stages.
        minhash: shingling / LSH parameters for near-duplicates.
        max_payload_bytes: larger HTTP bodies are skipped when reading.
        record_rejects: keep a record (url, stage, reason, text) of every document dropped
            after reading, for :func:`run_pipeline`'s ``on_reject``.
        max_records: read at most this many WARC records over all inputs (HW1's ``--num_records``);
            the files are then read one after another.
        pii_placeholders: replacements per PII kind (``ssn``, ``email``, ...) instead of the defaults.
    """

    extractor: Extractor = "resiliparse"
    langs: tuple[str, ...] | None = ("en", "zh")
    lang_threshold: float = DEFAULT_THRESHOLD
    normalization: Normalization = "NFC"
    filters: list[DocumentFilter] = field(default_factory=default_filters)
    replace_pii: bool = True
    exact_dedup: bool = True
    near_dedup: bool = True
    minhash: MinHashParams = PAGE_PARAMS
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    record_rejects: bool = False
    max_records: int | None = None
    pii_placeholders: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.max_records is not None and self.max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {self.max_records}")
        if self.pii_placeholders:
            check_placeholders(self.pii_placeholders)

    def document_steps(self) -> list[Step]:
        """The per-document steps after extraction, in order (run in the workers)."""
        steps: list[Step] = [
            CleanStep(normalization=self.normalization),
            LanguageStep(langs=self.langs, threshold=self.lang_threshold),
        ]
        steps += [FilterStep(rule) for rule in self.filters]
        if self.replace_pii:
            steps.append(PIIStep(placeholders=self.pii_placeholders))
        if self.near_dedup:
            steps.append(MinHashStep(self.minhash))
        return steps

    def dedup_steps(self) -> list[Step]:
        """The corpus-wide steps (run once, over all files in order)."""
        steps: list[Step] = []
        if self.exact_dedup:
            steps.append(ExactDedupStep())
        if self.near_dedup:
            steps.append(NearDedupStep(self.minhash))
        return steps


def rejection(doc: WebDocument, stage: str, reason: str | None, max_chars: int = 1000) -> dict[str, Any]:
    """A record of a dropped document, for the optional rejects file."""
    return {
        "url": doc.url,
        "record_id": doc.record_id,
        "warc": doc.warc,
        "stage": stage,
        "reason": reason,
        "lang": doc.lang,
        "text": doc.text[:max_chars],
    }


def _run_steps(
    doc: WebDocument, steps: Sequence[Step], stats: Stats, rejects: list[dict[str, Any]] | None = None
) -> WebDocument | None:
    for step in steps:
        stage = stats.step(step.name)
        start = time.perf_counter()
        out = step.process(doc, stage)
        stage.seconds += time.perf_counter() - start
        if out is None:
            if rejects is not None:
                rejects.append(rejection(doc, step.name, stage.last_reason))
            return None
        doc = out
    return doc


def iter_file_documents(
    path: str | Path, config: WebPipelineConfig, stats: Stats, rejects: list[dict[str, Any]] | None = None
) -> Iterator[WebDocument]:
    """Read one archive and yield the documents that pass every per-document step.

    Documents dropped after reading are appended to ``rejects`` (see :func:`rejection`) when given.
    """
    read_stats = stats.step("read")
    extract = ExtractStep(config.extractor)
    extract_stats = stats.step("extract")
    steps = config.document_steps()
    for step in steps:  # fix the table order even if no document reaches a stage
        stats.step(step.name)
    pages = read_html_pages(
        path, read_stats, max_payload_bytes=config.max_payload_bytes, max_records=config.max_records
    )
    while True:
        start = time.perf_counter()
        page = next(pages, None)
        read_stats.seconds += time.perf_counter() - start
        if page is None:
            return
        start = time.perf_counter()
        try:
            doc = extract.process_page(page, extract_stats)
        except Exception as err:  # a bug or an extractor failure on odd HTML must not stop the run
            logger.warning("%s: record %s (%s): extraction failed: %r", page.warc, page.record_id, page.url, err)
            extract_stats.drop(reason_tag("extraction_error", type(err).__name__))
            doc = None
        extract_stats.seconds += time.perf_counter() - start
        if doc is None:
            if rejects is not None:
                empty = WebDocument(text="", url=page.url, warc=page.warc, record_id=page.record_id, date=page.date)
                rejects.append(rejection(empty, "extract", extract_stats.last_reason))
            continue
        doc = _run_steps(doc, steps, stats, rejects)
        if doc is not None:
            yield doc


@dataclass
class FileResult:
    """What a worker sends back for one input file."""

    path: str
    documents: list[WebDocument]
    stats: Stats
    seconds: float
    rejected: list[dict[str, Any]] = field(default_factory=list)


def process_file(path: str | Path, config: WebPipelineConfig) -> FileResult:
    """Run the per-document steps over one archive (the unit of work of a worker process)."""
    start = time.perf_counter()
    stats = Stats()
    rejects: list[dict[str, Any]] | None = [] if config.record_rejects else None
    docs = list(iter_file_documents(path, config, stats, rejects))
    return FileResult(str(path), docs, stats, time.perf_counter() - start, rejects or [])


def _process_file_star(args: tuple[str, WebPipelineConfig]) -> FileResult:
    return process_file(*args)


def _file_results(
    paths: Sequence[str | Path], config: WebPipelineConfig, workers: int, progress: bool
) -> Iterator[FileResult]:
    """Per-file results in input order, from a process pool when ``workers > 1``."""
    bar = tqdm(total=len(paths), desc="WARC files", unit="file", disable=not progress)
    try:
        if config.max_records is not None:  # a budget over all files: read them in order
            left = config.max_records
            for path in paths:
                if left <= 0:
                    break
                result = process_file(path, replace(config, max_records=left))
                left -= result.stats.steps["read"].seen
                bar.update()
                yield result
        elif workers <= 1 or len(paths) <= 1:
            for path in paths:
                result = process_file(path, config)
                bar.update()
                yield result
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(paths))) as pool:
                for result in pool.map(_process_file_star, [(str(p), config) for p in paths]):
                    bar.update()
                    yield result
    finally:
        bar.close()


@dataclass
class PipelineRun:
    """Result of :func:`run_pipeline`: kept documents, stage counts, and a summary."""

    documents: list[WebDocument]
    stats: Stats
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The stats file's content."""
        return {**self.summary, **self.stats.to_dict()}


def run_pipeline(
    paths: Sequence[str | Path],
    config: WebPipelineConfig | None = None,
    *,
    workers: int = 1,
    progress: bool = False,
    on_document: Callable[[WebDocument], None] | None = None,
    on_reject: Callable[[dict[str, Any]], None] | None = None,
) -> PipelineRun:
    """Run the full pipeline over ``paths`` (WARC/ARC files).

    Kept documents are collected in the returned :class:`PipelineRun`, or, when
    ``on_document`` is given, handed to it one by one instead (for streaming to a file).
    ``on_reject`` receives a record of every document dropped after reading (it turns on
    ``config.record_rejects``). Missing files raise ``FileNotFoundError`` before any work starts.
    """
    config = config or WebPipelineConfig()
    if on_reject is not None and not config.record_rejects:
        config = replace(config, record_rejects=True)
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"input archive(s) not found: {', '.join(missing)}")
    start = time.perf_counter()
    stats = Stats()
    dedup_steps = config.dedup_steps()
    kept: list[WebDocument] = []
    by_lang: Counter = Counter()
    n_kept = n_chars = 0
    for result in _file_results(paths, config, workers, progress):
        stats.merge(result.stats)
        for step in dedup_steps:
            stats.step(step.name)
        rejects: list[dict[str, Any]] | None = list(result.rejected) if on_reject is not None else None
        for doc in result.documents:
            doc = _run_steps(doc, dedup_steps, stats, rejects)
            if doc is None:
                continue
            doc.signature = None
            n_kept += 1
            n_chars += len(doc.text)
            by_lang[doc.lang] += 1
            if on_document is None:
                kept.append(doc)
            else:
                on_document(doc)
        if on_reject is not None and rejects:
            for item in rejects:
                on_reject(item)
    seconds = time.perf_counter() - start
    read = stats.steps.get("read", StepStats("read"))
    summary = {
        "inputs": [str(p) for p in paths],
        "extractor": config.extractor,
        "langs": list(config.langs) if config.langs else None,
        "workers": workers,
        "records_read": read.seen,
        "record_limit": config.max_records,
        "html_responses": read.kept,
        "documents_kept": n_kept,
        "kept_by_language": dict(by_lang.most_common()),
        "characters_kept": n_chars,
        "seconds": round(seconds, 3),
        "html_pages_per_second": round(read.kept / seconds, 2) if seconds > 0 else None,
    }
    return PipelineRun(kept, stats, summary)


def write_jsonl(docs: Iterable[WebDocument], path: str | Path) -> int:
    """Write documents' records (:meth:`WebDocument.to_record`) as JSON lines, complete or not at all.

    The file is written under a temporary name, then renamed; returns how many records were written.
    """
    from minimind_hf.utils.jsonl import write_jsonl as write_records  # here: importing minimind_hf loads transformers

    return write_records(path, (doc.to_record() for doc in docs))
