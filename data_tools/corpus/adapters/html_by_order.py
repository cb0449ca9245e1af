"""HTML books translated paragraph for paragraph (debian-reference, maint-guide) -> pairs.

Both pages are cut into leaf text blocks (``p``, headings, list items, table cells, ...). When the
two pages have the same sequence of block tags, blocks pair up in order. Otherwise the pages are cut
into sections (the nearest enclosing ``div``/``section`` carrying an ``id`` or a named anchor) and
sections whose tag sequences agree pair up; the rest are dropped and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lxml.html
from lxml import etree

from data_tools.corpus.records import CorpusError, Pair, Script
from data_tools.corpus.textutil import squash_ws
from data_tools.stats import Stats

_UTF8 = lxml.html.HTMLParser(encoding="utf-8")  # the packaged help and books are UTF-8
STEP = "adapter.html_by_order"
BLOCK_TAGS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "td", "th", "dt", "dd", "caption", "title")
_SKIP_TAGS = ("script", "style", "pre")


def _section_key(el: etree._Element) -> str:
    for anc in el.iterancestors():
        if anc.tag in ("div", "section") and anc.get("id"):
            return anc.get("id")
        if anc.tag in ("div", "section"):
            first = anc.find(".//a[@name]")
            if first is not None and anc.get("class", "") in (
                "section",
                "chapter",
                "sect1",
                "sect2",
                "sect3",
                "appendix",
                "preface",
            ):
                return first.get("name")
    return ""


def page_blocks(path: Path | str) -> list[tuple[str, str, str]]:
    """``[(section, tag, text), ...]`` for the leaf blocks of a page (blocks nesting blocks are skipped)."""
    path = Path(path)
    try:
        root = lxml.html.parse(str(path), _UTF8).getroot()
    except (OSError, etree.ParserError) as exc:
        raise CorpusError(f"{path}: cannot parse HTML ({exc})") from exc
    if root is None:
        return []
    for bad in list(root.iter(*_SKIP_TAGS)):
        bad.drop_tree()
    out = []
    for el in root.iter(*BLOCK_TAGS):
        if any(d is not el and d.tag in BLOCK_TAGS for d in el.iter()):
            continue
        out.append((_section_key(el), el.tag, squash_ws(el.text_content())))
    return out


def _align(
    en: list[tuple[str, str, str]], zh: list[tuple[str, str, str]], tally: Stats
) -> Iterator[tuple[str, str, str]]:
    if [b[1] for b in en] == [b[1] for b in zh]:
        tally.note(STEP, "pages_aligned_whole")
        for (sec, _, e), (_, _, z) in zip(en, zh, strict=True):
            yield sec, e, z
        return
    tally.note(STEP, "pages_aligned_by_section")

    def group(blocks: list[tuple[str, str, str]]) -> dict[str, list[tuple[str, str, str]]]:
        g: dict[str, list[tuple[str, str, str]]] = {}
        for b in blocks:
            g.setdefault(b[0], []).append(b)
        return g

    ge, gz = group(en), group(zh)
    for sec, eblocks in ge.items():
        zblocks = gz.get(sec)
        if not sec or zblocks is None or [b[1] for b in eblocks] != [b[1] for b in zblocks]:
            tally.drop(STEP, "section_not_aligned", len(eblocks))
            continue
        for (_, _, e), (_, _, z) in zip(eblocks, zblocks, strict=True):
            yield sec, e, z


def read_html_by_order(
    en_root: Path | str,
    zh_root: Path | str,
    source: str,
    en_glob: str,
    rename: tuple[str, str],
    script: Script = "hant",
    tally: Stats | None = None,
) -> Iterator[Pair]:
    """Pair the pages ``en_root/en_glob`` with their translations.

    A page's translation is named by replacing ``rename[0]`` with ``rename[1]`` in its path.
    """
    en_root, zh_root = Path(en_root), Path(zh_root)
    tally = tally if tally is not None else Stats()
    en_pages = sorted(en_root.glob(en_glob))
    if not en_pages:
        raise CorpusError(f"{en_root}/{en_glob}: no English pages found")
    for en_path in en_pages:
        rel = en_path.relative_to(en_root)
        zh_path = zh_root / str(rel).replace(rename[0], rename[1])
        if not zh_path.is_file():
            tally.drop(STEP, "page_missing_in_zh")
            continue
        for i, (sec, e, z) in enumerate(_align(page_blocks(en_path), page_blocks(zh_path), tally)):
            if not e or not z:
                tally.drop(STEP, "empty")
                continue
            tally.keep(STEP)
            yield Pair(en=e, zh=z, source=source, origin=f"{rel}#{sec or i}", script=script)
