"""gettext catalogs (``.mo`` and ``.po``) -> pairs, read with :mod:`polib`.

The English side is ``msgid`` (``msgid_plural`` for plural entries: Chinese has a single plural
form, which translates the general, plural wording); the Chinese side is ``msgstr``. Entries with a
``msgctxt`` are kept (the context only disambiguates the English). Skipped and counted: the header,
untranslated, fuzzy and obsolete entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import polib

from data_tools.corpus.records import CorpusError, Pair, Script
from data_tools.stats import Stats

STEP = "adapter.gettext"


def _load(path: Path) -> polib._BaseFile:
    if not path.is_file():
        raise CorpusError(f"{path}: gettext catalog not found")
    try:
        if path.suffix == ".mo":
            return polib.mofile(str(path))
        return polib.pofile(str(path), wrapwidth=0)
    except Exception as exc:  # polib raises OSError / ValueError / struct.error on damaged files
        raise CorpusError(f"{path}: not a valid gettext {path.suffix} catalog ({exc})") from exc


def read_catalog(path: Path | str, source: str, script: Script = "hant", tally: Stats | None = None) -> Iterator[Pair]:
    """Yield the translated entries of one ``.mo``/``.po`` file as pairs (see module docstring)."""
    path = Path(path)
    tally = tally if tally is not None else Stats()
    catalog = _load(path)
    for index, entry in enumerate(catalog):
        if not entry.msgid:
            tally.drop(STEP, "header")
            continue
        if entry.obsolete:
            tally.drop(STEP, "obsolete")
            continue
        if "fuzzy" in entry.flags:
            tally.drop(STEP, "fuzzy")
            continue
        if entry.msgid_plural:
            forms = [entry.msgstr_plural[k] for k in sorted(entry.msgstr_plural)]
            zh = next((f for f in forms if f), "")
            en = entry.msgid_plural
            tally.note(STEP, "plural_entries")
        else:
            zh, en = entry.msgstr, entry.msgid
        if not zh:
            tally.drop(STEP, "untranslated")
            continue
        if entry.msgctxt:
            tally.note(STEP, "with_msgctxt")
        where = f"line {entry.linenum}" if getattr(entry, "linenum", None) else f"entry {index}"
        tally.keep(STEP)
        yield Pair(en=en, zh=zh, source=source, origin=f"{path.name}:{where}", script=script)


def read_catalogs(
    paths: Iterable[Path | str], source: str, script: Script = "hant", tally: Stats | None = None
) -> Iterator[Pair]:
    """:func:`read_catalog` over several files, in sorted path order."""
    for path in sorted(Path(p) for p in paths):
        yield from read_catalog(path, source, script=script, tally=tally)
