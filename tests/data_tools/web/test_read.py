"""Reading WARC/ARC archives: what goes on, what is skipped and why, and no crash on bad data."""

from __future__ import annotations

import gzip
import io
import uuid
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from data_tools.stats import StepStats
from data_tools.web.read import read_html_pages
from data_tools.web.write import PageToWrite, write_warc
from tests import paths

FIXTURES = paths.FIXTURES / "warc"


def html(title: str, body: str = "Some text.") -> bytes:
    return f"<html><head><title>{title}</title></head><body><p>{body}</p></body></html>".encode()


def read_all(source, **kwargs) -> tuple[list, StepStats]:
    stats = StepStats("read")
    pages = list(read_html_pages(source, stats, **kwargs))
    assert stats.seen == stats.kept + stats.n_dropped
    assert stats.kept == len(pages)
    return pages, stats


def member_spans(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each record of a WARC file."""
    spans = []
    with path.open("rb") as fh:
        records = ArchiveIterator(fh)
        for _ in records:
            records.read_to_end()
            spans.append((records.get_record_offset(), records.get_record_length()))
    return spans


def raw_warc_record(warc_headers: list[tuple[bytes, bytes]], block: bytes) -> bytes:
    """An uncompressed WARC record written byte by byte (to plant bytes warcio would not write)."""
    head = [b"WARC/1.0"]
    head += [b"%s: %s" % kv for kv in warc_headers]
    head += [b"WARC-Record-ID: <urn:uuid:%s>" % str(uuid.uuid4()).encode(), b"Content-Length: %d" % len(block)]
    return b"\r\n".join(head) + b"\r\n\r\n" + block + b"\r\n\r\n"


def http_response(body: bytes, headers: list[bytes] = ()) -> bytes:
    return b"\r\n".join([b"HTTP/1.1 200 OK", b"Content-Type: text/html", *headers]) + b"\r\n\r\n" + body


def response_headers(uri: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"WARC-Type", b"response"),
        (b"WARC-Target-URI", uri),
        (b"WARC-Date", b"2024-01-01T00:00:00Z"),
        (b"Content-Type", b"application/http; msgtype=response"),
    ]


# --- real archives -------------------------------------------------------------------------


def test_iana_subset_real_crawl():
    pages, stats = read_all(FIXTURES / "iana-subset.warc.gz")
    assert len(pages) == 16
    assert stats.dropped["request_record"] > 0
    assert stats.dropped["revisit_record"] > 0
    assert stats.dropped["http_302"] == 3
    assert stats.dropped["not_html"] == 5
    assert stats.dropped["warcinfo_record"] == 1
    # iana.org served chunked responses that the crawler stored de-chunked
    assert stats.notes["chunked header on de-chunked body"] == 16
    first = pages[0]
    assert first.url == "http://www.iana.org/"
    assert first.payload.startswith(b"<!doctype html>")
    assert first.http_charset == "UTF-8"
    assert first.record_id.startswith("<urn:uuid:")
    assert first.warc == "iana-subset.warc.gz"
    assert first.date.startswith("2014-")


@pytest.mark.parametrize("name", ["example.warc.gz", "example.warc", "example.arc", "example.arc.gz"])
def test_warc_and_arc_gzipped_or_not(name):
    pages, stats = read_all(FIXTURES / name)
    assert len(pages) == 1
    assert pages[0].url.startswith("http://example.com")
    assert b"Example Domain" in pages[0].payload


def test_revisit_records_are_skipped():
    pages, stats = read_all(FIXTURES / "example-url-agnostic-revisit.warc.gz")
    assert pages == []
    assert stats.dropped["revisit_record"] == 1
    _, stats = read_all(FIXTURES / "dupes.warc.gz")
    assert stats.dropped["revisit_record"] == 9


def test_non_200_and_non_html_are_skipped():
    _, stats = read_all(FIXTURES / "missing-status-text.warc")
    assert dict(stats.dropped) == {"http_302": 1}
    pages, stats = read_all(FIXTURES / "post-test.warc.gz")
    assert pages == [] and stats.dropped["not_html"] == 3  # JSON responses


def test_bad_arc_is_counted_not_raised():
    pages, stats = read_all(FIXTURES / "bad.arc")
    assert pages == []
    assert stats.seen == 4
    assert stats.dropped["no_http_headers"] >= 1


def test_whole_file_gzip_is_read_as_one_stream():
    # pywb's example-bad.warc.gz.bad: every record in one gzip member (not seekable per record)
    pages, stats = read_all(FIXTURES / "example-bad.warc.gz.bad")
    assert stats.notes["whole-file gzip, read as one stream"] == 1
    assert [p.url for p in pages] == ["http://example.com?example=1"]
    # the same counts as the well-formed file
    _, good = read_all(FIXTURES / "example.warc.gz")
    assert stats.seen == good.seen and stats.dropped == good.dropped


# --- generated archives with planted faults ------------------------------------------------


@pytest.fixture()
def three_pages(tmp_path, monkeypatch) -> Path:
    # Fixed record ids and dates: the corruption tests cut members at byte fractions, and random ids
    # would move the cut from run to run.
    from itertools import count

    from warcio.recordbuilder import RecordBuilder

    ids = count()
    monkeypatch.setattr(
        RecordBuilder, "_make_warc_id", classmethod(lambda cls: f"<urn:uuid:00000000-0000-0000-0000-{next(ids):012d}>")
    )
    monkeypatch.setattr(
        RecordBuilder, "_make_warc_date", classmethod(lambda cls, use_micros=False: "2024-01-02T03:04:05Z")
    )
    path = tmp_path / "three.warc.gz"
    write_warc(path, [PageToWrite(f"http://example.org/{i}", html(f"page {i}")) for i in range(3)])
    return path


def test_written_warc_roundtrip(three_pages):
    pages, stats = read_all(three_pages)
    assert [p.url for p in pages] == [f"http://example.org/{i}" for i in range(3)]
    assert stats.dropped == {"warcinfo_record": 1}


@pytest.mark.parametrize("kept_fraction", [0.1, 0.25, 0.5, 0.75, 0.95])
def test_truncated_gzip_member_in_the_middle(three_pages, tmp_path, kept_fraction):
    data = three_pages.read_bytes()
    spans = member_spans(three_pages)  # warcinfo, page 0, page 1, page 2
    off, length = spans[2]
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(data[: off + int(length * kept_fraction)] + data[off + length :])
    pages, stats = read_all(broken)
    urls = [p.url for p in pages]
    # the pages around the broken member are never lost
    assert urls[0] == "http://example.org/0" and urls[-1] == "http://example.org/2"
    if "http://example.org/1" in urls:  # only when the cut left the whole payload (lost gzip trailer)
        assert pages[1].payload == html("page 1")
    else:
        assert stats.n_dropped - stats.dropped["warcinfo_record"] >= 1
    assert any(
        r.startswith("corrupt_archive_data") or r in ("no_http_headers", "digest_mismatch") for r in stats.dropped
    )


@pytest.mark.parametrize("kept_fraction", [0.1, 0.5, 0.9])
def test_truncated_last_member(three_pages, tmp_path, kept_fraction):
    data = three_pages.read_bytes()
    off, length = member_spans(three_pages)[-1]
    broken = tmp_path / "cut.warc.gz"
    broken.write_bytes(data[: off + int(length * kept_fraction)])
    pages, stats = read_all(broken)
    assert [p.url for p in pages] == ["http://example.org/0", "http://example.org/1"]
    assert stats.n_dropped - stats.dropped["warcinfo_record"] == 1


def test_garbage_between_records(three_pages, tmp_path):
    data = three_pages.read_bytes()
    off, _ = member_spans(three_pages)[2]
    broken = tmp_path / "junk.warc.gz"
    broken.write_bytes(data[:off] + b"this is not a gzip member\n" * 5 + data[off:])
    pages, stats = read_all(broken)
    assert [p.url for p in pages] == [f"http://example.org/{i}" for i in range(3)]
    assert stats.notes["resynchronised after corrupt data"] == 1


def test_garbage_in_uncompressed_warc(tmp_path):
    path = tmp_path / "plain.warc"
    write_warc(path, [PageToWrite(f"http://example.org/{i}", html(f"page {i}")) for i in range(3)])
    data = path.read_bytes()
    second = data.index(b"WARC/1", data.index(b"http://example.org/0"))
    broken = tmp_path / "junk.warc"
    broken.write_bytes(data[:second] + b"GARBAGE LINE\r\n" + data[second:])
    pages, stats = read_all(broken)
    assert [p.url for p in pages] == [f"http://example.org/{i}" for i in range(3)]


def test_not_an_archive_at_all(tmp_path):
    path = tmp_path / "random.warc"
    path.write_bytes(bytes(range(256)) * 8)
    pages, stats = read_all(path)
    assert pages == [] and stats.n_dropped == 1
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    pages, stats = read_all(empty)
    assert pages == [] and stats.seen == 0


def test_unseekable_stream(three_pages):
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes):
            self._buf = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self._buf.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    pages, _ = read_all(io.BufferedReader(Pipe(three_pages.read_bytes())), name="pipe")
    assert len(pages) == 3 and pages[0].warc == "pipe"
    # corrupt data in an unseekable stream: counted, rest skipped, no exception
    data = three_pages.read_bytes()
    off, length = member_spans(three_pages)[2]
    pages, stats = read_all(io.BufferedReader(Pipe(data[: off + length // 2] + data[off + length :])))
    assert [p.url for p in pages] == ["http://example.org/0"]
    # Where the cut lands (the record dates change the compressed bytes) decides whether warcio raises
    # (the rest of the stream is skipped) or yields a malformed record (dropped); either way it is counted.
    problems = {k: v for k, v in stats.dropped.items() if k != "warcinfo_record"}
    assert stats.notes["rest of unseekable stream skipped"] == 1 or sum(problems.values()) >= 1, (
        stats.notes,
        stats.dropped,
    )


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_chunked_bodies(tmp_path):
    good = chunked(b"<html><body><p>Chunked ", b"body works.</p></", b"body></html>")
    # second chunk announces 0x40 bytes but the body ends first
    bad = chunked(b"<html><body><p>Chunked ")[:-5] + b"40\r\nbody that stops before its chunk ends"
    dechunked = html("stored de-chunked")
    te = [("Transfer-Encoding", "chunked")]
    path = tmp_path / "chunked.warc.gz"
    write_warc(
        path,
        [
            PageToWrite("http://example.org/good", good, extra_headers=te),
            PageToWrite("http://example.org/bad", bad, extra_headers=te),
            PageToWrite("http://example.org/dechunked", dechunked, extra_headers=te),
        ],
    )
    pages, stats = read_all(path)
    by_url = {p.url: p.payload for p in pages}
    assert by_url["http://example.org/good"] == b"<html><body><p>Chunked body works.</p></body></html>"
    assert "http://example.org/bad" not in by_url
    assert stats.dropped["bad_chunked_encoding"] == 1
    assert by_url["http://example.org/dechunked"] == dechunked
    assert stats.notes["chunked header on de-chunked body"] == 1


def test_content_encoding_gzip_is_decompressed(tmp_path):
    body = html("compressed", "Compressed body.")
    path = tmp_path / "ce.warc.gz"
    write_warc(
        path, [PageToWrite("http://example.org/", gzip.compress(body), extra_headers=[("Content-Encoding", "gzip")])]
    )
    pages, _ = read_all(path)
    assert pages[0].payload == body


def test_non_utf8_headers_are_skipped(tmp_path):
    ok = raw_warc_record(response_headers(b"http://example.org/ok"), http_response(html("ok")))
    bad_uri = raw_warc_record(response_headers(b"http://example.org/caf\xe9"), http_response(html("latin-1 uri")))
    bad_http = raw_warc_record(
        response_headers(b"http://example.org/h"), http_response(html("latin-1 header"), [b"X-Note: d\xe9j\xe0 vu"])
    )
    utf8 = raw_warc_record(response_headers("http://example.org/café".encode()), http_response(html("utf-8 uri")))
    path = tmp_path / "headers.warc"
    path.write_bytes(ok + bad_uri + bad_http + utf8)
    pages, stats = read_all(path)
    assert [p.url for p in pages] == ["http://example.org/ok", "http://example.org/café"]
    assert stats.dropped["non_utf8_headers"] == 2
    pages, _ = read_all(path, skip_non_utf8_headers=False)
    assert len(pages) == 4


def test_record_kinds_status_type_and_size(tmp_path):
    path = tmp_path / "kinds.warc.gz"
    write_warc(
        path,
        [
            PageToWrite("http://example.org/html", html("fine")),
            PageToWrite("http://example.org/404", html("missing"), status="404 Not Found"),
            PageToWrite("http://example.org/img", b"\x89PNG....", content_type="image/png"),
            PageToWrite(
                "http://example.org/sniffed", b"<!DOCTYPE html><html><body>no header</body></html>", content_type=None
            ),
            PageToWrite("http://example.org/blob", b"\x00\x01binary", content_type=None),
            PageToWrite("http://example.org/xhtml", html("x"), content_type="application/xhtml+xml"),
            PageToWrite("http://example.org/empty", b"   "),
            PageToWrite("http://example.org/big", html("big", "x" * 5000)),
            PageToWrite("http://example.org/res", html("resource"), record_type="resource"),
        ],
    )
    pages, stats = read_all(path, max_payload_bytes=4000)
    assert [p.url for p in pages] == [
        "http://example.org/html",
        "http://example.org/sniffed",
        "http://example.org/xhtml",
    ]
    assert stats.dropped["http_404"] == 1
    assert stats.dropped["not_html"] == 2
    assert stats.dropped["empty_payload"] == 1
    assert stats.dropped["payload_over_size_limit"] == 1
    assert stats.dropped["resource_record"] == 1
    assert stats.notes["no content-type, sniffed as HTML"] == 1
