"""Command line: ``python -m data_tools.web --warc FILES... --output cleaned.jsonl``.

Prints the per-stage table (records read, HTML responses, extracted, dropped by each filter
with reasons, languages, duplicates, kept) and writes it as JSON (``--stats``, default
``<output>.stats.json``), then one summary line: ``records processed N, passed M``.
COMP4901B HW1's run: ``--limit N`` (its ``--num_records``), ``--text-output FILE`` (one document per
line), ``--pii-placeholder ssn=XXX-XX-XXXX``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from minimind_hf.utils.atomic_files import atomic_write, atomic_write_text, check_can_write
from minimind_hf.utils.command_errors import one_line_errors
from minimind_hf.utils.jsonl import jsonl_line

from .dedup import MinHashParams
from .extract import EXTRACTORS
from .filters import FILTER_CLASSES, default_filters
from .pipeline import WebPipelineConfig, run_pipeline
from .steps import WebDocument


def _parse_value(raw: str) -> Any:
    """``--set`` values are JSON (numbers, true/false/null, lists); anything else is a string."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if isinstance(value, list):  # e.g. [[2, 0.2], [3, 0.18]] -> tuple of tuples
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def build_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> WebPipelineConfig:
    """Turn the parsed arguments into a :class:`WebPipelineConfig` (errors go to ``parser.error``)."""
    filters = {f.name: f for f in default_filters()}
    for name in args.disable:
        if name not in filters:
            parser.error(f"--disable {name}: unknown filter; known: {', '.join(FILTER_CLASSES)}")
        del filters[name]
    for item in args.set:
        key, sep, raw = item.partition("=")
        name, dot, option = key.partition(".")
        if not sep or not dot:
            parser.error(f"--set {item!r}: expected FILTER.OPTION=VALUE, e.g. gopher_quality.min_doc_words=30")
        if name not in filters:
            parser.error(f"--set {item!r}: unknown or disabled filter {name!r}; known: {', '.join(filters)}")
        try:
            filters[name] = filters[name].with_options(**{option: _parse_value(raw)})
        except TypeError as err:
            parser.error(f"--set {item!r}: {err}")
    langs = None if args.langs in ("", "all") else tuple(x.strip() for x in args.langs.split(",") if x.strip())
    try:
        minhash = MinHashParams(
            shingle_size=args.shingle_size, num_perm=args.num_perm, bands=args.bands, rows=args.rows
        )
    except ValueError as err:
        parser.error(str(err))
    placeholders = {}
    for item in args.pii_placeholder:
        kind, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--pii-placeholder {item!r}: expected KIND=TEXT, e.g. ssn=XXX-XX-XXXX")
        placeholders[kind] = value
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")
    try:
        return WebPipelineConfig(
            extractor=args.extractor,
            langs=langs,
            lang_threshold=args.lang_threshold,
            normalization=args.normalization,
            filters=list(filters.values()),
            replace_pii=not args.no_pii,
            exact_dedup=not args.no_dedup,
            near_dedup=not (args.no_dedup or args.no_near_dedup),
            minhash=minhash,
            max_records=args.limit,
            pii_placeholders=placeholders or None,
        )
    except ValueError as err:
        parser.error(str(err))


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m data_tools.web``."""
    p = argparse.ArgumentParser(
        prog="python -m data_tools.web",
        description="WARC/ARC -> clean, PII-free, quality-filtered, de-duplicated text (JSON lines).",
    )
    p.add_argument(
        "--warc",
        nargs="+",
        required=True,
        type=Path,
        metavar="FILE",
        help="WARC or ARC files (.warc, .warc.gz, .arc, .arc.gz)",
    )
    p.add_argument("--output", required=True, type=Path, help="output JSON-lines file")
    p.add_argument(
        "--text-output",
        type=Path,
        help="also write the kept documents as plain text, one per line (line breaks become spaces)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="read at most N WARC records over all inputs (HW1's --num_records)",
    )
    p.add_argument(
        "--pii-placeholder",
        action="append",
        default=[],
        metavar="KIND=TEXT",
        help="replacement for one PII kind (email, phone, ip, ssn, credit_card), e.g. ssn=XXX-XX-XXXX",
    )
    p.add_argument("--stats", type=Path, help="stage table as JSON (default: OUTPUT.stats.json)")
    p.add_argument(
        "--rejected", type=Path, help="also write every document dropped after reading (url, stage, reason, text) here"
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes, one file each at a time (default 1)")
    p.add_argument("--langs", default="en,zh", help="languages to keep, comma-separated, or 'all' (default en,zh)")
    p.add_argument(
        "--lang-threshold",
        type=float,
        default=WebPipelineConfig.lang_threshold,
        help="minimum language-ID score (default %(default)s)",
    )
    p.add_argument("--extractor", choices=EXTRACTORS, default="resiliparse")
    p.add_argument("--normalization", choices=("NFC", "NFKC"), default="NFC")
    p.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="FILTER",
        help=f"skip a quality filter (repeatable): {', '.join(FILTER_CLASSES)}",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FILTER.OPTION=VALUE",
        help="override a filter threshold, e.g. --set gopher_quality.min_doc_words=30",
    )
    p.add_argument("--no-pii", action="store_true", help="do not replace personal data")
    p.add_argument("--no-dedup", action="store_true", help="skip exact and near de-duplication")
    p.add_argument("--no-near-dedup", action="store_true", help="skip MinHash near de-duplication")
    p.add_argument("--shingle-size", type=int, default=MinHashParams.shingle_size)
    p.add_argument("--num-perm", type=int, default=MinHashParams.num_perm)
    p.add_argument("--bands", type=int, default=MinHashParams.bands)
    p.add_argument("--rows", type=int, default=MinHashParams.rows)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@one_line_errors("python -m data_tools.web")
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = build_config(args, parser)
    missing = [str(p) for p in args.warc if not p.is_file()]
    if missing:
        parser.error(f"--warc: file(s) not found: {', '.join(missing)}")
    stats_path = args.stats or args.output.with_name(args.output.name + ".stats.json")
    for path in (args.output, stats_path, args.text_output, args.rejected):
        if path is not None:
            check_can_write(path)  # before reading anything: an unwritable output fails now, in one line

    with ExitStack() as files:
        # temporary names until the run ends: an interrupted run leaves no half-written output in place
        out = files.enter_context(atomic_write(args.output))
        rejected = files.enter_context(atomic_write(args.rejected)) if args.rejected else None
        text_out = files.enter_context(atomic_write(args.text_output)) if args.text_output else None

        def write(doc: WebDocument) -> None:
            out.write(jsonl_line(doc.to_record()))
            if text_out is not None:
                text_out.write(" ".join(doc.text.splitlines()) + "\n")

        def write_reject(item: dict[str, Any]) -> None:
            assert rejected is not None
            rejected.write(jsonl_line(item))

        run = run_pipeline(
            args.warc,
            config,
            workers=args.workers,
            progress=not args.no_progress,
            on_document=write,
            on_reject=write_reject if rejected else None,
        )

    stats_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stats_path, json.dumps(run.to_json(), ensure_ascii=False, indent=2) + "\n")
    s = run.summary
    print(run.stats.format_table())
    print()
    langs = ", ".join(f"{k}: {v}" for k, v in s["kept_by_language"].items()) or "none"
    print(
        f"records read {s['records_read']}, HTML responses {s['html_responses']}, "
        f"kept {s['documents_kept']} ({langs}), {s['characters_kept']} characters"
    )
    print(f"{s['seconds']:.2f} s, {s['html_pages_per_second']} HTML pages/s with {args.workers} worker(s)")
    extra = "".join(f" and {p}" for p in (args.text_output, args.rejected) if p)
    print(f"wrote {args.output} and {stats_path}{extra}")
    print(f"records processed {s['records_read']}, passed {s['documents_kept']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
