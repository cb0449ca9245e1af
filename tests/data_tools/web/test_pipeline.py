"""The whole pipeline and its command line, on a WARC built with planted cases and on real pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_tools.stats import Stats, StepStats
from data_tools.web.__main__ import main
from data_tools.web.filters import GopherQualityFilter
from data_tools.web.pipeline import WebPipelineConfig, process_file, run_pipeline, write_jsonl
from data_tools.web.write import PageToWrite, write_warc
from tests import paths

FIXTURES = paths.FIXTURES / "warc"

EN = [
    "Inflation measures how fast the general level of prices rises over a year.",
    "When inflation is high, the same amount of money buys fewer goods and services than before.",
    "Central banks try to keep inflation low and stable, often close to two percent a year.",
    "To slow inflation down, a central bank can raise its policy rate, which makes borrowing more expensive.",
    "Higher borrowing costs cool spending and investment, and with time the pressure on prices eases.",
    "Savers should compare the interest they earn with the inflation rate "
    "to see whether their money grows in real terms.",
    "For questions write to research.desk@example-bank.com or call (555) 201-7788 during office hours.",
]
EN2 = [
    "A stock split increases the number of shares a company has without changing what the company is worth.",
    "After a two-for-one split, each shareholder owns twice as many shares, "
    "and each share trades at about half the price.",
    "Companies often split their shares when the price has risen so far that small investors find it hard to buy them.",
    "The split itself does not create value, but some studies find that the announcement "
    "is read as a sign of confidence.",
    "A reverse split does the opposite and is sometimes used to keep a share price "
    "above the minimum that an exchange requires.",
]
ZH = [
    "通貨膨脹是衡量一般物價水準在一年內上漲速度的指標。",
    "當通膨很高時，同樣的金額能買到的商品和服務就比以前少。",
    "中央銀行會設法讓通膨維持在低而穩定的水準，通常接近每年百分之二。",
    "為了抑制通膨，中央銀行可以調升政策利率，讓借錢的成本變高。",
    "借款成本上升會讓消費和投資降溫，物價的壓力也會隨著時間慢慢減輕。",
    "儲蓄的人應該把賺到的利息和通膨率相比，才能知道自己的錢實際上有沒有成長。",
]
FR = [
    "L'inflation mesure la vitesse à laquelle le niveau général des prix augmente sur une année.",
    "Quand l'inflation est élevée, la même somme d'argent achète moins de biens et de services qu'avant.",
    "Les banques centrales essaient de maintenir une inflation basse et stable, souvent proche de deux pour cent.",
    "Pour ralentir l'inflation, une banque centrale peut relever son taux directeur, ce qui rend le crédit plus cher.",
    "Des coûts d'emprunt plus élevés refroidissent les dépenses et l'investissement, "
    "et la pression sur les prix diminue.",
]


def page(paragraphs: list[str], nav: str = "Home About Contact", lang: str = "en") -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>t</title></head><body>'
        f"<nav><a href='/'>{nav}</a></nav><main><article><h1>Inflation</h1>{body}</article></main>"
        f"<footer>Copyright 2024</footer></body></html>"
    ).encode()


def planted_pages() -> list[PageToWrite]:
    near = [p.replace("a year", "each year") for p in EN]
    return [
        PageToWrite("http://example.org/en", page(EN)),
        PageToWrite("http://mirror.example.net/en", page(EN, nav="Start Impressum")),  # exact duplicate
        PageToWrite("http://example.org/en-copy", page(near[:-1] + EN[-1:])),  # near duplicate
        PageToWrite("http://example.org/zh", page(ZH, lang="zh-Hant")),
        PageToWrite("http://example.org/fr", page(FR, lang="fr")),
        PageToWrite("http://example.org/menu", page(["Login.", "Sign up now."])),
        PageToWrite("http://example.org/rude", page(EN[:6] + ["This is total bullshit, said one reader."])),
        PageToWrite("http://example.org/logo.png", b"\x89PNG\r\n", content_type="image/png"),
        PageToWrite("http://example.org/gone", page(EN), status="404 Not Found"),
    ]


@pytest.fixture()
def planted_warc(tmp_path) -> Path:
    path = tmp_path / "planted.warc.gz"
    write_warc(path, planted_pages())
    return path


def check_stage_chain(stats: Stats) -> None:
    """Every stage's counts add up, and each stage sees what the previous one kept."""
    stages = list(stats.steps.values())
    for st in stages:
        assert st.seen == st.kept + st.n_dropped, st.name
    for prev, nxt in zip(stages, stages[1:], strict=False):
        assert nxt.seen == prev.kept, (prev.name, nxt.name)


def test_pipeline_on_planted_cases(planted_warc):
    run = run_pipeline([planted_warc])
    check_stage_chain(run.stats)
    assert [d.url for d in run.documents] == ["http://example.org/en", "http://example.org/zh"]
    s = {name: st for name, st in run.stats.steps.items()}
    assert list(s) == [
        "read",
        "extract",
        "clean",
        "language",
        "gopher_repetition",
        "gopher_quality",
        "fineweb_quality",
        "c4_quality",
        "badwords",
        "pii",
        "minhash",
        "exact_dedup",
        "near_dedup",
    ]
    assert s["read"].seen == 10 and s["read"].kept == 7
    assert s["read"].dropped == {"warcinfo_record": 1, "not_html": 1, "http_404": 1}
    assert s["language"].dropped == {"language_not_kept": 1}
    assert s["language"].notes["detected fr"] == 1
    assert s["gopher_quality"].dropped == {"too_few_words": 1}
    assert s["badwords"].dropped == {"badword": 1}
    assert s["pii"].notes == {"replaced email": 3, "replaced phone": 3, "documents changed": 3}
    assert s["exact_dedup"].dropped == {"exact_duplicate": 1}
    assert s["near_dedup"].dropped == {"near_duplicate": 1}

    en, zh = run.documents
    assert en.lang == "en" and en.lang_score > 0.9 and zh.lang == "zh"
    assert "<EMAIL>" in en.text and "<PHONE>" in en.text and "example-bank" not in en.text
    assert "Home" not in en.text and "Copyright" not in en.text
    assert zh.text == "\n".join(ZH)
    assert run.summary["documents_kept"] == 2 and run.summary["kept_by_language"] == {"en": 1, "zh": 1}
    assert run.summary["html_responses"] == 7 and run.summary["records_read"] == 10


def test_config_changes_what_is_kept(planted_warc):
    loose = WebPipelineConfig(
        langs=None,
        filters=[GopherQualityFilter(min_doc_words=2, min_stop_words=0)],
        replace_pii=False,
        near_dedup=False,
    )
    run = run_pipeline([planted_warc], loose)
    check_stage_chain(run.stats)
    urls = [d.url for d in run.documents]
    assert "http://example.org/fr" in urls and "http://example.org/en-copy" in urls
    assert "research.desk@example-bank.com" in run.documents[0].text
    assert "near_dedup" not in run.stats.steps and "pii" not in run.stats.steps


def test_trafilatura_extractor_gives_the_same_decisions(planted_warc):
    run = run_pipeline([planted_warc], WebPipelineConfig(extractor="trafilatura"))
    assert [d.url for d in run.documents] == ["http://example.org/en", "http://example.org/zh"]


def test_workers_do_not_change_the_output(planted_warc, tmp_path):
    second = tmp_path / "second.warc.gz"
    write_warc(
        second,
        [
            PageToWrite("http://example.org/zh-again", page(ZH, nav="首頁")),
            PageToWrite("http://example.org/en2", page(EN2)),
            PageToWrite("http://example.org/en-reordered", page(EN[2:] + EN[:2])),
        ],
    )  # near duplicate
    one = run_pipeline([planted_warc, second], workers=1)
    two = run_pipeline([planted_warc, second], workers=2)
    assert [d.to_record() for d in one.documents] == [d.to_record() for d in two.documents]
    counts = lambda run: [{k: v for k, v in st.items() if k != "seconds"} for st in run.stats.to_dict()["stages"]]  # noqa: E731
    assert counts(one) == counts(two)
    assert [d.url for d in one.documents] == [
        "http://example.org/en",
        "http://example.org/zh",
        "http://example.org/en2",
    ]


def test_real_crawl_counts():
    stats = process_file(FIXTURES / "iana-subset.warc.gz", WebPipelineConfig()).stats
    read = stats.steps["read"]
    assert (read.seen, read.kept) == (91, 16)
    assert stats.steps["extract"].kept == 16
    assert stats.steps["language"].notes["detected en"] == 16


def test_missing_input_is_named():
    with pytest.raises(FileNotFoundError, match="nope.warc.gz"):
        run_pipeline(["nope.warc.gz"])


def test_write_jsonl_and_record_format(planted_warc, tmp_path):
    run = run_pipeline([planted_warc])
    out = tmp_path / "out.jsonl"
    assert write_jsonl(run.documents, out) == 2
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert set(records[0]) == {"text", "url", "lang", "lang_score", "warc", "record_id", "date"}
    assert records[1]["lang"] == "zh" and records[1]["warc"] == "planted.warc.gz"


def test_stats_merge_and_table():
    a, b = Stats(), Stats()
    a.step("read").drop("http_404")
    a.step("read").keep()
    b.step("read").keep()
    b.step("read").note("x", 3)
    a.merge(b)
    read = a.steps["read"]
    assert (read.seen, read.kept, read.n_dropped, read.notes["x"]) == (3, 2, 1, 3)
    table = a.format_table()
    assert "read" in table and "drop: http_404" in table and "note: x" in table
    with pytest.raises(ValueError, match="cannot merge"):
        StepStats("a").merge(StepStats("b"))


# --- command line -----------------------------------------------------------------------------


def test_cli(planted_warc, tmp_path, capsys):
    out = tmp_path / "out" / "cleaned.jsonl"
    rejected = tmp_path / "rejected.jsonl"
    assert main(["--warc", str(planted_warc), "--output", str(out), "--no-progress", "--rejected", str(rejected)]) == 0
    printed = capsys.readouterr().out
    for stage in ("read", "extract", "language", "gopher_quality", "badwords", "exact_dedup", "near_dedup"):
        assert stage in printed
    assert "drop: not_html" in printed and "kept 2 (en: 1, zh: 1)" in printed
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    stats = json.loads((tmp_path / "out" / "cleaned.jsonl.stats.json").read_text(encoding="utf-8"))
    assert stats["documents_kept"] == 2
    assert [s["stage"] for s in stats["stages"]][:3] == ["read", "extract", "clean"]
    assert stats["stages"][0]["drop_reasons"]["http_404"] == 1
    rejects = {r["url"]: (r["stage"], r["reason"]) for r in map(json.loads, rejected.read_text().splitlines())}
    assert rejects == {
        "http://mirror.example.net/en": ("exact_dedup", "exact_duplicate"),
        "http://example.org/en-copy": ("near_dedup", "near_duplicate"),
        "http://example.org/fr": ("language", "language_not_kept"),
        "http://example.org/menu": ("gopher_quality", "too_few_words"),
        "http://example.org/rude": ("badwords", "badword"),
    }


def test_cli_options(planted_warc, tmp_path, capsys):
    out, stats_path = tmp_path / "o.jsonl", tmp_path / "s.json"
    argv = [
        "--warc",
        str(planted_warc),
        "--output",
        str(out),
        "--stats",
        str(stats_path),
        "--no-progress",
        "--langs",
        "en,fr",
        "--disable",
        "badwords",
        "--set",
        "gopher_quality.min_doc_words=2",
        "--set",
        "gopher_quality.min_stop_words=null",
        "--no-near-dedup",
        "--extractor",
        "trafilatura",
    ]
    assert main(argv) == 0
    urls = [json.loads(line)["url"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert "http://example.org/zh" not in urls and "http://example.org/fr" in urls
    assert "http://example.org/rude" in urls and "http://example.org/en-copy" in urls
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    assert stats["extractor"] == "trafilatura" and stats["langs"] == ["en", "fr"]
    assert "badwords" not in [s["stage"] for s in stats["stages"]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "gopher_quality.nope=1"], "unknown option"),
        (["--set", "nofilter.x=1"], "unknown or disabled filter"),
        (["--set", "gopher_quality"], "expected FILTER.OPTION=VALUE"),
        (["--disable", "nofilter"], "unknown filter"),
        (["--bands", "20"], "exceeds num_perm"),
    ],
)
def test_cli_errors(planted_warc, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit):
        main(["--warc", str(planted_warc), "--output", str(tmp_path / "o.jsonl"), *extra])
    assert message in capsys.readouterr().err


def test_cli_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--warc", str(tmp_path / "missing.warc.gz"), "--output", str(tmp_path / "o.jsonl")])
    assert "missing.warc.gz" in capsys.readouterr().err


def test_hw1_options_limit_text_output_and_summary(planted_warc, tmp_path, capsys):
    """--limit N reads N WARC records (HW1's --num_records); --text-output writes one document per line."""
    out, text = tmp_path / "o.jsonl", tmp_path / "o.txt"
    argv = [
        "--warc",
        str(planted_warc),
        "--output",
        str(out),
        "--text-output",
        str(text),
        "--no-progress",
        "--pii-placeholder",
        "phone=[PHONE]",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    lines = text.read_text(encoding="utf-8").splitlines()
    assert lines == [" ".join(r["text"].splitlines()) for r in records] and len(lines) == 2
    assert "[PHONE]" in text.read_text(encoding="utf-8")
    stats = json.loads((tmp_path / "o.jsonl.stats.json").read_text(encoding="utf-8"))
    assert f"records processed {stats['records_read']}, passed 2" in printed

    assert main([*argv, "--limit", "4"]) == 0
    stats = json.loads((tmp_path / "o.jsonl.stats.json").read_text(encoding="utf-8"))
    assert stats["records_read"] == 4 and stats["record_limit"] == 4
    assert "records processed 4, passed 1" in capsys.readouterr().out  # warcinfo + 3 pages: en, 2 duplicates


def test_limit_spans_several_files(planted_warc, tmp_path):
    second = tmp_path / "second.warc.gz"
    write_warc(second, planted_pages())
    full = run_pipeline([planted_warc], WebPipelineConfig())
    first_file_records = full.summary["records_read"]
    run = run_pipeline([planted_warc, second], WebPipelineConfig(max_records=first_file_records + 2), workers=2)
    assert run.summary["records_read"] == first_file_records + 2
    with pytest.raises(ValueError, match="max_records"):
        WebPipelineConfig(max_records=0)
