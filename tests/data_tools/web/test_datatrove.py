"""The datatrove blocks give the same result as the plain pipeline, under LocalPipelineExecutor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("datatrove")

from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.base import PipelineStep  # noqa: E402

from data_tools.web.datatrove_steps import (  # noqa: E402
    GopherQuality,
    HtmlToText,
    QualityRuleFilter,
    WarcHtmlReader,
    web_pipeline,
)
from data_tools.web.filters import C4QualityFilter  # noqa: E402
from data_tools.web.pipeline import run_pipeline  # noqa: E402
from data_tools.web.write import PageToWrite, write_warc  # noqa: E402
from tests import paths

FIXTURES = paths.FIXTURES / "warc"


class CollectJsonl(PipelineStep):
    """Test sink: appends each document as a JSON line to a file (the executor deep-copies steps)."""

    name = "collect"
    type = "test"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = str(path)

    def run(self, data, rank: int = 0, world_size: int = 1):
        with open(self.path, "a", encoding="utf-8") as fh:
            for doc in data:
                fh.write(json.dumps({"text": doc.text, "id": doc.id, **doc.metadata}, ensure_ascii=False) + "\n")
                yield doc


@pytest.fixture()
def warc_dir(tmp_path) -> Path:
    folder = tmp_path / "warcs"
    folder.mkdir()
    shutil.copy(FIXTURES / "iana-subset.warc.gz", folder / "a-iana.warc.gz")
    shutil.copy(FIXTURES / "example.arc.gz", folder / "b-example.arc.gz")
    en = "".join(
        f"<p>{s}</p>"
        for s in [
            "The coupon of a bond is the interest it pays each year, written as a share of its face value.",
            "A bond with a face value of one thousand dollars and a five percent coupon pays fifty dollars a year.",
            "Most bonds pay their coupon in two parts, one every six months, until the bond matures.",
            "The current yield divides the annual coupon by the price that the bond trades at today.",
            "When the price of the bond is below its face value, the current yield is higher than the coupon rate.",
            "Write to desk@example.com with any questions about this guide.",
        ]
    )
    html = f"<html><body><nav>Menu</nav><article>{en}</article></body></html>".encode()
    write_warc(
        folder / "c-planted.warc.gz",
        [
            PageToWrite("http://example.org/a", html),
            PageToWrite("http://example.org/a-copy", html),
        ],
    )
    return folder


def total(value) -> int:
    """A datatrove stat: a plain count, or a dict with its ``total``."""
    return value["total"] if isinstance(value, dict) else value


def run_datatrove(steps, tmp_path: Path) -> list[dict]:
    out = tmp_path / "collected.jsonl"
    LocalPipelineExecutor(
        pipeline=[*steps, CollectJsonl(out)],
        tasks=1,
        workers=1,
        logging_dir=str(tmp_path / "logs"),
    ).run()
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []


def test_same_documents_as_the_plain_pipeline(warc_dir, tmp_path):
    docs = run_datatrove(web_pipeline(str(warc_dir)), tmp_path)
    plain = run_pipeline(sorted(warc_dir.iterdir()))
    assert [d["url"] for d in docs] == [d.url for d in plain.documents]
    assert [d["text"] for d in docs] == [d.text for d in plain.documents]
    assert [d["language"] for d in docs] == [d.lang for d in plain.documents]
    assert len(docs) >= 5
    assert "http://example.org/a" in [d["url"] for d in docs]
    assert "http://example.org/a-copy" not in [d["url"] for d in docs]
    assert any("<EMAIL>" in d["text"] for d in docs)
    stats = json.loads((tmp_path / "logs" / "stats.json").read_text())
    reader = next(s for s in stats if "WARC HTML" in s["name"])
    assert total(reader["stats"]["dropped_request_record"]) > 0
    dedup = next(s for s in stats if "Exact dedup" in s["name"])
    assert total(dedup["stats"]["dropped_exact_duplicate"]) == 1


def test_reader_and_rule_blocks(warc_dir, tmp_path):
    docs = run_datatrove(
        [WarcHtmlReader(str(warc_dir), glob_pattern="a-*"), HtmlToText(), GopherQuality(min_doc_words=50_000)],
        tmp_path,
    )
    assert docs == []  # every page is shorter than 50,000 words
    stats = json.loads((tmp_path / "logs" / "stats.json").read_text())
    gopher = next(s for s in stats if "gopher_quality" in s["name"])
    assert total(gopher["stats"]["dropped_too_few_words"]) == 16


def test_text_editing_rule_updates_the_document():
    from datatrove.data import Document

    step = QualityRuleFilter(C4QualityFilter(min_sentences=1))
    doc = Document(text="Menu\nThe bond pays a fixed coupon every year.", id="x")
    assert step.filter(doc) is True
    assert doc.text == "The bond pays a fixed coupon every year."
    assert "c4_quality" in step.name


def test_jsonl_writer_output(warc_dir, tmp_path):
    pytest.importorskip("orjson")
    from datatrove.pipeline.writers import JsonlWriter

    LocalPipelineExecutor(
        pipeline=[*web_pipeline(str(warc_dir)), JsonlWriter(str(tmp_path / "out"), compression=None)],
        tasks=1,
        workers=1,
        logging_dir=str(tmp_path / "logs2"),
    ).run()
    lines = (tmp_path / "out" / "00000.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert first["metadata"]["url"] == "http://www.iana.org/" and first["metadata"]["language"] == "en"
