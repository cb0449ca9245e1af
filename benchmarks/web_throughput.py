"""Throughput of the web-text pipeline, stage by stage, and a comparison of the two extractors.

Real HTML comes from two Debian packages (the LibreOffice help and the Python 3.11 docs,
about 3,100 pages), fetched once with ``apt-get download`` into ``--cache`` and written into a
WARC with warcio. Then:

* ``--part extractors``: resiliparse vs trafilatura on those pages and on the real 2014 iana.org
  crawl in the test fixtures: milliseconds per page, and bag-of-words precision / recall / F1
  (mean and median over pages) against the text of each page's main-content element
  (LibreOffice ``#DisplayArea``, Python docs ``div[role=main]``, iana.org ``#main_right``);
* ``--part stages``: documents per second per core for each stage run alone on all pages, and
  end to end (one process on one WARC; ``--workers`` processes on ``--workers`` WARC shards).

Usage::

    python benchmarks/web_throughput.py --cache .cache/web_bench [--pages 3091] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from data_tools.web.clean import clean_text
from data_tools.web.dedup import PAGE_PARAMS, ExactDeduplicator, NearDeduplicator, minhash_signature
from data_tools.web.extract import decode_html, html_to_text
from data_tools.web.filters import default_filters
from data_tools.web.langid import detect_language
from data_tools.web.pii import replace_pii
from data_tools.web.pipeline import WebPipelineConfig, run_pipeline
from data_tools.web.read import read_html_pages
from data_tools.web.write import PageToWrite, write_warc

PACKAGES = ("libreoffice-help-en-us", "python3.11-doc")
SOURCES = {
    # name: (directory inside the unpacked packages, URL prefix, XPath of the main content)
    "libreoffice-help": (
        "usr/share/libreoffice/help/en-US",
        "https://help.libreoffice.org/7.4/en-US/",
        "//*[@id='DisplayArea']",
    ),
    "python-docs": ("usr/share/doc/python3.11/html", "https://docs.python.org/3.11/", "//*[@role='main']"),
}
IANA_FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "warc" / "iana-subset.warc.gz"
IANA_MAIN = "//*[@id='main_right']"


# --- data ---------------------------------------------------------------------------------------


def ensure_packages(cache: Path) -> Path:
    """Download and unpack the Debian packages into ``cache/root`` (once)."""
    root = cache / "root"
    if all((root / SOURCES[name][0]).is_dir() for name in SOURCES):
        return root
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        sys.exit("apt-get and dpkg-deb are needed to fetch the benchmark pages (Debian/Ubuntu)")
    cache.mkdir(parents=True, exist_ok=True)
    print(f"downloading {', '.join(PACKAGES)} into {cache} ...", file=sys.stderr)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=cache, check=True)
    for deb in cache.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def html_files(root: Path) -> list[tuple[str, str, Path]]:
    """(source, url, path) of every HTML page, sorted, sources interleaved."""
    per_source = []
    for name, (sub, prefix, _) in SOURCES.items():
        base = root / sub
        files = sorted(base.rglob("*.html"))
        per_source.append([(name, prefix + str(f.relative_to(base)), f) for f in files])
    out = []
    for i in range(max(len(x) for x in per_source)):
        out += [x[i] for x in per_source if i < len(x)]
    return out


def write_bench_warcs(files: list[tuple[str, str, Path]], cache: Path, shards: int) -> tuple[Path, list[Path]]:
    """One WARC with every page, and the same pages split over ``shards`` WARCs."""
    pages = [PageToWrite(url, path.read_bytes()) for _, url, path in files]
    whole = cache / f"bench-{len(pages)}.warc.gz"
    if not whole.exists():
        write_warc(whole, pages)
    parts = []
    for k in range(shards):
        part = cache / f"bench-{len(pages)}-shard{k}of{shards}.warc.gz"
        if not part.exists():
            write_warc(part, pages[k::shards])
        parts.append(part)
    return whole, parts


# --- extractor quality ----------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> Counter:
    return Counter(t.lower() for t in _TOKEN.findall(text))


def main_content_text(html: str, xpath: str) -> str | None:
    """Text of the page's main-content element (scripts and styles removed), or None."""
    import lxml.html

    tree = lxml.html.fromstring(html)
    nodes = tree.xpath(xpath)
    if not nodes:
        return None
    node = nodes[0]
    for bad in node.xpath(".//script|.//style|.//noscript"):
        bad.drop_tree()
    return node.text_content()


def prf(extracted: str, reference: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall and F1 of ``extracted`` against ``reference``."""
    got, ref = tokens(extracted), tokens(reference)
    overlap = sum((got & ref).values())
    p = overlap / max(sum(got.values()), 1)
    r = overlap / max(sum(ref.values()), 1)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def compare_extractors(samples: dict[str, list[tuple[str, str]]]) -> list[dict]:
    """Speed and quality of both extractors on ``{source: [(html, reference text), ...]}``."""
    rows = []
    for source, items in samples.items():
        for extractor in ("resiliparse", "trafilatura"):
            html_to_text(items[0][0], extractor)  # warm up (imports, caches)
            scores, empty = [], 0
            start = time.perf_counter()
            outputs = [html_to_text(html, extractor) for html, _ in items]
            seconds = time.perf_counter() - start
            for out, (_, ref) in zip(outputs, items, strict=True):
                empty += not out
                scores.append(prf(out, ref))
            n = len(items)
            rows.append(
                {
                    "source": source,
                    "extractor": extractor,
                    "pages": n,
                    "ms_per_page": 1000 * seconds / n,
                    "precision": sum(s[0] for s in scores) / n,
                    "recall": sum(s[1] for s in scores) / n,
                    "f1": sum(s[2] for s in scores) / n,
                    "median_f1": statistics.median(s[2] for s in scores),
                    "empty": empty,
                    "lines_per_page": sum(o.count("\n") + 1 for o in outputs if o) / max(n - empty, 1),
                }
            )
    return rows


def extractor_samples(files: list[tuple[str, str, Path]], per_source: int) -> dict[str, list[tuple[str, str]]]:
    samples: dict[str, list[tuple[str, str]]] = {name: [] for name in SOURCES}
    for source, _, path in files:
        if len(samples[source]) >= per_source:
            continue
        html = path.read_text(encoding="utf-8", errors="replace")
        ref = main_content_text(html, SOURCES[source][2])
        if ref and ref.strip():
            samples[source].append((html, ref))
    samples["iana.org (2014 crawl)"] = []
    for page in read_html_pages(IANA_FIXTURE):
        html, _ = decode_html(page.payload, page.http_charset)
        ref = main_content_text(html, IANA_MAIN)
        if ref and ref.strip():
            samples["iana.org (2014 crawl)"].append((html, ref))
    return samples


# --- stage throughput -----------------------------------------------------------------------------


def timed(fn: Callable[[], Iterable]) -> tuple[list, float]:
    start = time.perf_counter()
    out = list(fn())
    return out, time.perf_counter() - start


def stage_throughput(whole: Path, shards: list[Path], workers: int) -> list[dict]:
    rows: list[dict] = []

    def add(stage: str, n: int, seconds: float, note: str = "") -> None:
        rate = n / seconds if seconds else float("inf")
        rows.append({"stage": stage, "docs": n, "seconds": seconds, "docs_per_s": rate, "note": note})

    pages, sec = timed(lambda: read_html_pages(whole))
    add("read (warcio, gzip)", len(pages), sec)
    htmls, sec = timed(lambda: (decode_html(p.payload, p.http_charset)[0] for p in pages))
    add("decode (charset)", len(htmls), sec)
    texts, sec = timed(lambda: (html_to_text(h, "resiliparse") for h in htmls))
    add("extract: resiliparse", len(texts), sec)
    sub = htmls[: max(len(htmls) // 4, 1)]
    _, sec = timed(lambda: (html_to_text(h, "trafilatura") for h in sub))
    add("extract: trafilatura", len(sub), sec, "on a quarter of the pages")
    texts, sec = timed(lambda: (clean_text(t) for t in texts))
    add("clean (ftfy, NFC)", len(texts), sec)
    langs, sec = timed(lambda: (detect_language(t) for t in texts))
    add("language (fastText lite)", len(langs), sec)
    for rule in default_filters():
        _, sec = timed(lambda rule=rule: (rule.apply(t, "en") for t in texts))
        add(f"filter: {rule.name}", len(texts), sec, "every page, alone")
    _, sec = timed(lambda: (replace_pii(t) for t in texts))
    add("pii", len(texts), sec)
    sigs, sec = timed(lambda: (minhash_signature(t, PAGE_PARAMS) for t in texts))
    add("minhash signatures", len(sigs), sec, f"{PAGE_PARAMS.num_perm} perms, {PAGE_PARAMS.shingle_size}-word shingles")
    exact = ExactDeduplicator()
    _, sec = timed(lambda: (exact.is_duplicate(t) for t in texts))
    add("exact dedup", len(texts), sec)
    near = NearDeduplicator(PAGE_PARAMS)
    _, sec = timed(lambda: (near.is_duplicate(signature=s) for s in sigs))
    add("near dedup (LSH)", len(sigs), sec, f"{PAGE_PARAMS.bands} bands x {PAGE_PARAMS.rows} rows")

    config = WebPipelineConfig()
    start = time.perf_counter()
    run = run_pipeline([whole], config, workers=1)
    sec = time.perf_counter() - start
    add("end to end, 1 process", run.summary["html_responses"], sec, f"kept {run.summary['documents_kept']}")
    start = time.perf_counter()
    run = run_pipeline(shards, config, workers=workers)
    sec = time.perf_counter() - start
    n = run.summary["html_responses"]
    add(
        f"end to end, {workers} processes",
        n,
        sec,
        f"{len(shards)} shards; {n / sec / workers:.1f} docs/s per core; kept {run.summary['documents_kept']}",
    )
    return rows


# --- main -------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} cores visible{load}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/web_bench"), help="download / WARC cache dir")
    parser.add_argument("--pages", type=int, default=0, help="pages to use (0: all, about 3,100)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel end-to-end run")
    parser.add_argument("--per-source", type=int, default=200, help="pages per source for the extractor comparison")
    parser.add_argument("--part", choices=("all", "extractors", "stages"), default="all")
    args = parser.parse_args(argv)

    root = ensure_packages(args.cache)
    files = html_files(root)
    if args.pages:
        files = files[: args.pages]
    print(f"# web pipeline benchmark, {date.today().isoformat()}\n# device: {machine()}\n# pages: {len(files)}\n")

    if args.part in ("all", "extractors"):
        rows = compare_extractors(extractor_samples(files, args.per_source))
        print("| source | extractor | pages | ms/page | precision | recall | F1 | median F1 | empty | lines/page |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['source']} | {r['extractor']} | {r['pages']} | {r['ms_per_page']:.1f} "
                f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['median_f1']:.3f} "
                f"| {r['empty']} | {r['lines_per_page']:.1f} |"
            )
        print()

    if args.part in ("all", "stages"):
        whole, shards = write_bench_warcs(files, args.cache, args.workers)
        size = whole.stat().st_size / 1e6
        print(f"WARC: {whole.name}, {size:.1f} MB gzipped\n")
        rows = stage_throughput(whole, shards, args.workers)
        print(f"# device after the run: {machine()}\n")
        print("| stage | docs | seconds | docs/s per core | note |")
        print("|---|---:|---:|---:|---|")
        for r in rows:
            print(f"| {r['stage']} | {r['docs']} | {r['seconds']:.2f} | {r['docs_per_s']:.1f} | {r['note']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
