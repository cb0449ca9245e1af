"""The corpus build: fetch -> read -> clean -> split -> stage files -> data card.

``build(cache, out)`` runs everything from the declared source list; the result is identical on
every run with the same sources (sorted iteration, hash-based splits, seeded shuffles).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from data_tools.corpus import stages
from data_tools.corpus.fetch import Substitution, fetch
from data_tools.corpus.finance import FinanceMatcher
from data_tools.corpus.leaks import TrainIndex
from data_tools.corpus.parallel import _opencc, default_filters, is_sentence_like, run_filters
from data_tools.corpus.read import read_source
from data_tools.corpus.records import CorpusError, Doc, Pair
from data_tools.corpus.sources import Source, SourceList, load_sources
from data_tools.corpus.splits import SplitShares, bucket, group_splits
from data_tools.corpus.textutil import normalise_en
from data_tools.stats import Stats
from minimind_hf.data.layout import DATA_CARD, DATA_STATS, split_file
from minimind_hf.utils.atomic_files import atomic_write_text
from minimind_hf.utils.jsonl import write_jsonl

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    """What a build produced: the output files' record counts and every tally."""

    out: Path
    files: dict[str, int] = field(default_factory=dict)
    tally: Stats = field(default_factory=Stats)
    stats: dict = field(default_factory=dict)


def fetch_all(
    sources: list[Source],
    slist: SourceList,
    cache: Path,
    tally: Stats | None = None,
    substitutions: list[Substitution] | None = None,
) -> dict[str, Path]:
    """Fetch, verify and extract every artefact the given sources read.

    An artefact only optional sources need may be missing: those sources are then removed from
    ``sources`` (in place) and the reason is noted in ``tally`` under ``skipped_sources``. Debian
    versions the registry no longer serves are replaced and listed in ``substitutions``.
    """
    cache = Path(cache).resolve()
    required = {a for s in sources if not s.optional for a in s.artefacts()}
    names = sorted({a for s in sources for a in s.artefacts()})
    roots: dict[str, Path] = {}
    for name in tqdm(names, desc="fetch", unit="artefact"):
        try:
            roots[name] = fetch(slist.artefacts[name], cache, substitutions)
        except CorpusError as exc:
            if name in required:
                raise
            log.warning("optional artefact %s unavailable, its sources are skipped: %s", name, exc)
    for source in list(sources):
        missing = [a for a in source.artefacts() if a not in roots]
        if missing:
            sources.remove(source)
            if tally is not None:
                tally.note("skipped_sources", source.name)
    return roots


def clean_pairs(
    sources: list[Source],
    roots: dict[str, Path],
    build_cfg: dict,
    tally: Stats,
    matcher: FinanceMatcher | None = None,
    semantic=None,
) -> list[stages.CleanPair]:
    """Read the parallel sources in priority order, clean, de-duplicate, tag domain and split."""
    matcher = matcher or FinanceMatcher()
    general = SplitShares(**build_cfg.get("splits", {}).get("general", {"validation": 10, "test": 10}))
    finance = SplitShares(**build_cfg.get("splits", {}).get("finance", {"validation": 60, "test": 80}))
    min_words = int(build_cfg.get("sentence_words", 6))
    chain = default_filters(
        max_per_en=int(build_cfg.get("max_translations_per_en", 1)),
        converted_variants=bool(build_cfg.get("converted_variants", False)),
    )
    out: list[stages.CleanPair] = []
    for source in tqdm(sources, desc="parallel sources", unit="source"):
        if source.role not in ("parallel", "finance"):
            continue
        raw = (r for r in read_source(source, roots, tally) if isinstance(r, Pair))
        # terms that mean finance only inside this source (e.g. "account" in a bookkeeping program)
        local = FinanceMatcher(source.options["finance_terms"]) if source.options.get("finance_terms") else None
        n_before = len(out)
        kept = run_filters(_counted(raw, tally, f"read.{source.name}"), chain, tally)
        if semantic is not None:  # batched, after the cheap filters
            kept = semantic.filter(list(kept), tally)
        for pair in kept:
            is_fin = source.role == "finance" or matcher(pair.en) or (local is not None and local(pair.en))
            out.append(
                stages.CleanPair(
                    pair.en, pair.zh, pair.source, pair.origin, is_fin, "train", is_sentence_like(pair, min_words)
                )
            )
        tally.note("pairs_kept_by_source", source.name, len(out) - n_before)
    # near-duplicates (English or Chinese side) share a split; suspect references never test
    grouped = group_splits([(p.en, p.zh, p.finance) for p in out], general, finance)
    tally.note("splits", "groups", grouped.groups)
    tally.note("splits", "suspect_references", sum(grouped.suspect))
    tally.note("splits", "suspect_references_kept_out_of_heldout", grouped.suspect_held_out)
    tally.note("splits", "rows_of_suspect_groups_moved_to_train", grouped.moved_to_train)
    return [dataclasses.replace(p, split=s) for p, s in zip(out, grouped.splits, strict=True)]


def _counted(records, tally: Stats, key: str):
    """Pass ``records`` through, counting them under ``read.<key>``."""
    for r in records:
        tally.note("read", key)
        yield r


def _fair_caps(sizes: dict[str, int], cap: int) -> dict[str, int]:
    """Split ``cap`` characters over sources: small sources keep all, the rest share what is left."""
    caps, left, pending = {}, cap, dict(sizes)
    while pending:
        share = left // len(pending)
        small = {k: v for k, v in pending.items() if v <= share}
        if not small:
            for k in pending:
                caps[k] = share
            break
        for k, v in small.items():
            caps[k] = v
            left -= v
            del pending[k]
    return caps


def monolingual_docs(
    sources: list[Source],
    roots: dict[str, Path],
    build_cfg: dict,
    heldout_en: set[str],
    heldout_zh: set[str],
    seed: int,
    tally: Stats,
) -> list[Doc]:
    """Read, convert (s2twp), de-leak, de-duplicate and cap the monolingual documents."""
    caps_cfg = build_cfg.get("pretrain", {}).get("cap_chars", {})
    by_role: dict[str, dict[str, list[Doc]]] = defaultdict(dict)
    seen: set[int] = set()
    s2twp = _opencc("s2twp")
    for source in tqdm(sources, desc="monolingual sources", unit="source"):
        if source.role not in ("mono_en", "mono_zh"):
            continue
        docs = []
        for doc in read_source(source, roots, tally):
            tally.note("pretrain.docs_read_by_source", source.name)
            text = s2twp.convert(doc.text) if source.script == "hans" else doc.text
            lines = []
            for line in text.split("\n"):
                if line.strip() in heldout_zh or normalise_en(line) in heldout_en:
                    tally.drop("pretrain.leak", "line_of_a_heldout_pair")
                    continue
                lines.append(line)
            text = "\n".join(lines).strip()
            if not text:
                continue
            h = hash(text)
            if h in seen:
                tally.drop("pretrain.dedup", "duplicate_document")
                continue
            seen.add(h)
            docs.append(Doc(text, doc.source, doc.lang, doc.origin))
        by_role[source.role][source.name] = docs
    out: list[Doc] = []
    rng = random.Random(seed)
    for role, per_source in sorted(by_role.items()):
        sizes = {k: sum(len(d.text) for d in v) for k, v in per_source.items()}
        cap = int(caps_cfg.get(role, sum(sizes.values())))
        caps = _fair_caps(sizes, cap)
        for name in sorted(per_source):
            docs = per_source[name]
            rng.shuffle(docs)
            used = 0
            for doc in docs:
                if used + len(doc.text) > caps[name] and used > 0:
                    tally.drop("pretrain.cap", f"{name}")
                    continue
                used += len(doc.text)
                out.append(doc)
                tally.note("pretrain.docs_kept_by_source", name)
            tally.note("pretrain.chars_by_source", name, used)
            tally.note("pretrain.chars_available_by_source", name, sizes[name])
    return out


def _take(pairs: list[stages.CleanPair], n: int, seed: int) -> list[stages.CleanPair]:
    pairs = list(pairs)
    random.Random(seed).shuffle(pairs)
    return pairs[:n]


def build(
    cache: Path | str,
    out: Path | str,
    sources_path: Path | str | None = None,
    only: list[str] | None = None,
    semantic=None,
    count_tokens: bool = True,
) -> BuildResult:
    """Build every stage file under ``out`` from the sources (see module docstring)."""
    t0 = time.time()
    cache, out = Path(cache), Path(out)
    slist = load_sources(sources_path)
    sources = slist.enabled(only)
    cfg = slist.build
    seed = int(cfg.get("seed", 1234))
    result = BuildResult(out=out)
    tally = result.tally
    substitutions: list[Substitution] = []
    roots = fetch_all(sources, slist, cache, tally, substitutions)
    t_fetch = time.time() - t0

    pairs = clean_pairs(sources, roots, cfg, tally, semantic=semantic)
    heldout = [p for p in pairs if p.split != "train"]
    heldout_en = {normalise_en(p.en) for p in heldout}
    heldout_zh = {p.zh for p in heldout}

    picked: dict[tuple[str, bool | None], list[stages.CleanPair]] = {}

    def pick(split: str, finance: bool | None = None) -> list[stages.CleanPair]:
        sel = [p for p in pairs if p.split == split and (finance is None or p.finance == finance)]
        if split == "train":
            return sel
        if (split, finance) not in picked:
            first: dict[str, stages.CleanPair] = {}  # held-out sets keep one reference per English text
            for p in sel:
                first.setdefault(normalise_en(p.en), p)
            tally.drop(f"heldout.{split}", "extra_reference", len(sel) - len(first))
            picked[split, finance] = list(first.values())
        return list(picked[split, finance])

    rng = random.Random(seed)
    # ---- SFT: all train pairs (general and finance) as chats; held-out general pairs
    sft_train = pick("train")
    rng.shuffle(sft_train)
    files = result.files

    def write(stage: str, split: str, records) -> None:
        name = split_file(stage, split)
        files[name] = write_jsonl(out / name, records)

    write("sft", "train", (stages.sft_record(p) for p in sft_train))
    write("sft", "validation", (stages.sft_record(p) for p in pick("validation", False)))
    write("sft", "test", (stages.parallel_record(p) for p in pick("test", False)))
    # ---- LoRA: finance pairs, parallel form
    lora_train = pick("train", True)
    rng.shuffle(lora_train)
    write("lora", "train", (stages.parallel_record(p) for p in lora_train))
    write("lora", "validation", (stages.parallel_record(p) for p in pick("validation", True)))
    write("lora", "test", (stages.parallel_record(p) for p in pick("test", True)))
    # ---- DPO: sentence-like train pairs, reference vs a systematically worse answer
    dpo_cfg = cfg.get("dpo", {})
    t2s = _opencc("t2s").convert
    kinds: Counter = Counter()

    def dpo_rows(candidates: list[stages.CleanPair], n: int, salt: int):
        rows = []
        for p in _take(candidates, len(candidates), seed + salt):
            if len(rows) >= n:
                break
            rec = stages.dpo_record(p, t2s)
            if rec is None:
                tally.drop("dpo", "no_worse_answer")
                continue
            kinds[rec["kind"]] += 1
            rows.append((p, rec))
        return rows

    dpo_train = dpo_rows(
        [p for p in pairs if p.split == "train" and p.sentence_like], int(dpo_cfg.get("train_pairs", 12000)), 1
    )
    dpo_val = dpo_rows(
        [p for p in pairs if p.split == "validation" and p.sentence_like], int(dpo_cfg.get("validation_pairs", 600)), 2
    )
    write("dpo", "train", (r for _, r in dpo_train))
    write("dpo", "validation", (r for _, r in dpo_val))
    # ---- pretraining text: monolingual documents + bilingual documents from train pairs only
    mono = monolingual_docs(sources, roots, cfg, heldout_en, heldout_zh, seed, tally)
    per_doc = int(cfg.get("pretrain", {}).get("bilingual_pairs_per_doc", 24))
    by_source: dict[str, list[stages.CleanPair]] = defaultdict(list)
    for p in pick("train"):
        by_source[p.source].append(p)
    texts: list[tuple[str, str, str]] = [(d.text, d.lang, d.source) for d in mono]
    for name in sorted(by_source):
        for text in stages.bilingual_docs(by_source[name], per_doc):
            texts.append((text, "mix", name))
    random.Random(seed + 3).shuffle(texts)
    val_pm = int(cfg.get("pretrain", {}).get("validation_per_mille", 5))
    pre_train = [t for t in texts if bucket(t[0][:200]) >= val_pm]
    pre_val = [t for t in texts if bucket(t[0][:200]) < val_pm]
    write("pretrain", "train", ({"text": t[0]} for t in pre_train))
    write("pretrain", "validation", ({"text": t[0]} for t in pre_val))

    train_index = TrainIndex((p.en, p.zh) for p in pick("train"))
    overlap = {
        f"{dom}.{split}": train_index.overlap((p.en, p.zh) for p in pick(split, fin))
        for split in ("validation", "test")
        for dom, fin in (("general", False), ("finance", True))
    }
    mix_chars: Counter = Counter()
    for text, lang, _ in pre_train:
        mix_chars[lang] += len(text)
    mix_tokens = _count_tokens(pre_train) if count_tokens else {}
    result.stats = {
        "seconds": {"fetch": round(t_fetch, 1), "total": round(time.time() - t0, 1)},
        "files": files,
        "pairs": _pair_stats(pairs),
        "pretrain_chars": dict(mix_chars),
        "pretrain_tokens": mix_tokens,
        "dpo_kinds": dict(kinds),
        "heldout_overlap": overlap,
        "tally": tally.as_dict(),
        "sources": _source_rows(sources, slist, pairs),
        "substituted_artefacts": [dataclasses.asdict(sub) for sub in substitutions],
    }
    atomic_write_text(out / DATA_STATS, json.dumps(result.stats, ensure_ascii=False, indent=1))
    from data_tools.corpus.card import write_card

    write_card(out / DATA_CARD, result.stats, out)
    return result


def _count_tokens(texts: list[tuple[str, str, str]]) -> dict[str, int]:
    try:
        from minimind_hf.tokenization import load_tokenizer

        tok = load_tokenizer()
    except Exception as exc:  # the tokenizer is optional for the data build
        log.warning("token counts skipped: %s", exc)
        return {}
    counts: Counter = Counter()
    batch: list[str] = []
    langs: list[str] = []
    for text, lang, _ in tqdm(texts, desc="count tokens", unit="doc", mininterval=5):
        batch.append(text)
        langs.append(lang)
        if len(batch) == 512:
            for batch_lang, ids in zip(langs, tok(batch, add_special_tokens=False)["input_ids"], strict=True):
                counts[batch_lang] += len(ids)
            batch, langs = [], []
    if batch:
        for batch_lang, ids in zip(langs, tok(batch, add_special_tokens=False)["input_ids"], strict=True):
            counts[batch_lang] += len(ids)
    return dict(counts)


def _pair_stats(pairs: list[stages.CleanPair]) -> dict:
    stats: dict = {"all": len(pairs), "sentence_like": sum(p.sentence_like for p in pairs)}
    for split in ("train", "validation", "test"):
        for dom, fin in (("general", False), ("finance", True)):
            sel = [p for p in pairs if p.split == split and p.finance == fin]
            stats[f"{dom}.{split}"] = len(sel)
            stats[f"{dom}.{split}.sentence_like"] = sum(p.sentence_like for p in sel)
    stats["chars_en"] = sum(len(p.en) for p in pairs)
    stats["chars_zh"] = sum(len(p.zh) for p in pairs)
    return stats


def _source_rows(sources: list[Source], slist: SourceList, pairs: list[stages.CleanPair]) -> list[dict]:
    kept: Counter = Counter(p.source for p in pairs)
    sentence: Counter = Counter(p.source for p in pairs if p.sentence_like)
    fin: Counter = Counter(p.source for p in pairs if p.finance)
    rows = []
    for s in sources:
        arts = [slist.artefacts[a] for a in s.artefacts()]
        rows.append(
            {
                "name": s.name,
                "role": s.role,
                "adapter": s.adapter,
                "script": "" if s.role == "mono_en" else s.script,
                "artefacts": [f"{a.registry}:{a.spec}" for a in arts],
                "licence": "; ".join(sorted({a.licence for a in arts})),
                "pairs": kept.get(s.name, 0),
                "sentence_like": sentence.get(s.name, 0),
                "finance": fin.get(s.name, 0),
            }
        )
    return rows
