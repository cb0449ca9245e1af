"""HTML -> main-content plain text.

Two well-kept extractors are supported:

* ``resiliparse`` (default): ``resiliparse.extract.html2text.extract_plain_text`` with
  ``main_content=True`` — a rule-based boilerplate remover written in C++ on top of the
  Lexbor HTML parser. Keeps one block element per line, so line-based quality rules see the
  page's real structure.
* ``trafilatura``: ``trafilatura.extract`` — a heuristic extractor (with readability and
  jusText fallbacks) used by FineWeb. Slower; tends to join code blocks and list items.

``data_tools/README.md`` has the measured comparison behind the default. Both start from
:func:`decode_html`, which picks the charset from the HTTP header, the page's ``<meta>``
tag or resiliparse's encoding detector, in that order.
"""

from __future__ import annotations

import logging
from typing import Literal

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding, map_encoding_to_html5
from resiliparse.parse.html import HTMLTree

Extractor = Literal["resiliparse", "trafilatura"]
EXTRACTORS: tuple[str, ...] = ("resiliparse", "trafilatura")


def decode_html(payload: bytes, http_charset: str | None = None) -> tuple[str, str]:
    """Decode an HTML payload; returns ``(text, encoding used)``.

    The charset named in the HTTP header wins when the bytes really decode with it;
    otherwise the ``<meta charset>`` / ``http-equiv`` tag, then resiliparse's statistical
    detector, decide. Undecodable bytes are dropped rather than raising.
    """
    declared = map_encoding_to_html5(http_charset, fallback_utf8=False) if http_charset else None
    if declared:
        try:
            return payload.decode(declared), declared
        except (UnicodeDecodeError, LookupError):
            pass
    detected = detect_encoding(payload, from_html_meta=True) or "utf-8"
    try:
        return payload.decode(detected), detected
    except (UnicodeDecodeError, LookupError):
        fallbacks = tuple(dict.fromkeys((detected, "utf-8", "cp1252")))
        return bytes_to_str(payload, detected, fallback_encodings=fallbacks), detected


def _resiliparse(html: str) -> str:
    tree = HTMLTree.parse(html)
    return extract_plain_text(
        tree,
        main_content=True,
        list_bullets=True,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
        comments=False,
    )


def _trafilatura(html: str) -> str:
    import trafilatura  # imported lazily: it takes about a second

    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    text = trafilatura.extract(
        html,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        favor_precision=True,
        deduplicate=False,
    )
    return text or ""


def html_to_text(html: str | bytes, extractor: Extractor = "resiliparse", *, http_charset: str | None = None) -> str:
    """Main-content text of an HTML page ("" when nothing is left).

    Args:
        html: the page, as text or as undecoded bytes (then :func:`decode_html` is applied).
        extractor: ``"resiliparse"`` (default) or ``"trafilatura"``.
        http_charset: charset from the HTTP ``Content-Type`` header, used when ``html`` is bytes.
    """
    if isinstance(html, bytes):
        html, _ = decode_html(html, http_charset)
    if extractor == "resiliparse":
        text = _resiliparse(html)
    elif extractor == "trafilatura":
        text = _trafilatura(html)
    else:
        raise ValueError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    return text.strip()
