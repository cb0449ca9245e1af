"""MediaWiki-style i18n message files (``en.json`` next to ``zh-hant.json``) -> pairs.

Keys starting with ``@`` (metadata) are skipped; a message present in both files becomes a pair.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from data_tools.corpus.records import CorpusError, Pair, Script
from data_tools.stats import Stats

STEP = "adapter.i18n_json"


def load_messages(path: Path | str) -> dict[str, str]:
    """Read one message file; a syntax error is reported with its file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: i18n JSON file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 ({exc})") from exc
    if not isinstance(data, dict):
        raise CorpusError(f"{path}:1: expected a JSON object of messages, got {type(data).__name__}")
    return {k: v for k, v in data.items() if not k.startswith("@") and isinstance(v, str)}


def read_i18n_json(
    en_path: Path | str, zh_path: Path | str, source: str, script: Script = "hant", tally: Stats | None = None
) -> Iterator[Pair]:
    """Yield pairs for the message keys translated in ``zh_path``, in key order."""
    tally = tally if tally is not None else Stats()
    en, zh = load_messages(en_path), load_messages(zh_path)
    tally.drop(STEP, "untranslated", len(en.keys() - zh.keys()))
    name = Path(zh_path).parent.name + "/" + Path(zh_path).name
    for key in sorted(en.keys() & zh.keys()):
        if not en[key].strip() or not zh[key].strip():
            tally.drop(STEP, "empty")
            continue
        tally.keep(STEP)
        yield Pair(en=en[key], zh=zh[key], source=source, origin=f"{name}:{key}", script=script)


def read_i18n_tree(
    root: Path | str, source: str, zh_name: str = "zh-hant.json", script: Script = "hant", tally: Stats | None = None
) -> Iterator[Pair]:
    """Every directory under ``root`` holding both ``en.json`` and ``zh_name``, in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: i18n tree not found")
    for zh_path in sorted(root.rglob(zh_name)):
        en_path = zh_path.with_name("en.json")
        if en_path.is_file():
            yield from read_i18n_json(en_path, zh_path, source, script=script, tally=tally)
