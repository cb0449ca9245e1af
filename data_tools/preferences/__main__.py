"""``python -m data_tools.preferences``: sample, score and pick DPO pairs (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from minimind_hf.checkpoints import default_device, load_checkpoint
from minimind_hf.evaluation.test_sets import load_test_pairs
from minimind_hf.evaluation.translate import generate_translations
from minimind_hf.prompts import resolve_system_prompt, system_prompt_name
from minimind_hf.utils.command_errors import one_line_errors
from minimind_hf.utils.jsonl import write_jsonl

from .judge import ChatJudge
from .score import METHODS, candidate_problems, score_candidates
from .select import Candidate, holdout_rows, make_pairs

log = logging.getLogger("data_tools.preferences")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_tools.preferences", description=__doc__)
    p.add_argument("--config", help="a YAML file of these options (recipes/<scale>/pairs.yaml); the command line wins")
    p.add_argument("--model", required=True, help="the model that writes the candidates (e.g. out/sft)")
    p.add_argument("--adapter", help="a LoRA adapter on --model (e.g. out/lora), merged for generation")
    p.add_argument("--input", required=True, help="source rows: a {'en', 'zh'} jsonl (the finance training split)")
    p.add_argument("--output", required=True, help="the DPO jsonl to write; a report goes next to it")
    p.add_argument(
        "--validation-output",
        help="also write validation pairs here, made the same way from "
        "--validation-rows held-out source rows (default: OUTPUT with .validation before .jsonl)",
    )
    p.add_argument(
        "--validation-rows",
        type=int,
        default=0,
        help="source rows held out for the validation pairs (disjoint from the training pairs' rows, "
        "near-duplicates kept together); 0: no validation pairs",
    )
    p.add_argument("--limit", type=int, help="use only the first N source rows (validation rows included)")
    p.add_argument("--num-candidates", type=int, default=4, help="sampled candidates per source (plus greedy)")
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens only (0: no top-k cut)")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--length-ratio", type=float, default=3.0, help="cap each candidate at this many source tokens + 8")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--system", default=None, help="system prompt of the translation chat ('finance' = the finance prompt)"
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default=None,
        help="how candidates are scored (default: comet with --comet-model, judge with --judge-url, "
        "else chrf+semantic)",
    )
    p.add_argument("--comet-model", help="a local COMET checkpoint")
    p.add_argument("--judge-url", help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--judge-model", default="judge", help="the model name sent to the judge endpoint")
    p.add_argument(
        "--min-margin", type=float, default=10.0, help="keep a pair only if best - worst >= this (0-100 scale)"
    )
    p.add_argument(
        "--poor-threshold",
        type=float,
        default=25.0,
        help="when the best candidate scores below this, the reference becomes 'chosen'",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    return p


def _margin_plot(margins: list[float], path: Path) -> Path | None:
    if not margins:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist(margins, bins=20, color="#4c72b0")
    ax.set_xlabel("score margin, chosen - rejected (0-100)")
    ax.set_ylabel("pairs")
    ax.set_title(f"DPO pair margins ({len(margins)} model-chosen pairs)")
    fig.tight_layout()
    fig.savefig(path)
    return path


def validation_path(output: str | Path) -> Path:
    """``out/pairs/dpo.jsonl`` -> ``out/pairs/dpo.validation.jsonl``."""
    out = Path(output)
    return out.with_name(out.stem + ".validation" + out.suffix)


def run(args: argparse.Namespace) -> dict:
    start = time.time()
    method = args.method or ("comet" if args.comet_model else "judge" if args.judge_url else "chrf+semantic")
    judge = ChatJudge(args.judge_url, args.judge_model) if method == "judge" else None
    if method == "judge" and not args.judge_url:
        raise SystemExit("--method judge needs --judge-url")
    if args.top_k < 0:
        raise SystemExit(f"--top-k must be >= 0 (0: no top-k cut), got {args.top_k}")
    rows, dropped, notes = load_test_pairs(args.input, limit=args.limit)
    if not rows:
        raise SystemExit(f"{args.input}: no usable {{'en', 'zh'}} rows (dropped: {dict(dropped)})")
    held = set(holdout_rows(rows, args.validation_rows)) if args.validation_rows else set()
    if args.validation_rows and len(held) == len(rows):
        raise SystemExit(
            f"{args.input}: --validation-rows {args.validation_rows} leaves no rows for training pairs "
            f"({len(rows)} rows read)"
        )
    loaded = load_checkpoint(
        args.adapter or args.model, base=args.model if args.adapter else None, device=args.device or default_device()
    )
    system = resolve_system_prompt(args.system)
    sources, references = [r["en"] for r in rows], [r["zh"] for r in rows]
    common = dict(
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        system=system,
        length_ratio=args.length_ratio,
        with_ended=True,
    )
    sampling = dict(do_sample=True, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k)
    greedy = generate_translations(loaded.model, loaded.tokenizer, sources, **common)
    torch.manual_seed(args.seed)
    sampled = generate_translations(
        loaded.model, loaded.tokenizer, sources, num_return_sequences=args.num_candidates, **sampling, **common
    )
    # a candidate the length cap cut off would become a complete reply in the chat template (which
    # closes every turn), so DPO would learn to stop after a loop: drop it, and count it
    cut_off: Counter = Counter()
    candidates: list[list[tuple[str, str]]] = []
    for g, ss in zip(greedy, sampled, strict=True):
        kept = []
        for origin, (text, ended) in [("greedy", g[0])] + [("sample", x) for x in ss]:
            if ended:
                kept.append((text, origin))
            else:
                cut_off[origin] += 1
        candidates.append(kept)
    texts = [[t for t, _ in cands] for cands in candidates]
    scores = score_candidates(sources, texts, references, method=method, comet_model=args.comet_model, judge=judge)
    scored = [
        [Candidate(t, s, origin) for (t, origin), s in zip(cands, ss, strict=True)]
        for cands, ss in zip(candidates, scores, strict=True)
    ]
    problems: Counter = Counter()
    for src, ref, cands in zip(sources, references, texts, strict=True):
        for text in cands:
            problems.update(candidate_problems(text, src, ref))
    train_idx = [i for i in range(len(rows)) if i not in held]
    val_idx = sorted(held)
    out = Path(args.output)
    kwargs = dict(min_margin=args.min_margin, poor_threshold=args.poor_threshold, system=system)
    records, stats = make_pairs([rows[i] for i in train_idx], [scored[i] for i in train_idx], **kwargs)
    write_jsonl(out, records)
    val_out = val_stats = None
    if val_idx:
        val_out = Path(args.validation_output) if args.validation_output else validation_path(out)
        val_records, val_stats = make_pairs([rows[i] for i in val_idx], [scored[i] for i in val_idx], **kwargs)
        write_jsonl(val_out, val_records)
    n_generated = len(rows) * (args.num_candidates + 1)
    report = {
        "input": str(args.input),
        "output": str(out),
        "model": args.model,
        "adapter": args.adapter,
        "method": method,
        "num_candidates": args.num_candidates + 1,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "min_margin": args.min_margin,
        "poor_threshold": args.poor_threshold,
        "system": system_prompt_name(system),
        "rows_dropped_on_read": dict(dropped),
        "notes": notes,
        "generation": {
            "greedy": {"do_sample": False, "num_return_sequences": 1},
            "sampled": {**sampling, "num_return_sequences": args.num_candidates, "seed": args.seed},
            "max_new_tokens": args.max_new_tokens,
            "length_ratio": args.length_ratio,
            "batch_size": args.batch_size,
        },
        "candidates": {
            "generated": n_generated,
            "cut_off_dropped": sum(cut_off.values()),
            "cut_off_by_origin": dict(cut_off),
            "scored": n_generated - sum(cut_off.values()),
            "poor_by_problem": dict(problems),
        },
        **stats.as_dict(),
        "validation": None if val_out is None else {"output": str(val_out), **val_stats.as_dict()},
        "seconds": round(time.time() - start, 1),
    }
    plot = _margin_plot(stats.margins, out.with_suffix(".margins.png"))
    report["margin_plot"] = str(plot) if plot else None
    report_json = json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    out.with_suffix(".report.json").write_text(report_json, encoding="utf-8")
    m = report["margin"]
    margins = (
        f"margin of the {m['n']} model-chosen pairs: median {m['median']:.1f} (min {m['min']:.1f}, p90 {m['p90']:.1f})"
        if m["n"]
        else "no model-chosen pairs (no margins)"
    )
    summary = (
        f"{stats.sources} sources -> {stats.kept} pairs ({stats.reference_as_chosen} with the reference as "
        f"chosen); dropped: {dict(stats.dropped) or 'none'}; {margins}; scored by {method}"
    )
    if val_stats is not None:
        summary += (
            f"; validation: {val_stats.sources} held-out sources -> {val_stats.kept} pairs "
            f"({val_stats.reference_as_chosen} with the reference as chosen) in {val_out}"
        )
    cut = (
        f"{sum(cut_off.values())} of {n_generated} candidates dropped as cut off by the length cap "
        f"(greedy {cut_off['greedy']}, sampled {cut_off['sample']})"
    )
    out.with_suffix(".report.md").write_text(
        f"# DPO pairs: `{out}`\n\n{summary}.\n\nMade by `python -m data_tools.preferences` from `{args.input}` with "
        f"`{args.model}`{' + `' + args.adapter + '`' if args.adapter else ''}, {args.num_candidates} sampled "
        f"candidates (temperature {args.temperature}, top-p {args.top_p}, top-k {args.top_k or 'off'}, seed "
        f"{args.seed}) plus the greedy one, at most {args.max_new_tokens} new tokens (length ratio "
        f"{args.length_ratio}), in {report['seconds']} s; {cut}.\n" + (f"\n![margins]({plot.name})\n" if plot else ""),
        encoding="utf-8",
    )
    print(summary)
    return report


@one_line_errors("python -m data_tools.preferences")
def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from minimind_hf.utils.options_file import expand_config

    run(build_parser().parse_args(expand_config(list(sys.argv[1:] if argv is None else argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
