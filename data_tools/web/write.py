"""Write HTML pages into a WARC file with ``warcio`` (for benchmarks and test archives)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


@dataclass
class PageToWrite:
    """One HTTP response to store.

    Attributes:
        url: target URI.
        body: the HTTP body exactly as it should be stored (already chunked or compressed if the
            headers say so).
        content_type: value of the HTTP ``Content-Type`` header (None: no such header).
        status: HTTP status line, e.g. ``"200 OK"``.
        extra_headers: more HTTP headers, e.g. ``[("Transfer-Encoding", "chunked")]``.
        record_type: WARC record type (``"response"``, ``"resource"``, ...).
    """

    url: str
    body: bytes
    content_type: str | None = "text/html; charset=utf-8"
    status: str = "200 OK"
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    record_type: str = "response"


def write_warc(path: str | Path, pages: Iterable[PageToWrite], *, gzip: bool | None = None) -> int:
    """Write ``pages`` as WARC response records (plus a ``warcinfo`` record) to ``path``.

    Each record is its own gzip member when ``gzip`` is true (default: path ends in ``.gz``),
    as the WARC standard recommends. Returns the number of page records written.
    """
    from minimind_hf.utils.atomic_files import atomic_write  # here: importing minimind_hf loads transformers

    path = Path(path)
    gzip = path.suffix == ".gz" if gzip is None else gzip
    count = 0
    with atomic_write(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gzip)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "minimind-hf data_tools"}))
        for page in pages:
            headers = []
            if page.content_type is not None:
                headers.append(("Content-Type", page.content_type))
            headers += list(page.extra_headers)
            headers.append(("Content-Length", str(len(page.body))))
            http_headers = StatusAndHeaders(page.status, headers, protocol="HTTP/1.1")
            record = writer.create_warc_record(
                page.url,
                page.record_type,
                payload=io.BytesIO(page.body),
                length=None,
                http_headers=http_headers,
            )
            writer.write_record(record)
            count += 1
    return count
