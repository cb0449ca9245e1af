"""Outputs complete or absent.

The atomic writer, the one jsonl writer, and the corpus build and web pipeline interrupted and rerun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from minimind_hf.utils.atomic_files import atomic_write, atomic_write_text, temporary_name
from minimind_hf.utils.jsonl import read_jsonl, write_jsonl
from tests.paths import FIXTURES, ROOT

CORPUS = FIXTURES / "corpus"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp-*"))


def test_an_error_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "out.jsonl", "old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("half of the new")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old\n" and _leftovers(tmp_path) == []
    with atomic_write(path, "wb") as handle:
        handle.write(b"new\n")
    assert path.read_bytes() == b"new\n" and _leftovers(tmp_path) == []


def test_write_jsonl_streams_a_generator_and_an_error_keeps_the_old_file(tmp_path):
    path = tmp_path / "sub" / "rows.jsonl"
    seen = []

    def rows(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise RuntimeError("source failed")
            seen.append(i)  # produced one at a time, as the writer asks for them
            yield {"en": f"rate {i}", "zh": f"利率 {i}"}

    assert write_jsonl(path, rows(3)) == 3 and seen == [0, 1, 2]
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == '{"en": "rate 0", "zh": "利率 0"}' and text.endswith("\n")  # not \\u-escaped
    assert [row for _, row in read_jsonl(path)] == [{"en": f"rate {i}", "zh": f"利率 {i}"} for i in range(3)]
    with pytest.raises(RuntimeError):
        write_jsonl(path, rows(5, fail_at=2))
    assert path.read_text(encoding="utf-8") == text and _leftovers(tmp_path) == []


def test_jsonl_rows_are_written_in_one_place():
    """Every jsonl file of the project goes through ``minimind_hf.utils.jsonl``.

    Pretty-printed single documents, written with ``indent=``, are not jsonl.
    """
    import re

    by_hand = re.compile(r"json\.dumps\((?!.*indent=).*\) \+ \"\\n\"")
    found = [
        f"{path.relative_to(ROOT)}:{no}"
        for folder in ("minimind_hf", "data_tools", "benchmarks", "scripts")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "jsonl.py"
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if by_hand.search(line) and "ensure_ascii=False" in line
    ]
    assert found == []


# the writer alone, without importing minimind_hf (and transformers) in the child
_WRITER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("atomic_files", sys.argv[1])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
with module.atomic_write(sys.argv[2]) as handle:
    handle.write("partial line"); handle.flush()
    print("writing", flush=True); time.sleep(60)
"""


def test_sigkill_mid_write_leaves_the_previous_file_in_place(tmp_path):
    path = atomic_write_text(tmp_path / "data.jsonl", "complete\n")
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(ROOT / "minimind_hf" / "utils" / "atomic_files.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "writing"
    assert temporary_name(path).name.startswith(".data.jsonl.tmp-")
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert path.read_text() == "complete\n"  # never the half-written one
    assert _leftovers(tmp_path) == [f".data.jsonl.tmp-{child.pid}"]  # the dead writer's temporary, hidden
    atomic_write_text(path, "rewritten\n")  # the next write clears it away
    assert path.read_text() == "rewritten\n" and _leftovers(tmp_path) == []


# ---- the corpus build -------------------------------------------------------------------------------------


def _stage_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jsonl"))}


def _card_without_timing(folder: Path) -> list[str]:
    return [
        line
        for line in (folder / "card.md").read_text(encoding="utf-8").splitlines()
        if not line.startswith("Build time:")
    ]


def test_corpus_build_interrupted_then_rerun_is_byte_identical(tmp_path, monkeypatch):
    from data_tools.corpus import build as build_module
    from data_tools.corpus import stages

    reference = tmp_path / "reference"
    build_module.build(tmp_path / "cache", reference, CORPUS / "sources.yaml", count_tokens=False)

    out = tmp_path / "data"
    real, calls = stages.parallel_record, {"n": 0}

    def interrupted(pair):
        calls["n"] += 1
        if calls["n"] == 3:  # in the middle of writing sft.test.jsonl
            raise KeyboardInterrupt
        return real(pair)

    monkeypatch.setattr(stages, "parallel_record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_module.build(tmp_path / "cache", out, CORPUS / "sources.yaml", count_tokens=False)
    written = _stage_files(out)
    assert set(written) == {"sft.jsonl", "sft.validation.jsonl"}  # the files before it, complete
    assert all(written[name] == (reference / name).read_bytes() for name in written)
    assert _leftovers(out) == []

    monkeypatch.setattr(stages, "parallel_record", real)
    build_module.build(tmp_path / "cache", out, CORPUS / "sources.yaml", count_tokens=False)
    assert _stage_files(out) == _stage_files(reference) and len(_stage_files(out)) == 10
    assert _card_without_timing(out) == _card_without_timing(reference)
    assert _leftovers(out) == []


_DYING_APT = r"""#!/usr/bin/env bash
# a stand-in apt-get killed half-way through its download unless the download is allowed to finish
printf 'half a pack' > demo_1.0-1_all.deb
if [ -z "$APT_FINISHES" ]; then kill -9 $$; fi
printf 'pinned' > demo_1.0-1_all.deb
"""


def test_an_interrupted_download_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    import hashlib

    from data_tools.corpus.fetch import download
    from data_tools.corpus.records import CorpusError
    from data_tools.corpus.sources import Artefact

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "apt-get").write_text(_DYING_APT)
    (tmp_path / "bin" / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    art = Artefact(
        name="demo", registry="apt", package="demo", version="1.0-1", sha256=hashlib.sha256(b"pinned").hexdigest()
    )
    with pytest.raises(CorpusError):
        download(art, tmp_path / "cache")
    assert list((tmp_path / "cache" / "apt").glob("*.deb")) == []  # no truncated file for the rerun to reject
    monkeypatch.setenv("APT_FINISHES", "1")
    assert download(art, tmp_path / "cache").read_bytes() == b"pinned"  # the rerun just downloads


# ---- the web pipeline -------------------------------------------------------------------------------------


def _web(warc: Path, out: Path) -> int:
    from data_tools.web.__main__ import main

    return main(
        [
            "--warc",
            str(warc),
            "--output",
            str(out / "cleaned.jsonl"),
            "--rejected",
            str(out / "rejected.jsonl"),
            "--stats",
            str(out / "stats.json"),
            "--no-progress",
            "--workers",
            "1",
        ]
    )


def test_web_pipeline_interrupted_then_rerun_is_byte_identical(tmp_path, monkeypatch, capsys):
    from data_tools.web import steps
    from data_tools.web.write import write_warc
    from tests.data_tools.web.test_pipeline import planted_pages

    warc = tmp_path / "planted.warc.gz"
    write_warc(warc, planted_pages())
    reference = tmp_path / "reference"
    assert _web(warc, reference) == 0
    out = tmp_path / "web"
    real, calls = steps.WebDocument.to_record, {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(steps.WebDocument, "to_record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _web(warc, out)
    assert sorted(os.listdir(out)) == []  # no half-written output under any name
    monkeypatch.setattr(steps.WebDocument, "to_record", real)
    assert _web(warc, out) == 0
    for name in ("cleaned.jsonl", "rejected.jsonl"):
        assert (out / name).read_bytes() == (reference / name).read_bytes()
    assert len((out / "cleaned.jsonl").read_text().splitlines()) == 2
    stats, expected = (_without_timing(json.loads((d / "stats.json").read_text())) for d in (out, reference))
    assert stats == expected and stats["documents_kept"] == 2


def _without_timing(value):
    """The stats with the wall-clock figures (``seconds``, ``..._per_second``) left out."""
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k != "seconds" and not k.endswith("_per_second")}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value
