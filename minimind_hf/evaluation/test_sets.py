"""Test sets for translation: the project's ``{"en", "zh"}`` jsonl, and the public layouts people bring.

:func:`load_test_pairs` takes a local file (``.jsonl`` / ``.json`` / ``.parquet`` / ``.csv``) or a Hub
dataset name (``facebook/flores``, ``wmt/wmt19``, ..., loaded with ``datasets.load_dataset`` for users
with a network), and reads one of these row layouts:

============================================  =====================================================
``{"en": ..., "zh": ...}``                    the project's own (``data/*.test.jsonl``)
``{"translation": {"en": ..., "zh": ...}}``   WMT / OPUS on the Hub (``wmt/wmt19`` config ``zh-en``)
``{"sentence_eng_Latn", "sentence_zho_Hant"}`` FLORES-200 pair configs (``eng_Latn-zho_Hant``); ``zho_Hans``
                                              columns are taken when no ``zho_Hant`` one exists
============================================  =====================================================

References in Simplified script (WMT's ``zh``, FLORES' ``zho_Hans``) are converted to Taiwan
Traditional with OpenCC ``s2twp`` so that they match what the model is asked for; the result says so
(``references_converted``). Rows with an empty side are dropped and counted by reason; a row of an
unknown layout is an error naming the file and line (or record).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

from ..utils.jsonl import read_jsonl

FLORES_EN = "sentence_eng_Latn"
FLORES_ZH = ("sentence_zho_Hant", "sentence_zho_Hans")
LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class TestPairs(NamedTuple):
    """What :func:`load_test_pairs` read: the pairs, the dropped rows by reason, and what was done to them."""

    pairs: list[dict[str, Any]]
    dropped: Counter
    notes: list[str]


def _sides(row: dict[str, Any], where: str) -> tuple[Any, Any, bool]:
    """``(en, zh, zh_is_simplified)`` of a row in any supported layout."""
    if "en" in row and "zh" in row:
        return row["en"], row["zh"], False
    if isinstance(row.get("translation"), dict):
        pair = row["translation"]
        zh_key = next((k for k in ("zh", "zh-TW", "zh_TW", "zh-Hant") if k in pair), None)
        if "en" in pair and zh_key:
            return pair["en"], pair[zh_key], zh_key == "zh"  # WMT/OPUS "zh" is Simplified
    if FLORES_EN in row:
        for key in FLORES_ZH:
            if key in row:
                return row[FLORES_EN], row[key], key.endswith("Hans")
    raise ValueError(
        f"{where}: not a translation pair: expected 'en'/'zh', 'translation': {{'en', 'zh'}} or FLORES "
        f"'{FLORES_EN}'/'{FLORES_ZH[0]}' fields (keys: {sorted(row)})"
    )


def _rows(path_or_name: str, config: str | None, split: str | None):
    """``(where, row)`` for every record: jsonl line by line, other files and Hub datasets via ``datasets``."""
    path = Path(path_or_name)
    if path.suffix == ".jsonl" and path.is_file():
        for line_no, row in read_jsonl(path):
            yield f"{path}:{line_no}", row
        return
    import datasets

    if path.is_file():
        if path.suffix not in LOCAL_FORMATS:
            raise ValueError(f"{path}: unknown test file type; use one of {sorted(LOCAL_FORMATS)}")
        data = datasets.load_dataset(LOCAL_FORMATS[path.suffix], data_files=str(path), split="train")
        where = str(path)
    else:
        if path.suffix in LOCAL_FORMATS or path_or_name.startswith((".", "/", "~")):
            raise FileNotFoundError(f"test file {path_or_name} does not exist")
        try:
            data = datasets.load_dataset(path_or_name, config, split=split)
        except Exception as err:  # offline, unknown name, missing config: say what was asked for
            raise FileNotFoundError(
                f"{path_or_name}: neither a local test file nor a loadable Hub dataset "
                f"(config {config!r}, split {split!r}): {type(err).__name__}: {err}"
            ) from err
        if isinstance(data, datasets.DatasetDict):
            name = next((s for s in ("devtest", "test", "validation", "dev") if s in data), None)
            if name is None:
                raise ValueError(f"{path_or_name}: give a split (--test-split), one of {sorted(data)}")
            data = data[name]
        where = f"{path_or_name}[{config or ''}:{split or data.split}]"
    for index, row in enumerate(data):
        yield f"{where} record {index}", row


def load_test_pairs(
    path_or_name: str | os.PathLike[str],
    limit: int | None = None,
    config: str | None = None,
    split: str | None = None,
) -> TestPairs:
    """The first ``limit`` usable pairs, the dropped rows by reason, and notes on what was converted.

    Each pair keeps an ``id`` (the row's own ``id``, else its place) and its ``source`` if any.
    """
    pairs: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    simplified = 0
    for where, row in _rows(str(path_or_name), config, split):
        if limit is not None and len(pairs) >= limit:
            break
        en, zh, is_simplified = _sides(row, where)
        if not isinstance(en, str) or not isinstance(zh, str):
            raise ValueError(f"{where}: the English and Chinese sides must be strings")
        if not en.strip() or not zh.strip():
            dropped["empty_en_or_zh"] += 1
            continue
        pair = {"id": str(row.get("id", where)), "en": en.strip(), "zh": zh.strip()}
        if "source" in row:
            pair["source"] = row["source"]
        if is_simplified:
            pair["zh_original"] = pair["zh"]
            simplified += 1
        pairs.append(pair)
    notes = []
    if simplified:
        import opencc

        converter = opencc.OpenCC("s2twp")
        for pair in pairs:
            if "zh_original" in pair:
                pair["zh"] = converter.convert(pair["zh_original"])
        notes.append(f"{simplified} Simplified references converted to Taiwan Traditional with OpenCC s2twp")
    return TestPairs(pairs, dropped, notes)
