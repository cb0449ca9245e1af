"""The data card (``card.md``): counts per source and per filter, licences, the mix, examples."""

from __future__ import annotations

import random
from pathlib import Path

from data_tools.corpus.records import CorpusError
from minimind_hf.data.layout import split_file
from minimind_hf.utils.atomic_files import atomic_write_text
from minimind_hf.utils.jsonl import read_jsonl

DPO_NOTE = (
    "Until a preference-pair tool generates DPO data from a trained model, `dpo.jsonl` takes the "
    "reference translation as `chosen` and a systematically worse answer as `rejected`: the reference "
    "in Simplified script (OpenCC t2s), about its first half (truncated), or the English source copied."
)


def _table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def _examples(path: Path, n: int, seed: int = 0) -> list[dict]:
    if not path.is_file():
        return []
    rows = [row for _, row in read_jsonl(path, error=CorpusError)]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def _short(text: str, n: int = 160) -> str:
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= n else text[: n - 1] + "…"


def _heldout_section(stats: dict) -> list[str]:
    """The held-out checks: suspect references kept out, and what training already covers."""
    notes = stats["tally"]["notes"].get("splits", {})
    overlap = stats.get("heldout_overlap") or {}
    if not notes and not overlap:
        return []
    out = ["### Held-out checks", ""]
    if notes:
        out.append(
            f"{notes.get('suspect_references', 0):,} pairs have a suspect reference (the same Chinese for "
            f"different English texts); {notes.get('suspect_references_kept_out_of_heldout', 0):,} of them "
            f"would have been validation or test pairs and train instead, with "
            f"{notes.get('rows_of_suspect_groups_moved_to_train', 0):,} rows of their groups in all. "
            f"{notes.get('groups', 0):,} split groups."
        )
        out.append("")
    if overlap:
        out.append(
            "Held-out rows that training covers (English: exact or near-duplicate; reference: identical "
            "to a training target):"
        )
        out.append("")
        out.append(
            _table(
                ["held-out set", "rows", "English in train", "near-duplicate in train", "reference is a train target"],
                [
                    [
                        name,
                        f"{o['rows']:,}",
                        f"{o['english_in_train']:,}",
                        f"{o['near_duplicate_in_train']:,}",
                        f"{o['reference_is_a_train_target']:,} ({100 * o['reference_is_a_train_target_share']:.1f}%)",
                    ]
                    for name, o in overlap.items()
                ],
            )
        )
        out.append("")
    return out


def write_card(path: Path, stats: dict, data_dir: Path) -> None:
    """Render ``stats`` (see :func:`data_tools.corpus.build.build`) as a markdown card."""
    files, pairs, tally = stats["files"], stats["pairs"], stats["tally"]
    out = ["# EN → zh-TW corpus: data card", ""]
    out.append(
        "Built offline by `python -m data_tools.corpus build` from the Debian, PyPI and npm packages "
        "declared (with versions and sha256) in `data_tools/corpus/sources.yaml`. Simplified Chinese "
        "sources are converted with OpenCC `s2twp`. Pairs whose English sides are near-duplicates (case, "
        "punctuation, articles and plurals aside) or whose Chinese sides match are grouped, and a whole "
        "group takes one split, fixed by a hash of its English key; a Chinese reference shared by different "
        "English texts is suspect and its group only trains. Pretraining text holds only training-split "
        "pairs, and lines equal to a held-out pair were removed from the monolingual text."
    )
    out += ["", f"Build time: {stats['seconds']['total']} s (fetch/extract {stats['seconds']['fetch']} s).", ""]
    subs = stats.get("substituted_artefacts") or []
    if subs:
        out += [
            "## ⚠ Substituted artefacts",
            "",
            "Debian no longer serves these pinned versions; the build took the version it serves now. "
            "The corpus may differ from the declared one; pin the new versions in `sources.yaml`.",
            "",
        ]
        out += [
            _table(
                ["artefact", "package", "pinned", "taken", "sha256 taken"],
                [[x["artefact"], x["package"], x["pinned"], x["taken"], f"`{x['taken_sha256']}`"] for x in subs],
            ),
            "",
        ]
    out += ["## Files", "", _table(["file", "records"], [[k, f"{v:,}"] for k, v in sorted(files.items())]), ""]
    out += ["## Parallel pairs", ""]
    out.append(
        f"{pairs['all']:,} pairs after cleaning and de-duplication, {pairs['sentence_like']:,} sentence-like "
        f"(English side of 6+ words); {pairs['chars_en']:,} English and {pairs['chars_zh']:,} Chinese characters."
    )
    out.append("")
    rows = []
    for dom in ("general", "finance"):
        rows.append(
            [dom]
            + [
                f"{pairs[f'{dom}.{s}']:,} ({pairs[f'{dom}.{s}.sentence_like']:,})"
                for s in ("train", "validation", "test")
            ]
        )
    out += [_table(["domain", "train (sentence-like)", "validation", "test"], rows), ""]
    out += _heldout_section(stats)
    out += ["## Sources", ""]
    read = tally["notes"].get("read", {})
    dropped_by = tally["notes"].get("parallel.dropped_by_source", {})
    out.append(
        "In priority order (an earlier source's translation of an English text is preferred). `read`: "
        "records the adapter produced; `dropped`: removed by the parallel filters; `kept`: pairs in the corpus."
    )
    out.append("")
    out.append(
        _table(
            [
                "source",
                "role",
                "adapter",
                "script",
                "read",
                "dropped",
                "kept",
                "sentence-like",
                "finance",
                "licence",
                "artefacts",
            ],
            [
                [
                    r["name"],
                    r["role"],
                    r["adapter"],
                    r["script"],
                    f"{read.get('read.' + r['name'], 0):,}",
                    f"{dropped_by.get(r['name'], 0):,}",
                    f"{r['pairs']:,}",
                    f"{r['sentence_like']:,}",
                    f"{r['finance']:,}",
                    r["licence"],
                    ", ".join(r["artefacts"]),
                ]
                for r in stats["sources"]
                if not r["role"].startswith("mono")
            ],
        )
    )
    out.append("")
    notes = tally["notes"]
    docs_read, docs_kept = notes.get("pretrain.docs_read_by_source", {}), notes.get("pretrain.docs_kept_by_source", {})
    chars, available = notes.get("pretrain.chars_by_source", {}), notes.get("pretrain.chars_available_by_source", {})
    mono = [r for r in stats["sources"] if r["role"].startswith("mono")]
    if mono:
        out += [
            "",
            "Monolingual sources (pretraining text): documents the adapter read, documents kept after the "
            "held-out-leak, de-duplication and per-language character caps, and the characters kept of those "
            "available.",
            "",
        ]
        out.append(
            _table(
                [
                    "source",
                    "language",
                    "script",
                    "documents read",
                    "documents kept",
                    "characters kept",
                    "of available",
                    "licence",
                    "artefacts",
                ],
                [
                    [
                        r["name"],
                        r["role"].split("_")[1],
                        r["script"] or "latin",
                        f"{docs_read.get(r['name'], 0):,}",
                        f"{docs_kept.get(r['name'], 0):,}",
                        f"{chars.get(r['name'], 0):,}",
                        f"{available.get(r['name'], 0):,}",
                        r["licence"],
                        ", ".join(r["artefacts"]),
                    ]
                    for r in mono
                ],
            )
        )
    skipped = tally["notes"].get("skipped_sources", {})
    if skipped:
        out += ["", "Skipped (optional, files not available on the build machine): " + ", ".join(sorted(skipped)) + "."]
    out += ["", "## Filters", "", "Each step in order; a dropped item stops at the first step that drops it.", ""]
    steps = sorted(set(tally["kept"]) | set(tally["dropped"]))
    rows = []
    for step in steps:
        dropped = tally["dropped"].get(step, {})
        rows.append(
            [
                step,
                f"{tally['kept'].get(step, 0):,}",
                f"{sum(dropped.values()):,}",
                ", ".join(f"{k}: {v:,}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1])),
            ]
        )
    out += [_table(["step", "kept", "dropped", "reasons"], rows), ""]
    out += ["## Pretraining mix", ""]
    chars, tokens = stats.get("pretrain_chars", {}), stats.get("pretrain_tokens", {})
    total_c = sum(chars.values()) or 1
    total_t = sum(tokens.values()) or 1
    rows = [
        [
            lang,
            f"{chars.get(lang, 0):,}",
            f"{100 * chars.get(lang, 0) / total_c:.1f}%",
            f"{tokens[lang]:,}" if lang in tokens else "–",
            f"{100 * tokens[lang] / total_t:.1f}%" if lang in tokens else "–",
        ]
        for lang in ("en", "zh", "mix")
    ]
    out += [_table(["text", "characters", "share", "tokens (shipped tokenizer)", "share"], rows), ""]
    out.append("`en`/`zh`: monolingual documents; `mix`: bilingual documents built from training pairs.")
    used = tally["notes"].get("pretrain.chars_by_source", {})
    avail = tally["notes"].get("pretrain.chars_available_by_source", {})
    out += [
        "",
        _table(
            ["monolingual source", "characters used", "available"],
            [[k, f"{v:,}", f"{avail.get(k, 0):,}"] for k, v in used.items()],
        ),
        "",
    ]
    out += [
        "## DPO",
        "",
        DPO_NOTE,
        "",
        _table(["kind", "pairs"], [[k, f"{v:,}"] for k, v in sorted(stats.get("dpo_kinds", {}).items())]),
        "",
    ]
    out += ["## Examples", ""]
    for name, n in ((split_file("sft", "test"), 5), (split_file("lora"), 5)):
        ex = _examples(data_dir / name, n)
        if ex:
            out += [
                f"`{name}`:",
                "",
                _table(["en", "zh", "source"], [[_short(e["en"]), _short(e["zh"]), e.get("source", "")] for e in ex]),
                "",
            ]
    ex = _examples(data_dir / split_file("sft"), 3)
    if ex:
        out += [f"`{split_file('sft')}` (user prompt → assistant):", ""]
        out += [
            f"- {_short(e['conversations'][-2]['content'])} → {_short(e['conversations'][-1]['content'])}" for e in ex
        ]
        out.append("")
    ex = _examples(data_dir / split_file("dpo"), 3)
    if ex:
        out += [f"`{split_file('dpo')}` (chosen / rejected):", ""]
        out += [
            f"- [{e.get('kind')}] {_short(e['chosen'][-1]['content'], 80)} / {_short(e['rejected'][-1]['content'], 80)}"
            for e in ex
        ]
        out.append("")
    ex = _examples(data_dir / split_file("pretrain"), 2)
    if ex:
        out += [f"`{split_file('pretrain')}`:", ""] + [f"- {_short(e['text'], 240)}" for e in ex] + [""]
    atomic_write_text(path, "\n".join(out))
