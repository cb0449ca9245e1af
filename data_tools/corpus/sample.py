"""Cutting the small committed sample (``data/sample/``) from a full build, deterministically.

The sample is what a fresh clone trains on without fetching anything, so it favours short, clean
sentence pairs a tiny model can learn from in minutes on a CPU. Rows are chosen in the order of a
hash of their content, so the same build always gives the same sample.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from data_tools.corpus.records import CorpusError
from data_tools.corpus.stages import is_short_clean
from data_tools.corpus.textutil import cjk_count, word_count
from minimind_hf.data.layout import DATA_CARD, DATA_STATS, SAMPLE_CARD, split_file
from minimind_hf.prompts import TRANSLATION_PROMPTS
from minimind_hf.utils.atomic_files import atomic_write_text
from minimind_hf.utils.jsonl import read_jsonl, write_jsonl

# rows per file (pretrain files: bytes of text)
SIZES = {
    split_file("sft"): 6000,
    split_file("sft", "validation"): 300,
    split_file("sft", "test"): 300,
    split_file("lora"): 1500,
    split_file("lora", "validation"): 200,
    split_file("lora", "test"): 200,
    split_file("dpo"): 600,
    split_file("dpo", "validation"): 100,
    split_file("pretrain"): 2_000_000,
    split_file("pretrain", "validation"): 200_000,
}
TERM_SHARE = 0.15  # of the SFT sample: one- and two-word items (terms, UI labels); the rest sentences


def _order(row: dict) -> str:
    return hashlib.blake2b(json.dumps(row, ensure_ascii=False, sort_keys=True).encode(), digest_size=8).hexdigest()


def en_from_prompt(content: str) -> str:
    """Recover the English source from a user turn built with one of the translation prompts."""
    for template in TRANSLATION_PROMPTS:
        head, tail = template.split("{en}")
        if content.startswith(head) and content.endswith(tail):
            return content[len(head) : len(content) - len(tail)] if tail else content[len(head) :]
    return content


def _chat_pair(row: dict) -> tuple[str, str]:
    turns = row.get("conversations") or row.get("chosen")
    return en_from_prompt(turns[-2]["content"]), turns[-1]["content"]


def _pick(rows: list[dict], n: int, key=None) -> list[dict]:
    rows = sorted(rows, key=_order)
    if key is not None:
        rows = [r for r in rows if key(r)]
    return rows[:n]


def _pick_sft(rows: list[dict], n: int) -> list[dict]:
    rows = sorted(rows, key=_order)
    sentences = [r for r in rows if is_short_clean(*_chat_pair(r))]
    terms = [r for r in rows if 1 <= word_count(_chat_pair(r)[0]) <= 2 and cjk_count(_chat_pair(r)[1]) >= 1]
    n_terms = int(n * TERM_SHARE)
    chosen = sentences[: n - min(n_terms, len(terms))] + terms[:n_terms]
    return sorted(chosen, key=_order)


def _pick_parallel(rows: list[dict], n: int) -> list[dict]:
    good = [r for r in rows if is_short_clean(r["en"], r["zh"], max_words=40, max_zh=160)]
    picked = _pick(good, n)
    if len(picked) < n:  # top up with the remaining rows
        ids = {id(r) for r in picked}
        picked += _pick([r for r in rows if id(r) not in ids], n - len(picked))
    return sorted(picked, key=_order)


def _pick_text(rows: list[dict], budget: int) -> list[dict]:
    out, used = [], 0
    for row in sorted(rows, key=_order):
        size = len(row["text"].encode("utf-8"))
        if used + size > budget:
            continue
        out.append(row)
        used += size
    return out


def make_sample(src: Path | str, out: Path | str, sizes: dict[str, int] | None = None) -> dict[str, int]:
    """Write the sample files and their card under ``out``; return the row counts."""
    src, out = Path(src), Path(out)
    sizes = {**SIZES, **(sizes or {})}
    for name in sizes:
        if not (src / name).is_file():
            raise CorpusError(f"{src / name}: missing; run `python -m data_tools.corpus build --out {src}` first")
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    picked: dict[str, list[dict]] = {}
    for name, n in sizes.items():
        rows = [row for _, row in read_jsonl(src / name, error=CorpusError)]
        if name == split_file("sft"):
            sel = _pick_sft(rows, n)
        elif name.startswith("pretrain."):
            sel = _pick_text(rows, n)
        elif name.startswith("dpo."):
            sel = _pick(rows, n, key=lambda r: is_short_clean(*_chat_pair(r), max_words=30, max_zh=120))
        elif name == split_file("sft", "validation"):
            sel = _pick(rows, n, key=lambda r: is_short_clean(*_chat_pair(r)))
        else:
            sel = _pick_parallel(rows, n)
        picked[name] = sel
        counts[name] = write_jsonl(out / name, sel)
    write_sample_card(out, picked, counts, src)
    return counts


def write_sample_card(out: Path, picked: dict[str, list[dict]], counts: dict[str, int], src: Path) -> None:
    """The sample's card (``README.md``): what is in it, how it was cut, per-source counts, examples."""
    lines = [
        "# data/sample: the embedded default corpus",
        "",
        "A small, deterministic cut of the full EN → zh-TW corpus, committed so that every stage runs on a "
        "fresh clone without fetching anything. Rebuild it with:",
        "",
        "```",
        "python -m data_tools.corpus build --cache .cache/sources --out data",
        "python -m data_tools.corpus sample --src data --out data/sample",
        "```",
        "",
        'Formats are the project\'s: `pretrain` `{"text"}`; `sft` `{"conversations": [user, assistant]}` '
        '(several prompt phrasings); `lora` finance pairs `{"en", "zh", "source", "id"}`; `dpo` '
        '`{"chosen", "rejected", "kind"}`; held-out test sets `sft.test` / `lora.test` in parallel form.',
        "",
        "The SFT sample favours short, clean pairs (3–24 English words, at most 80 Chinese characters), "
        f"plus {int(TERM_SHARE * 100)}% one- and two-word items (terms and UI labels). Splits come from the "
        "full build (a hash of the normalised English side), so no English text is in two splits.",
        "",
        "The DPO pairs are synthetic: `chosen` is the reference translation, `rejected` a systematically "
        "worse answer (`simplified`: the reference in Simplified script; `truncated`: about its first half; "
        "`copy`: the English source).",
        "",
        "| file | records | size (bytes) |",
        "|---|---|---|",
    ]
    for name in sorted(counts):
        lines.append(f"| {name} | {counts[name]:,} | {(out / name).stat().st_size:,} |")
    lines += ["", "Pairs per source:", "", "| file | " + " | ".join(["source", "pairs"]) + " |", "|---|---|---|"]
    for name in (split_file("sft", "test"), split_file("lora"), split_file("lora", "test")):
        for source, n in Counter(r.get("source", "?") for r in picked.get(name, [])).most_common():
            lines.append(f"| {name} | {source} | {n:,} |")
    kinds = Counter(r.get("kind") for r in picked.get(split_file("dpo"), []))
    lines += ["", "DPO kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())), ""]
    pre = picked.get(split_file("pretrain"), [])
    zh_chars = sum(cjk_count(r["text"]) for r in pre)
    all_chars = sum(len(r["text"]) for r in pre)
    lines += [
        f"Pretraining text: {len(pre):,} documents, {all_chars:,} characters of which {zh_chars:,} Chinese characters.",
        "",
    ]
    lines += ["Examples (sft):", ""]
    for row in picked.get(split_file("sft"), [])[:6]:
        en, zh = _chat_pair(row)
        lines.append(f"- {en} → {zh}")
    lines += ["", "Examples (lora):", ""]
    for row in picked.get(split_file("lora"), [])[:6]:
        lines.append(f"- {row['en']} → {row['zh']}")
    stats_path = src / DATA_STATS
    if stats_path.is_file():
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        pairs, files = stats.get("pairs", {}), stats.get("files", {})
        fin = sum(pairs.get(f"finance.{s}", 0) for s in ("train", "validation", "test"))
        lines += [
            "",
            f"Cut from a full build of {pairs.get('all', 0):,} parallel pairs ({pairs.get('sentence_like', 0):,} "
            f"sentence-like, {fin:,} finance), {files.get(split_file('sft'), 0):,} SFT chats and "
            f"{files.get(split_file('pretrain'), 0):,} pretraining documents. The full build's data card "
            f"(`data/{DATA_CARD}`, "
            "not committed) reports the counts per source and per filter, the licences and the mix.",
        ]
        lines += [
            "",
            "Sources and licences (the pretraining text also draws on the monolingual ones):",
            "",
            "| source | role | licence | packages |",
            "|---|---|---|---|",
        ]
        for row in stats.get("sources", []):
            lines.append(f"| {row['name']} | {row['role']} | {row['licence']} | {', '.join(row['artefacts'])} |")
    atomic_write_text(out / SAMPLE_CARD, "\n".join(lines) + "\n")
