"""Script check for Chinese output: is it Traditional, or does Simplified leak through?

A character is **Simplified-only** when OpenCC's Simplified->Traditional mapping (``s2t``) changes it,
the reverse mapping (``t2s``) leaves it alone, *and* it is a Traditional form neither in OpenCC's
own candidates nor in Taiwan usage. Those last two conditions matter:

* OpenCC's character table lists one-to-many mappings such as ``台 -> 臺 檯 颱 台`` or
  ``后 -> 後 后``, where the Simplified form is also a standard Traditional character (台灣, 皇后).
  The candidate lists are read from OpenCC's ``STCharacters`` dictionary, exported with the
  ``opencc_dict`` tool that the ``opencc`` wheel ships.
* OpenCC's Traditional is its own standard (``群 -> 羣``, ``床 -> 牀``); Taiwan writes 群 and 床, so
  a character that ``s2tw`` (Simplified -> Taiwan Traditional) leaves unchanged is not flagged.

Where ``opencc_dict`` cannot be found the check falls back to the converter-only rule and says so in
its result (``method``), since it then over-counts the shared characters of the first point.

The share of CJK characters is measured against alphabetic characters (``str.isalpha``): Han
ideographs and Latin letters count, digits, punctuation and spaces do not. An output that copies
the English source scores 0, a fully Chinese one 1.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import opencc

# Han ideograph blocks: URO, extension A, extensions B-F (+ compatibility supplement), G-H, and the
# BMP compatibility ideographs.
_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2FA1F),
    (0x30000, 0x323AF),
)

METHOD_DICTIONARY = "opencc-dictionary"
METHOD_CONVERTERS = "opencc-converters"


def is_cjk(char: str) -> bool:
    """True for a Han ideograph (any CJK Unified / Compatibility Ideographs block)."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def _opencc_dir() -> Path:
    return Path(opencc.__file__).resolve().parent


def _find_dictionary_tool() -> tuple[Path, Path] | None:
    """Locate ``opencc_dict`` and ``STCharacters.ocd2`` (the wheel's copies first, then the system's)."""
    base = _opencc_dir() / "clib"
    tools = [base / "bin" / "opencc_dict"]
    system_tool = shutil.which("opencc_dict")
    if system_tool:
        tools.append(Path(system_tool))
    dictionaries = [base / "share" / "opencc" / "STCharacters.ocd2", Path("/usr/share/opencc/STCharacters.ocd2")]
    tool = next((t for t in tools if t.is_file()), None)
    dictionary = next((d for d in dictionaries if d.is_file()), None)
    if tool is None or dictionary is None:
        return None
    return tool, dictionary


def _read_character_table() -> dict[str, list[str]] | None:
    """OpenCC's Simplified->Traditional character table ``{simplified: [traditional candidates]}``."""
    found = _find_dictionary_tool()
    if found is None:
        return None
    tool, dictionary = found
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "STCharacters.txt"
        try:
            subprocess.run(
                [str(tool), "-i", str(dictionary), "-o", str(out), "-f", "ocd2", "-t", "text"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            lines = out.read_text(encoding="utf-8").splitlines()
        except (OSError, subprocess.SubprocessError) as err:
            warnings.warn(f"could not export {dictionary} with {tool}: {err}", stacklevel=3)
            return None
    table: dict[str, list[str]] = {}
    for line in lines:
        key, _, values = line.partition("\t")
        if len(key) == 1 and values:
            table[key] = values.split()
    return table or None


def _single_char_map(converter: opencc.OpenCC, chars: list[str]) -> dict[str, str]:
    """Convert characters one by one (in one call: newline-separated, so no phrase spans two)."""
    converted = converter.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # a conversion rule produced or ate a newline: go slowly
        converted = [converter.convert(c) for c in chars]
    return dict(zip(chars, converted, strict=True))


@functools.lru_cache(maxsize=1)
def simplified_only_characters() -> tuple[frozenset[str], str]:
    """The set of Simplified-only characters and the method used to build it (see module doc)."""
    s2t, s2tw, t2s = opencc.OpenCC("s2t"), opencc.OpenCC("s2tw"), opencc.OpenCC("t2s")
    table = _read_character_table()
    if table is not None:
        chars = sorted(table)
        method = METHOD_DICTIONARY
    else:
        chars = [chr(c) for lo, hi in _CJK_RANGES for c in range(lo, hi + 1)]
        method = METHOD_CONVERTERS
        warnings.warn(
            "OpenCC's opencc_dict tool was not found; the Traditional-script check falls back to "
            "s2t/t2s alone and will also flag characters shared by both scripts (台, 后, 干, ...)",
            stacklevel=2,
        )
    to_trad = _single_char_map(s2t, chars)
    to_taiwan = _single_char_map(s2tw, chars)
    to_simp = _single_char_map(t2s, chars)
    simplified = {
        c
        for c in chars
        if to_trad[c] != c and to_taiwan[c] != c and to_simp[c] == c and (table is None or c not in table[c])
    }
    return frozenset(simplified), method


def simplified_characters_in(text: str) -> list[str]:
    """The Simplified-only characters of ``text``, in order of appearance (repeats kept)."""
    simplified, _ = simplified_only_characters()
    return [c for c in text if c in simplified]


def script_check(outputs: Iterable[str]) -> dict[str, float | int | str | list[str]]:
    """Measure how Traditional a list of Chinese outputs is.

    Returns ``simplified_output_rate`` (fraction of outputs with at least one Simplified-only
    character), ``traditional_share`` (fraction of the outputs that contain Chinese with no
    Simplified-only character; ``None`` when no output contains Chinese: an empty or English output is
    not Traditional), ``simplified_char_rate`` (Simplified-only characters / CJK characters),
    ``cjk_share`` (CJK characters / alphabetic characters, pooled over all outputs), the raw
    counts, up to 20 most frequent offending characters and the ``method`` used.
    """
    simplified, method = simplified_only_characters()
    n_outputs = n_flagged = n_cjk = n_alpha = n_simplified = n_chinese = 0
    counts: dict[str, int] = {}
    for text in outputs:
        n_outputs += 1
        flagged = chinese = False
        for c in text:
            if c.isalpha():
                n_alpha += 1
            if is_cjk(c):
                n_cjk += 1
                chinese = True
                if c in simplified:
                    n_simplified += 1
                    counts[c] = counts.get(c, 0) + 1
                    flagged = True
        n_flagged += flagged
        n_chinese += chinese
    top = sorted(counts, key=lambda c: (-counts[c], c))[:20]
    return {
        "simplified_output_rate": n_flagged / n_outputs if n_outputs else 0.0,
        "traditional_share": (n_chinese - n_flagged) / n_chinese if n_chinese else None,
        "outputs_with_cjk": n_chinese,
        "simplified_char_rate": n_simplified / n_cjk if n_cjk else 0.0,
        "cjk_share": n_cjk / n_alpha if n_alpha else 0.0,
        "outputs": n_outputs,
        "outputs_with_simplified": n_flagged,
        "cjk_chars": n_cjk,
        "simplified_chars": n_simplified,
        "top_simplified_chars": top,
        "method": method,
    }
