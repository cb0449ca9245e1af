"""HTML page trees whose translations keep the element ids (LibreOffice help) -> pairs.

For every English page under ``en_root`` the page at the same relative path under ``zh_root`` is
read; text-bearing elements whose ``id`` matches ``id_pattern`` and that hold no other such element
are matched by (id, occurrence) -- ids repeat inside a page (e.g. every "Syntax" heading).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import lxml.html
from lxml import etree

from data_tools.corpus.records import CorpusError, Pair, Script
from data_tools.corpus.textutil import squash_ws
from data_tools.stats import Stats

_UTF8 = lxml.html.HTMLParser(encoding="utf-8")  # the packaged help and books are UTF-8
STEP = "adapter.html_by_id"
_SKIP_TAGS = {"script", "style", "noscript"}


def _parse(path: Path) -> etree._ElementTree:
    try:
        return lxml.html.parse(str(path), _UTF8)
    except (OSError, etree.ParserError) as exc:
        raise CorpusError(f"{path}: cannot parse HTML ({exc})") from exc


def page_segments(path: Path | str, id_pattern: str = r"^(par|hd)_id") -> dict[tuple[str, int], str]:
    """``{(id, occurrence): text}`` for the leaf elements of one page whose id matches ``id_pattern``."""
    path = Path(path)
    pattern = re.compile(id_pattern)
    tree = _parse(path)
    root = tree.getroot()
    if root is None:
        return {}
    # scripts, and the macOS variant of system-dependent text (LibreOffice keeps both the macOS and
    # the default wording in a "switchinline" span; only the default one is kept)
    for bad in [
        e
        for e in root.iter()
        if isinstance(e.tag, str) and (e.tag in _SKIP_TAGS or "MAC" in (e.get("class") or "").split())
    ]:
        if bad.getparent() is not None:
            bad.drop_tree()
    out: dict[tuple[str, int], str] = {}
    seen: dict[str, int] = {}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        el_id = el.get("id")
        if not el_id or not pattern.search(el_id):
            continue
        if any(d is not el and d.get("id") and pattern.search(d.get("id")) for d in el.iter()):
            continue  # a container: its children are segments of their own
        text = squash_ws(el.text_content())
        n = seen.get(el_id, 0)
        seen[el_id] = n + 1
        if text:
            out[(el_id, n)] = text
    return out


def read_html_by_id(
    en_root: Path | str,
    zh_root: Path | str,
    source: str,
    glob: str = "**/*.html",
    id_pattern: str = r"^(par|hd)_id",
    script: Script = "hant",
    tally: Stats | None = None,
) -> Iterator[Pair]:
    """Yield (English, Chinese) segment pairs of every page present in both trees."""
    en_root, zh_root = Path(en_root), Path(zh_root)
    tally = tally if tally is not None else Stats()
    if not en_root.is_dir() or not zh_root.is_dir():
        raise CorpusError(f"{en_root if not en_root.is_dir() else zh_root}: HTML tree not found")
    for en_path in sorted(en_root.glob(glob)):
        rel = en_path.relative_to(en_root)
        zh_path = zh_root / rel
        if not zh_path.is_file():
            tally.drop(STEP, "page_missing_in_zh")
            continue
        tally.note(STEP, "pages")
        en_seg = page_segments(en_path, id_pattern)
        zh_seg = page_segments(zh_path, id_pattern)
        for _missing in en_seg.keys() - zh_seg.keys():
            tally.drop(STEP, "id_missing_in_zh")
        for key in sorted(en_seg.keys() & zh_seg.keys()):
            tally.keep(STEP)
            yield Pair(en=en_seg[key], zh=zh_seg[key], source=source, origin=f"{rel}#{key[0]}", script=script)
