"""CLDR display names from the Babel sdist (``babel/locale-data/*.dat``) -> pairs.

Each ``.dat`` file is a pickled dict; ``en.dat`` and ``zh_Hant.dat`` share keys such as
``currency_names`` (code -> name), ``territories`` and ``languages``. A code named in both locales
becomes a pair ("Swiss Franc" -> "瑞士法郎"). The files are only unpickled after the build has
verified the sdist's sha256 against ``sources.yaml``, and through a restricted unpickler: Babel's own
classes (plural rules, aliases) become inert placeholders, so neither Babel itself is needed nor
can the file run code.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path

from data_tools.corpus.records import CorpusError, Pair
from data_tools.stats import Stats

STEP = "adapter.cldr"


class _Inert:
    """Stands in for a Babel class found in a locale pickle; keeps whatever state it is given."""

    def __init__(self, *args, **kwargs) -> None:
        self.args = args

    def __setstate__(self, state) -> None:
        self.state = state


_SAFE = {
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("decimal", "Decimal"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "datetime"),
    ("datetime", "timedelta"),
    ("collections", "OrderedDict"),
}


class _LocaleUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "babel" or module.startswith("babel."):
            return _Inert
        if (module, name) in _SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")


def load_locale(path: Path | str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: CLDR locale file not found")
    try:
        with path.open("rb") as fh:
            data = _LocaleUnpickler(fh).load()
    except Exception as exc:  # unpickling errors come in many types
        raise CorpusError(f"{path}: not a Babel locale-data pickle ({exc})") from exc
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: expected a dict of locale data, got {type(data).__name__}")
    return data


def read_cldr(
    en_path: Path | str,
    zh_path: Path | str,
    source: str,
    fields: Iterable[str] = ("currency_names",),
    tally: Stats | None = None,
) -> Iterator[Pair]:
    """Yield (English name, Traditional Chinese name) for every code of ``fields`` named in both files."""
    tally = tally if tally is not None else Stats()
    en, zh = load_locale(en_path), load_locale(zh_path)
    for field in fields:
        en_names, zh_names = en.get(field) or {}, zh.get(field) or {}
        if not en_names:
            raise CorpusError(f"{en_path}: no {field!r} table")
        tally.drop(STEP, f"{field}_missing_in_zh", len(set(en_names) - set(zh_names)))
        for code in sorted(set(en_names) & set(zh_names), key=str):
            e, z = en_names[code], zh_names[code]
            if not isinstance(e, str) or not isinstance(z, str) or e == z:
                tally.drop(STEP, "not_a_name")
                continue
            tally.keep(STEP)
            yield Pair(en=e, zh=z, source=source, origin=f"{field}:{code}", script="hant")
