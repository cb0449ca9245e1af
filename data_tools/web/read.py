"""Read HTML pages out of WARC and ARC files (gzipped or not) with ``warcio``.

Only HTTP 200 responses whose payload is HTML go on. Everything else is counted, with its
reason, in a :class:`~data_tools.stats.StepStats`, and the reader never raises on bad
archive data:

* record types other than ``response`` (``warcinfo``, ``request``, ``metadata``, ``resource``)
  and ``revisit`` records (they carry no payload of their own) are skipped;
* non-200 statuses and non-HTML content types are skipped;
* records whose WARC or HTTP header lines are not valid UTF-8 are skipped (warcio silently
  decodes them as Latin-1; we check the raw bytes);
* a ``Transfer-Encoding: chunked`` body that breaks off mid-chunk is skipped as
  ``bad chunked encoding`` (a body that was stored already de-chunked is read as it is);
* a record whose body is shorter than its ``Content-Length`` (a truncated gzip member or a
  file cut short) is skipped as ``truncated record``;
* when the archive itself cannot be parsed any further (a gzip member cut in the middle,
  garbage between records), the reader counts a ``corrupt archive data`` drop, scans forward
  to the next gzip member or ``WARC/1.x`` header and goes on from there. A malformed record
  in a gzip file triggers the same scan, because a truncated member can decompress on into
  the following members and turn them into garbage;
* a file that is one big gzip stream instead of one gzip member per record is re-read as a
  single stream.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader, ChunkedDataException, ChunkedDataReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.limitreader import LimitReader
from warcio.recordloader import ArcWarcRecord, ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeadersParser

from ..stats import StepStats, reason_tag

#: Content types that count as HTML.
HTML_MIME_TYPES: frozenset[str] = frozenset({"text/html", "application/xhtml+xml"})
#: Payloads larger than this are skipped (Common Crawl truncates at 1 MiB; we allow more).
MAX_PAYLOAD_BYTES = 5 * 1024 * 1024

_GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_MAGIC = re.compile(rb"(?:^|\n)WARC/\d\.\d+\r?\n")
_CHUNK_SIZE_LINE = re.compile(rb"[0-9a-fA-F]+[ \t]*(?:;[^\r\n]*)?\r\n")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_SCAN_BLOCK = 1 << 20
# Drop reasons that, in a gzip file, may mean a member broke off and swallowed the next ones.
_SUSPECT_REASONS = frozenset({"no_http_headers", "truncated_record", "http_status_missing", "digest_mismatch"})


@dataclass
class HtmlPage:
    """One HTML response taken out of an archive.

    Attributes:
        url: the target URI of the record.
        payload: the HTTP body, de-chunked and decompressed, still undecoded bytes.
        warc: name of the archive file it came from.
        record_id: the ``WARC-Record-ID`` (or ``<file>@<offset>`` for ARC records).
        offset: byte offset of the record in the (compressed) file, for error messages.
        date: the capture date (``WARC-Date``), if any.
        http_charset: the charset named in the HTTP ``Content-Type`` header, if any.
    """

    url: str
    payload: bytes
    warc: str
    record_id: str
    offset: int
    date: str | None = None
    http_charset: str | None = None


class _Utf8CheckingParser(StatusAndHeadersParser):
    """A warcio header parser that remembers when a header line was not valid UTF-8.

    warcio decodes header lines as UTF-8 and silently falls back to Latin-1; this subclass
    records the fallback so that the reader can count and skip such records.
    """

    def __init__(self, statuslist: list[str], verify: bool = True) -> None:
        super().__init__(statuslist, verify)
        self.non_utf8 = False

    def decode_header(self, line):  # type: ignore[override]  # base is a staticmethod
        if isinstance(line, bytes) and not line.isascii():
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                self.non_utf8 = True
        return StatusAndHeadersParser.decode_header(line)


class _RecordDropped(Exception):
    """Internal: a record is skipped for the reason given as the message."""


def _install_utf8_checks(records: ArchiveIterator) -> list[_Utf8CheckingParser]:
    """Swap warcio's WARC and HTTP header parsers for UTF-8-checking ones."""
    loader = records.loader
    parsers: list[_Utf8CheckingParser] = []
    if hasattr(loader, "warc_parser") and hasattr(loader, "http_parser"):
        loader.warc_parser = _Utf8CheckingParser(ArcWarcRecordLoader.WARC_TYPES)
        loader.http_parser = _Utf8CheckingParser(ArcWarcRecordLoader.HTTP_TYPES, verify=False)
        parsers = [loader.warc_parser, loader.http_parser]
    return parsers


def _mime_and_charset(content_type: str | None) -> tuple[str | None, str | None]:
    if not content_type:
        return None, None
    mime = content_type.split(";", 1)[0].strip().lower() or None
    match = _CHARSET.search(content_type)
    return mime, (match.group(1) if match else None)


def _looks_like_html(payload: bytes) -> bool:
    head = payload[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _read_body(record: ArcWarcRecord, max_bytes: int, stats: StepStats) -> bytes:
    """The record's HTTP body, de-chunked and decompressed; raises _RecordDropped."""
    raw_stream = record.raw_stream
    raw = raw_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise _RecordDropped("payload_over_size_limit")
    if isinstance(raw_stream, LimitReader) and raw_stream.limit > 0:
        raise _RecordDropped("truncated_record")

    headers = record.http_headers
    content_encoding = (headers.get_header("content-encoding") or "").strip().lower() or None
    if content_encoding not in BufferedReader.get_supported_decompressors():
        content_encoding = None
    transfer_encoding = (headers.get_header("transfer-encoding") or "").lower()

    if "chunked" in transfer_encoding:
        if _CHUNK_SIZE_LINE.match(raw):
            reader = ChunkedDataReader(io.BytesIO(raw), decomp_type=content_encoding, raise_exceptions=True)
            try:
                return reader.read()
            except ChunkedDataException:
                raise _RecordDropped("bad_chunked_encoding") from None
        # Many crawlers store the body de-chunked but keep the header.
        stats.note("chunked header on de-chunked body")
    if content_encoding:
        body = BufferedReader(io.BytesIO(raw), decomp_type=content_encoding).read()
        if raw and not body:
            raise _RecordDropped("bad_content_encoding")
        return body
    return raw


def _to_page(
    record: ArcWarcRecord,
    *,
    name: str,
    offset: int,
    non_utf8_headers: bool,
    max_bytes: int,
    stats: StepStats,
) -> HtmlPage:
    """Turn one archive record into an HtmlPage or raise _RecordDropped(reason)."""
    if record.rec_type == "revisit":
        raise _RecordDropped("revisit_record")
    if record.rec_type != "response":
        raise _RecordDropped(reason_tag(record.rec_type, "record"))
    if non_utf8_headers:
        raise _RecordDropped("non_utf8_headers")
    http = record.http_headers
    if http is None:
        raise _RecordDropped("no_http_headers")
    status = http.get_statuscode()
    if status != "200":
        raise _RecordDropped(reason_tag("http", status or "status_missing"))
    mime, charset = _mime_and_charset(http.get_header("content-type"))
    if mime is not None and mime not in HTML_MIME_TYPES:
        raise _RecordDropped("not_html")
    payload = _read_body(record, max_bytes, stats)
    # A truncated gzip member can decompress on into the next member and hand back garbage that
    # still fills the record's length; the WARC block/payload digests catch it where the record has them.
    checker = getattr(record, "digest_checker", None)
    if checker is not None and checker.passed is False:
        raise _RecordDropped("digest_mismatch")
    if not payload.strip():
        raise _RecordDropped("empty_payload")
    if mime is None:
        if not _looks_like_html(payload):
            raise _RecordDropped("not_html")
        stats.note("no content-type, sniffed as HTML")
    rec_headers = record.rec_headers
    return HtmlPage(
        url=rec_headers.get_header("WARC-Target-URI") or rec_headers.get_header("uri") or "",
        payload=payload,
        warc=name,
        record_id=rec_headers.get_header("WARC-Record-ID") or f"{name}@{offset}",
        offset=offset,
        date=rec_headers.get_header("WARC-Date") or rec_headers.get_header("archive-date"),
        http_charset=charset,
    )


def _next_record_start(fh: BinaryIO, start: int, gzipped: bool) -> int | None:
    """Offset of the next gzip member (or ``WARC/1.x`` line) at or after ``start``, or None."""
    fh.seek(start)
    carry = b""
    base = start
    while True:
        block = fh.read(_SCAN_BLOCK)
        if not block:
            return None
        data = carry + block
        if gzipped:
            pos = data.find(_GZIP_MAGIC)
            if pos >= 0:
                return base + pos
        else:
            match = _WARC_MAGIC.search(data)
            if match:
                return base + match.start() + (1 if data[match.start() : match.start() + 1] == b"\n" else 0)
        keep = 16
        carry = data[-keep:]
        base += len(data) - keep


class _CorruptMember(Exception):
    """Internal: a gzip member failed to decompress part-way (warcio would stop silently)."""


def _install_decompress_check(records: ArchiveIterator) -> None:
    """Make a mid-member decompression error raise instead of ending the archive quietly.

    warcio's reader prints the zlib error and returns no data, which looks like the end of the
    file; the records after the broken member would be lost without a trace.
    """
    reader = records.reader
    original = getattr(reader, "_decompress", None)
    if original is None or not hasattr(reader, "num_block_read"):
        return

    def checked(data: bytes) -> bytes:
        if reader.decompressor is not None and data and reader.num_block_read > 0:
            try:
                return reader.decompressor.decompress(data)
            except zlib.error as err:
                raise _CorruptMember(str(err)) from None
        return original(data)

    reader._decompress = checked


def _starts_record(fh: BinaryIO, offset: int, gzipped: bool) -> bool:
    """True if a gzip member (or a ``WARC/`` header) begins at ``offset``."""
    fh.seek(offset)
    head = fh.read(8)
    return head.startswith(_GZIP_MAGIC) if gzipped else head.startswith(b"WARC/")


def _iter_records(
    fh: BinaryIO,
    *,
    name: str,
    stats: StepStats,
    max_bytes: int,
    skip_non_utf8_headers: bool,
    gzipped: bool,
    seekable: bool,
    skip_records: int = 0,
    max_records: int | None = None,
) -> Iterator[HtmlPage]:
    """The record loop with error recovery; see the module docstring.

    ``max_records``: stop once this many records have been counted in ``stats`` (HW1's ``--num_records``).

    ``skip_records`` first records are passed over without being counted (used when a
    whole-file gzip archive is re-read after its first records were already handled).
    """
    start: int | None = 0
    n_records = 0  # records handled so far

    while start is not None:
        if seekable:
            fh.seek(start)
        records = ArchiveIterator(fh, check_digests=True)  # locks to WARC or ARC after the first record
        parsers = _install_utf8_checks(records)
        _install_decompress_check(records)
        first_record = n_records
        last_start = start  # where the record being handled (or the failing one) began
        rescan_from: int | None = None
        failure: str | None = None
        try:
            for record in records:
                if max_records is not None and stats.seen >= max_records:
                    return
                last_start = records.offset
                non_utf8 = any(p.non_utf8 for p in parsers)
                for p in parsers:
                    p.non_utf8 = False
                n_records += 1
                if n_records <= skip_records:
                    continue
                try:
                    page = _to_page(
                        record,
                        name=name,
                        offset=last_start,
                        non_utf8_headers=non_utf8 and skip_non_utf8_headers,
                        max_bytes=max_bytes,
                        stats=stats,
                    )
                except _RecordDropped as dropped:
                    stats.drop(str(dropped))
                    if gzipped and seekable and str(dropped) in _SUSPECT_REASONS:
                        rescan_from = last_start
                        break
                    continue
                except _CorruptMember:
                    raise
                except Exception as err:  # corrupt payload data, whatever warcio makes of it
                    stats.drop(reason_tag("unreadable_payload", type(err).__name__))
                    continue
                stats.keep()
                yield page
            if rescan_from is None and seekable and _data_left(fh, max(records.offset, last_start)):
                failure = "stopped early"  # data left that warcio did not read
        except ArchiveLoadFailed as err:
            whole_file_gzip = start == 0 and n_records - first_record == 1 and "non-chunked gzip" in str(err)
            if whole_file_gzip and seekable and gzipped:
                # One gzip stream for the whole file: valid data, just not one member per record.
                stats.note("whole-file gzip, read as one stream")
                fh.seek(0)
                yield from _iter_records(
                    _Unseekable(gzip.GzipFile(fileobj=fh, mode="rb")),
                    name=name,
                    stats=stats,
                    max_bytes=max_bytes,
                    skip_non_utf8_headers=skip_non_utf8_headers,
                    gzipped=False,
                    seekable=False,
                    skip_records=n_records,
                    max_records=max_records,
                )
                return
            failure = type(err).__name__
        except Exception as err:  # warcio raises many types on corrupt input; none may stop the run
            failure = "truncated or corrupt gzip member" if isinstance(err, _CorruptMember) else type(err).__name__
        finally:
            records.close()

        start = None
        if rescan_from is not None and failure is None:
            # A malformed record in a gzip file may be a truncated member whose decompressor ran on
            # into the next members and swallowed them as garbage: look for the next member.
            start = _next_record_start(fh, rescan_from + 1, gzipped)
            stats.note("rescanned after malformed record")
        elif failure is not None:
            stats.drop(reason_tag("corrupt_archive_data", failure))
            if not seekable:
                stats.note("rest of unseekable stream skipped")
                break
            # If the failure came after a record ended cleanly at a record boundary, the broken
            # record starts there; otherwise distrust warcio's position and rescan from the last
            # record start.
            end = records.offset
            broken_at = end if end > last_start and _starts_record(fh, end, gzipped) else last_start
            start = _next_record_start(fh, broken_at + 1, gzipped)
            stats.note("resynchronised after corrupt data" if start is not None else "no record after corrupt data")


def _data_left(fh: BinaryIO, offset: int) -> bool:
    """True if anything but whitespace follows ``offset`` in the file."""
    fh.seek(offset)
    while block := fh.read(_SCAN_BLOCK):
        if block.strip():
            return True
    return False


class _Unseekable(io.RawIOBase):
    """A read-only view of a stream that reports itself unseekable (no resync attempts)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_html_pages(
    source: str | Path | BinaryIO,
    stats: StepStats | None = None,
    *,
    name: str | None = None,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    skip_non_utf8_headers: bool = True,
    max_records: int | None = None,
) -> Iterator[HtmlPage]:
    """Yield the HTML pages (HTTP 200, HTML content type) of one WARC or ARC file.

    Args:
        source: path of a ``.warc``, ``.warc.gz``, ``.arc`` or ``.arc.gz`` file, or an open
            binary file (seekable for recovery from corrupt data).
        stats: counts of records read, kept and dropped (with reasons) are added here.
        name: file name recorded in each page (default: the path's file name).
        max_payload_bytes: skip payloads larger than this.
        skip_non_utf8_headers: skip records whose header lines are not valid UTF-8.
        max_records: read at most this many records (of any type) into ``stats``.
    """
    stats = stats if stats is not None else StepStats("read")
    if isinstance(source, (str, Path)):
        path = Path(source)
        with path.open("rb") as fh:
            yield from read_html_pages(
                fh,
                stats,
                name=name or path.name,
                max_payload_bytes=max_payload_bytes,
                skip_non_utf8_headers=skip_non_utf8_headers,
                max_records=max_records,
            )
        return
    seekable = bool(getattr(source, "seekable", lambda: False)())
    if seekable:
        gzipped = source.read(2) == _GZIP_MAGIC[:2]
        source.seek(0)
    else:
        gzipped = False  # only used for resync, which needs seeking
    yield from _iter_records(
        source,
        name=name or Path(str(getattr(source, "name", "<stream>"))).name,
        stats=stats,
        max_bytes=max_payload_bytes,
        skip_non_utf8_headers=skip_non_utf8_headers,
        gzipped=gzipped,
        seekable=seekable,
        max_records=max_records,
    )
