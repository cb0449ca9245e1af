"""The corpus build end to end on fixtures: sources, fetch/checksums, stage files, splits, sample."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from data_tools.corpus.build import _fair_caps, build
from data_tools.corpus.cli import main as cli_main
from data_tools.corpus.fetch import ChecksumError, download, extract, fetch, verify
from data_tools.corpus.records import CorpusError
from data_tools.corpus.sample import en_from_prompt, make_sample
from data_tools.corpus.sources import Artefact, load_sources
from data_tools.corpus.textutil import normalise_en
from minimind_hf.data.layout import DATA_CARD, DATA_STAGES, DATA_STATS, SAMPLE_CARD, SPLITS, split_file
from tests.paths import FIXTURES, ROOT

FIX = FIXTURES / "corpus"
STAGE_FILES = (
    "pretrain.jsonl",
    "pretrain.validation.jsonl",
    "sft.jsonl",
    "sft.validation.jsonl",
    "sft.test.jsonl",
    "lora.jsonl",
    "lora.validation.jsonl",
    "lora.test.jsonl",
    "dpo.jsonl",
    "dpo.validation.jsonl",
)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    build(out / "cache", out / "data", FIX / "sources.yaml", count_tokens=False)
    return out / "data"


# ---- source list ----------------------------------------------------------------------------------


def test_shipped_source_list_is_complete():
    slist = load_sources()
    roles = {s.role for s in slist.enabled()}
    assert roles == {"parallel", "finance", "mono_en", "mono_zh"}
    for art in slist.artefacts.values():
        assert art.licence, art.name
        if art.registry != "local":
            assert art.version and len(art.sha256) == 64, art.name
    adapters = {s.adapter for s in slist.sources}
    assert {
        "gettext",
        "html_by_id",
        "html_by_order",
        "i18n_json",
        "cldr",
        "gnucash_accounts",
        "text",
        "hub",
    } <= adapters
    assert all(not s.enabled for s in slist.sources if s.adapter == "hub")  # need a network


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("artefacts: {a: {registry: ftp}}\nsources: []\n", "'registry' must be one of"),
        ("artefacts: {a: {registry: apt, package: p, version: '1'}}\nsources: []\n", "missing 'sha256'"),
        (
            "artefacts: {}\nsources:\n"
            "  - {name: s, role: parallel, adapter: gettext, files: [{artefact: nope, glob: x}]}\n",
            "unknown artefact 'nope'",
        ),
        ("artefacts: {}\nsources:\n  - {name: s, role: other, adapter: gettext}\n", "'role' must be one of"),
        ("sources:\n  - name: [unclosed\n", r"bad\.yaml:\d+: invalid YAML"),
    ],
)
def test_source_list_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        load_sources(path)


# ---- fetch: checksums and extraction ---------------------------------------------------------------


def _sdist(path: Path, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_checksum_mismatch_is_a_clear_error(tmp_path):
    cache = tmp_path / "cache"
    (cache / "pypi").mkdir(parents=True)
    real = _sdist(cache / "pypi" / "demo-1.0.tar.gz", {"demo-1.0/a.txt": b"hello"})
    art = Artefact(name="demo", registry="pypi", package="demo", version="1.0", sha256="0" * 64)
    with pytest.raises(ChecksumError, match=rf"demo-1\.0\.tar\.gz: sha256 mismatch: expected 0{{64}}, got {real}"):
        download(art, cache)
    verify(cache / "pypi" / "demo-1.0.tar.gz", real)  # the right checksum passes


def test_fetch_skips_download_when_cached_and_extracts_once(tmp_path):
    cache = tmp_path / "cache"
    (cache / "pypi").mkdir(parents=True)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("zh_TW/messages.txt", "內容")
    sha = _sdist(
        cache / "pypi" / "demo-1.0.tar.gz", {"demo-1.0/a.txt": b"hello", "demo-1.0/locales.zip": inner.getvalue()}
    )
    art = Artefact(
        name="demo", registry="pypi", package="demo", version="1.0", sha256=sha, unzip=("demo-1.0/locales.zip",)
    )
    root = fetch(art, cache)
    assert (root / "demo-1.0/a.txt").read_bytes() == b"hello"
    assert (root / "demo-1.0/locales.zip.d/zh_TW/messages.txt").read_text(encoding="utf-8") == "內容"
    (root / "demo-1.0/a.txt").write_text("changed")
    assert fetch(art, cache) == root and (root / "demo-1.0/a.txt").read_text() == "changed"  # not re-extracted


def test_deb_extraction_without_dpkg(tmp_path, monkeypatch):
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:xz") as tf:
        data = "每期的利率。".encode()
        info = tarfile.TarInfo("./usr/share/doc/demo/x.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    body = payload.getvalue()

    def member(name: str, data: bytes) -> bytes:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        return header + data + (b"\n" if len(data) % 2 else b"")

    deb = tmp_path / "demo_1.0_all.deb"
    deb.write_bytes(b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("data.tar.xz", body))
    monkeypatch.setattr("data_tools.corpus.fetch.shutil.which", lambda name: None)
    art = Artefact(
        name="demo", registry="apt", package="demo", version="1.0", sha256=hashlib.sha256(deb.read_bytes()).hexdigest()
    )
    root = extract(art, deb, tmp_path / "cache")
    assert (root / "usr/share/doc/demo/x.txt").read_text(encoding="utf-8") == "每期的利率。"


def test_missing_local_artefact(tmp_path):
    art = Artefact(name="loc", registry="local", path=str(tmp_path / "absent"))
    with pytest.raises(CorpusError, match="absent is not a directory"):
        fetch(art, tmp_path)


# ---- the build on fixtures --------------------------------------------------------------------------


def test_build_writes_every_stage_file(built):
    for name in STAGE_FILES:
        assert (built / name).is_file(), name
    contract = {split_file(stage, split) for stage in DATA_STAGES for split in SPLITS}
    assert {p.name for p in built.glob("*.jsonl")} == set(STAGE_FILES) <= contract  # no file nothing reads
    assert {p.name for p in built.iterdir() if not p.name.endswith(".jsonl")} == {DATA_CARD, DATA_STATS}
    assert _rows(built / "sft.jsonl") and _rows(built / "pretrain.jsonl") and _rows(built / "dpo.jsonl")
    sft = _rows(built / "sft.jsonl")
    assert all([t["role"] for t in r["conversations"]] == ["user", "assistant"] for r in sft)
    lora = _rows(built / "lora.jsonl") + _rows(built / "lora.validation.jsonl") + _rows(built / "lora.test.jsonl")
    assert {"Investment Accounts", "Dividend Income"} <= {r["en"] for r in lora}  # the finance source
    assert all(set(r) >= {"en", "zh", "source", "id"} for r in lora)
    for r in _rows(built / "dpo.jsonl"):
        assert r["chosen"][:-1] == r["rejected"][:-1] and r["chosen"][-1] != r["rejected"][-1]
        assert r["kind"] in ("simplified", "truncated", "copy")
    card = (built / "card.md").read_text(encoding="utf-8")
    for name in ("demo-help", "demo-catalog", "demo-wiki", "parallel.scripts", "Pretraining mix"):
        assert name in card


def test_build_output_loads_with_the_training_loader(built, tmp_path):
    from minimind_hf.data import load_jsonl_dataset

    kinds = {"pretrain": "pretrain", "sft": "chat", "lora": "chat", "dpo": "dpo"}
    for name in STAGE_FILES:
        if not _rows(built / name):
            continue
        ds = load_jsonl_dataset(str(built / name), kind=kinds[name.split(".")[0]], cache_dir=str(tmp_path / "hf"))
        assert len(ds) == len(_rows(built / name))


def test_splits_are_disjoint_across_all_files(built):
    seen: dict[str, set[str]] = defaultdict(set)
    for name in STAGE_FILES:
        split = "validation" if ".validation." in name else "test" if ".test." in name else "train"
        if name.startswith("pretrain"):
            continue
        for r in _rows(built / name):
            if "en" in r:
                en = r["en"]
            else:
                turns = r.get("conversations") or r["chosen"]
                en = en_from_prompt(turns[-2]["content"])
            seen[normalise_en(en)].add(split)
    assert seen and all(len(s) == 1 for s in seen.values())
    held_out = {k for k, s in seen.items() if s & {"validation", "test"}}
    assert held_out  # the fixture shares are large enough to hold some pairs out
    pretrain = "\n".join(r["text"] for r in _rows(built / "pretrain.jsonl"))
    for line in pretrain.splitlines():
        assert normalise_en(line) not in held_out


def test_held_out_rows_have_no_near_duplicate_or_reference_in_training(built, capsys):
    from data_tools.corpus.leaks import check_data_dir

    overlap = check_data_dir(built)
    assert set(overlap) == {"sft.validation.jsonl", "sft.test.jsonl", "lora.validation.jsonl", "lora.test.jsonl"}
    assert sum(o["rows"] for o in overlap.values()) > 0
    for o in overlap.values():
        assert o["english_in_train"] == o["near_duplicate_in_train"] == o["reference_is_a_train_target"] == 0
    stats = json.loads((built / "stats.json").read_text(encoding="utf-8"))
    assert set(stats["heldout_overlap"]) == {"general.validation", "general.test", "finance.validation", "finance.test"}
    notes = stats["tally"]["notes"]["splits"]
    assert notes["groups"] > 0 and "suspect_references" in notes
    card = (built / "card.md").read_text(encoding="utf-8")
    assert "### Held-out checks" in card and "suspect reference" in card
    assert cli_main(["check-splits", "--data", str(built)]) == 0
    assert json.loads(capsys.readouterr().out) == overlap


def test_check_splits_names_the_bad_line(tmp_path):
    from data_tools.corpus.leaks import check_data_dir

    (tmp_path / "sft.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "lora.jsonl").write_text('{"en": "a", "zh": "甲"}\n{"text": "no pair"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"lora\.jsonl:2: neither"):
        check_data_dir(tmp_path)
    with pytest.raises(CorpusError, match="no sft.jsonl, lora.jsonl"):
        check_data_dir(tmp_path / "missing")


def test_simplified_sources_are_converted_and_only_fill_gaps(built):
    pairs = {}
    for name in ("sft.test.jsonl", "lora.jsonl", "lora.validation.jsonl", "lora.test.jsonl"):
        for r in _rows(built / name):
            pairs[r["en"]] = r
    for r in _rows(built / "sft.jsonl") + _rows(built / "sft.validation.jsonl"):
        pairs[en_from_prompt(r["conversations"][0]["content"])] = {"zh": r["conversations"][1]["content"]}
    assert pairs["Rate is the discount rate for a period."]["zh"] == "Rate 是一個週期的貼現率。"  # the zh-TW one wins
    assert "軟體" in pairs["Only in English."]["zh"]  # only zh-CN has it: converted with s2twp


def test_build_is_deterministic(built, tmp_path):
    build(tmp_path / "cache", tmp_path / "again", FIX / "sources.yaml", count_tokens=False)
    for name in STAGE_FILES:
        assert (tmp_path / "again" / name).read_bytes() == (built / name).read_bytes(), name


def test_sample_is_deterministic_and_small(built, tmp_path):
    sizes = {"sft.jsonl": 5, "lora.jsonl": 3, "pretrain.jsonl": 300}
    a = make_sample(built, tmp_path / "a", sizes)
    b = make_sample(built, tmp_path / "b", sizes)
    assert a == b and a["sft.jsonl"] <= 5 and a["lora.jsonl"] <= 3
    for name in a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert sum(len(r["text"].encode()) for r in _rows(tmp_path / "a" / "pretrain.jsonl")) <= 300
    assert "python -m data_tools.corpus sample" in (tmp_path / "a" / "README.md").read_text(encoding="utf-8")
    with pytest.raises(CorpusError, match="missing"):
        make_sample(tmp_path / "nothing", tmp_path / "c")


def test_cli_reports_errors_with_exit_code(tmp_path, capsys):
    assert cli_main(["build", "--sources", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "none.yaml: source list not found" in capsys.readouterr().err


def test_fair_caps():
    assert _fair_caps({"a": 10, "b": 100, "c": 100}, 110) == {"a": 10, "b": 50, "c": 50}
    assert _fair_caps({"a": 10, "b": 20}, 100) == {"a": 10, "b": 20}


def test_committed_sample_is_present_and_valid():
    sample = ROOT / "data" / "sample"
    for name in STAGE_FILES:
        rows = _rows(sample / name)
        assert rows, name
    assert sorted(p.name for p in sample.iterdir()) == sorted([*STAGE_FILES, SAMPLE_CARD])
    assert len(_rows(sample / "sft.jsonl")) >= 1000
    assert all(r["conversations"][-1]["role"] == "assistant" for r in _rows(sample / "sft.jsonl"))


def test_optional_source_without_files_is_skipped(tmp_path):
    text = (FIX / "sources.yaml").read_text(encoding="utf-8").replace("path: ., licence", f"path: {FIX}, licence")
    text = text.replace(
        "sources:\n",
        "  gone: {registry: local, path: /nonexistent/locale, licence: x}\nsources:\n"
        "  - {name: gone-catalogs, role: parallel, adapter: gettext, optional: true, "
        "files: [{artefact: gone, glob: '*.mo'}]}\n",
        1,
    )
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    result = build(tmp_path / "cache", tmp_path / "out", tmp_path / "s.yaml", count_tokens=False)
    assert result.tally.step("skipped_sources").notes["gone-catalogs"] == 1
    assert "Skipped (optional" in (tmp_path / "out" / "card.md").read_text(encoding="utf-8")
    (tmp_path / "s2.yaml").write_text(text.replace("optional: true", "optional: false"), encoding="utf-8")
    with pytest.raises(CorpusError, match="nonexistent/locale is not a directory"):
        build(tmp_path / "cache", tmp_path / "out2", tmp_path / "s2.yaml", count_tokens=False)


# ---- Debian point releases: a stale index, a version that is gone ------------------------------------

FAKE_APT = r"""#!/usr/bin/env bash
# a stand-in apt-get: serves demo 1.0-1 only after `update` (when SERVE_PINNED=1), else only 1.0-2
state="$FAKE_APT_STATE"
echo "$*" >> "$state.calls"
case "$1" in
  update) touch "$state.updated"; exit 0 ;;
  download)
    spec="$2"
    if [ "$spec" = "demo=1.0-1" ]; then
      if [ -f "$state.updated" ] && [ "$SERVE_PINNED" = 1 ]; then printf pinned > demo_1.0-1_all.deb; exit 0; fi
      echo "E: Version '1.0-1' for 'demo' was not found" >&2; exit 100
    fi
    if [ "$spec" = "demo" ]; then printf newer > demo_1.0-2_all.deb; exit 0; fi
    echo "E: Unable to locate package $spec" >&2; exit 100 ;;
esac
exit 1
"""


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    import data_tools.corpus.fetch as fetch_module

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(FAKE_APT)
    (bin_dir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_APT_STATE", str(tmp_path / "apt"))
    monkeypatch.setattr(fetch_module, "_apt_index_refreshed", False)
    return tmp_path / "apt"


def test_stale_apt_index_is_refreshed_then_the_pin_downloads(tmp_path, fake_apt, monkeypatch):
    monkeypatch.setenv("SERVE_PINNED", "1")
    pinned_sha = hashlib.sha256(b"pinned").hexdigest()
    art = Artefact(name="demo", registry="apt", package="demo", version="1.0-1", sha256=pinned_sha)
    subs = []
    path = download(art, tmp_path / "cache", subs)
    assert path.name == "demo_1.0-1_all.deb" and subs == []
    assert Path(f"{fake_apt}.calls").read_text().split("\n")[:3] == [
        "download demo=1.0-1",
        "update",
        "download demo=1.0-1",
    ]


def test_a_vanished_point_release_is_replaced_loudly_and_recorded(tmp_path, fake_apt, monkeypatch, capsys):
    monkeypatch.setenv("SERVE_PINNED", "0")
    art = Artefact(name="demo", registry="apt", package="demo", version="1.0-1", sha256="ab" * 32)
    subs = []
    path = download(art, tmp_path / "cache", subs)
    assert path.read_bytes() == b"newer"
    [sub] = subs
    assert (sub.pinned, sub.taken, sub.taken_sha256) == ("1.0-1", "1.0-2", hashlib.sha256(b"newer").hexdigest())
    assert "no longer serves demo=1.0-1" in capsys.readouterr().err
    # a second build reuses the recorded substitute without asking the registry again, and still reports it
    calls = Path(f"{fake_apt}.calls").read_text()
    again = []
    assert download(art, tmp_path / "cache", again) == path and again == subs
    assert Path(f"{fake_apt}.calls").read_text() == calls


def test_substitutions_reach_the_data_card(built, tmp_path):
    from data_tools.corpus.card import write_card

    stats = json.loads((built / "stats.json").read_text(encoding="utf-8"))
    assert stats["substituted_artefacts"] == []  # the fixture build took every pin as declared
    stats["substituted_artefacts"] = [
        {
            "artefact": "demo",
            "package": "demo",
            "pinned": "1.0-1",
            "pinned_sha256": "ab" * 32,
            "taken": "1.0-2",
            "taken_sha256": "cd" * 32,
            "file": "demo_1.0-2_all.deb",
        }
    ]
    write_card(tmp_path / "card.md", stats, built)
    card = (tmp_path / "card.md").read_text(encoding="utf-8")
    assert "Substituted artefacts" in card and "| demo | demo | 1.0-1 | 1.0-2 | `" + "cd" * 32 + "` |" in card
    assert "Substituted" not in (built / "card.md").read_text(encoding="utf-8")


def test_the_card_counts_monolingual_documents(built):
    stats = json.loads((built / "stats.json").read_text(encoding="utf-8"))
    mono = [r["name"] for r in stats["sources"] if r["role"].startswith("mono")]
    assert mono, "the fixture build has monolingual sources"
    card = (built / "card.md").read_text(encoding="utf-8")
    kept = stats["tally"]["notes"]["pretrain.docs_kept_by_source"]
    for name in mono:
        row = next(line for line in card.splitlines() if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert int(cells[3].replace(",", "")) >= int(cells[4].replace(",", "")) == kept.get(name, 0)
    assert sum(kept.values()) > 0
