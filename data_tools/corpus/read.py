"""Mapping a declared source onto its adapter call: ``sources.yaml`` entry -> records."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_tools.corpus import adapters
from data_tools.corpus.records import CorpusError, Doc, Pair
from data_tools.corpus.sources import Source
from data_tools.stats import Stats


def _ref(source: Source, roots: dict[str, Path], ref: Any, key: str) -> Path:
    if not isinstance(ref, dict) or "artefact" not in ref:
        raise CorpusError(f"source {source.name!r}: {key!r} must be a mapping with 'artefact' and 'path'")
    return roots[ref["artefact"]] / ref.get("path", "")


def _files(source: Source, roots: dict[str, Path]) -> list[Path]:
    entries = source.options.get("files")
    if not entries:
        raise CorpusError(f"source {source.name!r}: no 'files' declared")
    out: list[Path] = []
    for entry in entries:
        root = roots[entry["artefact"]]
        matched = sorted(p for p in root.glob(entry["glob"]) if p.is_file())
        if entry.get("exclude"):
            matched = [
                p
                for p in matched
                if not fnmatch.fnmatch(str(p.relative_to(root)), entry["exclude"])
                and not fnmatch.fnmatch(p.name, entry["exclude"])
            ]
        if not matched:
            raise CorpusError(f"source {source.name!r}: no file matches {entry['glob']!r} in {root}")
        out.extend(matched)
    return out


def read_source(source: Source, roots: dict[str, Path], tally: Stats) -> Iterator[Pair | Doc]:
    """Yield the raw records of ``source``; ``roots`` maps artefact names to their extracted roots."""
    o, name, script = source.options, source.name, source.script
    if source.adapter == "gettext":
        yield from adapters.read_catalogs(_files(source, roots), name, script=script, tally=tally)
    elif source.adapter == "html_by_id":
        yield from adapters.read_html_by_id(
            _ref(source, roots, o.get("en"), "en"),
            _ref(source, roots, o.get("zh"), "zh"),
            name,
            glob=o.get("glob", "**/*.html"),
            id_pattern=o.get("id_pattern", r"^(par|hd)_id"),
            script=script,
            tally=tally,
        )
    elif source.adapter == "html_by_order":
        yield from adapters.read_html_by_order(
            _ref(source, roots, o.get("en"), "en"),
            _ref(source, roots, o.get("zh"), "zh"),
            name,
            en_glob=o["en_glob"],
            rename=tuple(o["rename"]),
            script=script,
            tally=tally,
        )
    elif source.adapter == "i18n_json":
        yield from adapters.read_i18n_tree(
            _ref(source, roots, o.get("root"), "root"),
            name,
            zh_name=o.get("zh_name", "zh-hant.json"),
            script=script,
            tally=tally,
        )
    elif source.adapter == "cldr":
        yield from adapters.read_cldr(
            _ref(source, roots, o.get("en"), "en"),
            _ref(source, roots, o.get("zh"), "zh"),
            name,
            fields=o.get("fields", ["currency_names"]),
            tally=tally,
        )
    elif source.adapter == "gnucash_accounts":
        yield from adapters.read_account_templates(
            _ref(source, roots, o.get("en"), "en"),
            _ref(source, roots, o.get("zh"), "zh"),
            name,
            script=script,
            tally=tally,
        )
    elif source.adapter == "text":
        lang = "en" if source.role == "mono_en" else "zh"
        yield from adapters.read_text_files(
            _files(source, roots),
            name,
            lang,
            fmt=o.get("fmt", "plain"),
            max_chars=o.get("max_chars", 4000),
            min_par_chars=o.get("min_par_chars", 20),
            tally=tally,
        )
    elif source.adapter == "hub":
        if source.role in ("mono_en", "mono_zh"):
            yield from adapters.read_hub_text(
                o["path"],
                name,
                "en" if source.role == "mono_en" else "zh",
                name=o.get("config"),
                split=o.get("split", "train"),
                data_files=o.get("data_files"),
                text_field=o.get("text_field", "text"),
                limit=o.get("limit"),
                tally=tally,
            )
        else:
            yield from adapters.read_hub_parallel(
                o["path"],
                name,
                name=o.get("config"),
                split=o.get("split", "train"),
                data_files=o.get("data_files"),
                en_field=o.get("en_field", "translation.en"),
                zh_field=o.get("zh_field", "translation.zh"),
                script=script,
                limit=o.get("limit"),
                tally=tally,
            )
    else:  # load_sources already rejects unknown adapters
        raise CorpusError(f"source {name!r}: unknown adapter {source.adapter!r}")
