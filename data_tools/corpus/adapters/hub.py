"""Hub datasets through :func:`datasets.load_dataset` (OPUS-100 en-zh, WMT17 zh-en, UN PC, ...).

For users with a network; the offline build does not use them. ``path`` is anything
``load_dataset`` takes: a Hub id (``"Helsinki-NLP/opus-100"`` with ``name="en-zh"``), or a builder
name (``"parquet"``, ``"json"``) with ``data_files`` -- which is how the tests run it on local files.
Fields are dotted paths into a row, so the OPUS/WMT layout ``{"translation": {"en": .., "zh": ..}}``
is ``en_field="translation.en"``, ``zh_field="translation.zh"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from data_tools.corpus.records import CorpusError, Doc, Pair, Script
from data_tools.stats import Stats

STEP = "adapter.hub"


def _get(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _load(path: str, name: str | None, split: str, data_files: Any, streaming: bool):
    import datasets

    try:
        return datasets.load_dataset(path, name, split=split, data_files=data_files, streaming=streaming)
    except Exception as exc:  # network, missing files, schema errors: say which dataset failed
        raise CorpusError(f"{path}{'/' + name if name else ''} [{split}]: cannot load dataset ({exc})") from exc


def read_hub_parallel(
    path: str,
    source: str,
    name: str | None = None,
    split: str = "train",
    data_files: Any = None,
    en_field: str = "translation.en",
    zh_field: str = "translation.zh",
    script: Script = "hans",
    limit: int | None = None,
    streaming: bool = False,
    tally: Stats | None = None,
) -> Iterator[Pair]:
    """Yield pairs from a parallel dataset; rows missing either field are dropped and counted."""
    tally = tally if tally is not None else Stats()
    ds = _load(path, name, split, data_files, streaming)
    for i, row in enumerate(ds):
        if limit is not None and i >= limit:
            break
        en, zh = _get(row, en_field), _get(row, zh_field)
        if not isinstance(en, str) or not isinstance(zh, str) or not en.strip() or not zh.strip():
            tally.drop(STEP, "missing_field")
            continue
        tally.keep(STEP)
        yield Pair(en=en, zh=zh, source=source, origin=f"{split}:{i}", script=script)


def read_hub_text(
    path: str,
    source: str,
    lang: str,
    name: str | None = None,
    split: str = "train",
    data_files: Any = None,
    text_field: str = "text",
    limit: int | None = None,
    streaming: bool = False,
    tally: Stats | None = None,
) -> Iterator[Doc]:
    """Yield documents from a monolingual text dataset (C4, Wikipedia dumps, ...)."""
    tally = tally if tally is not None else Stats()
    ds = _load(path, name, split, data_files, streaming)
    for i, row in enumerate(ds):
        if limit is not None and i >= limit:
            break
        text = _get(row, text_field)
        if not isinstance(text, str) or not text.strip():
            tally.drop(STEP, "missing_field")
            continue
        tally.keep(STEP)
        yield Doc(text=text.strip(), source=source, lang=lang, origin=f"{split}:{i}")
