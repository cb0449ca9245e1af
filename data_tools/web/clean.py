"""Text clean-up after extraction: mojibake, Unicode normalisation, whitespace, control characters.

``ftfy`` repairs mojibake (UTF-8 read as Windows-1252 and similar), HTML entities left in
text and terminal escapes, then the text is put in Unicode normal form. NFC is the default:
NFKC also folds full-width punctuation (，！？：) into ASCII, which changes Chinese text,
so it is opt-in.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import ftfy

Normalization = Literal["NFC", "NFKC", "NFD", "NFKD"]

_FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html="auto",
    remove_terminal_escapes=True,
    fix_encoding=True,
    restore_byte_a0=True,
    replace_lossy_sequences=True,
    decode_inconsistent_utf8=True,
    fix_c1_controls=True,
    fix_latin_ligatures=True,
    fix_character_width=False,  # keep full-width CJK punctuation
    uncurl_quotes=False,  # keep typographic quotes
    fix_line_breaks=True,
    fix_surrogates=True,
    remove_control_chars=True,
    normalization=None,  # done below, so the form is selectable
)

# Invisible characters that only get in the way of text models: zero-width space, word joiner,
# BOM/zero-width no-break space, soft hyphen. (ZWJ/ZWNJ are kept: they matter in some scripts
# and emoji.)
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")
# Any other C0/C1 control character except tab and newline.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Horizontal whitespace runs (includes no-break and other Unicode spaces).
_HSPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(
    text: str,
    *,
    normalization: Normalization = "NFC",
    fix_mojibake: bool = True,
) -> str:
    """Repair and normalise ``text``.

    Steps: ftfy repair (optional), Unicode normalisation, removal of control and invisible
    characters, runs of spaces and tabs collapsed to one space, spaces at line ends stripped,
    at most one blank line between paragraphs, no blank lines at either end.
    """
    if fix_mojibake:
        text = ftfy.fix_text(text, _FTFY_CONFIG)
    else:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize(normalization, text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub("", text)
    text = "\n".join(_HSPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip("\n")
