"""Reports of evaluation results: markdown tables, example translations and a bar chart.

A *result* is the dict :func:`minimind_hf.evaluation.run.evaluate_checkpoint` returns: ``label``,
``checkpoint``, ``validation`` (perplexity figures or ``None``), ``translation`` (scores or
``None``) and ``examples``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def _cell(text: Any) -> str:
    """Make a value safe inside a markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def _number(fmt: str) -> Callable[[Any], str]:
    return lambda value: "–" if value is None else format(value, fmt)


def _percent(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


# (header, section, key, formatter); section None means a top-level key of the result.
COLUMNS: tuple[tuple[str, str | None, str, Callable[[Any], str]], ...] = (
    ("val loss", "validation", "loss", _number(".4f")),
    ("val ppl", "validation", "perplexity", _number(".2f")),
    ("chrF", "translation", "chrf", _number(".2f")),
    ("BLEU", "translation", "bleu", _number(".2f")),
    ("COMET", "translation", "comet", _number(".4f")),
    ("semantic", "semantic", "score", _number(".3f")),
    ("Traditional (of Chinese outputs)", "translation", "traditional_share", _percent),
    ("empty", "health", "empty_share", _percent),
    ("no CJK", "health", "no_cjk_share", _percent),
    ("looping", "health", "looping_share", _percent),
    ("CJK share", "script", "cjk_share", _percent),
    ("test n", "translation", "n", _number("d")),
)

# The course's bars (COMP7607B A2): what each stage must reach, and on which figure.
COURSE_BARS: dict[str, tuple[str, str, str, float]] = {
    # stage: (figure, where it is measured, comparison, threshold)
    "pretrain": ("validation perplexity", "pretraining validation text", "<", 15.0),
    "sft": ("COMET", "general test set", ">", 0.60),
    "lora": ("COMET", "finance test set", ">", 0.65),
    "dpo": ("COMET", "finance test set", ">", 0.70),
}
BAR_TEST_FILES = {"general test set": "sft.test", "finance test set": "lora.test"}
"""The test file (stem) each bar's test set is: a result on another test file is not held to that bar."""


def _get(result: Result, section: str | None, key: str) -> Any:
    if section in ("script", "semantic", "health"):
        part = (result.get("translation") or {}).get(section)
    else:
        part = result.get(section) if section else result
    return (part or {}).get(key)


def comparison_table(results: Sequence[Result]) -> str:
    """One markdown row per checkpoint with the headline figures."""
    header = "| checkpoint | " + " | ".join(c[0] for c in COLUMNS) + " |"
    rule = "|---|" + "|".join("---:" for _ in COLUMNS) + "|"
    lines = [header, rule]
    for result in results:
        cells = [fmt(_get(result, section, key)) for _, section, key, fmt in COLUMNS]
        lines.append(f"| {_cell(result['label'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def examples_table(examples: Sequence[dict[str, Any]]) -> str:
    """Example translations as a markdown table (with sentence chrF and flags when known)."""
    scored = any("chrf" in ex for ex in examples)
    extra = " chrF | flags |" if scored else ""
    lines = ["| # | source | reference | hypothesis |" + extra, "|---:|---|---|---|" + ("---:|---|" if scored else "")]
    for i, ex in enumerate(examples, 1):
        row = f"| {i} | {_cell(ex['source'])} | {_cell(ex['reference'])} | {_cell(ex['hypothesis'])} |"
        if scored:
            row += f" {ex.get('chrf', '–')} | {', '.join(ex.get('flags') or []) or '–'} |"
        lines.append(row)
    return "\n".join(lines)


def course_bars_table(results: Sequence[Result]) -> str:
    """Where each checkpoint stands against the course's bar for its stage.

    "not measured" where the figure is missing (COMET needs a local checkpoint), never a guess.
    """
    lines = ["| checkpoint | stage | bar | measured | status |", "|---|---|---|---:|---|"]
    for result in results:
        stage = result.get("stage")
        if stage not in COURSE_BARS:
            lines.append(f"| {_cell(result['label'])} | {stage or 'unknown'} | – | – | no bar for this stage |")
            continue
        figure, where, op, threshold = COURSE_BARS[stage]
        test_file = (result.get("translation") or {}).get("file")
        if figure == "COMET" and test_file and not Path(test_file).name.startswith(BAR_TEST_FILES[where]):
            lines.append(
                f"| {_cell(result['label'])} | {stage} | – | – | no bar on `{Path(test_file).name}` (the "
                f"{stage} bar, COMET {op} {threshold:g}, is on the {where}) |"
            )
            continue
        value = (
            _get(result, "validation", "perplexity")
            if figure == "validation perplexity"
            else _get(result, "translation", "comet")
        )
        if value is None:
            measured, status = "–", "not measured" + (" (no COMET checkpoint given)" if figure == "COMET" else "")
        else:
            met = value < threshold if op == "<" else value > threshold
            measured, status = f"{value:.4g}", "met" if met else "not met"
        lines.append(
            f"| {_cell(result['label'])} | {stage} | {figure} {op} {threshold:g} on the {where} | "
            f"{measured} | {status} |"
        )
    return "\n".join(lines)


def floors_table(result: Result) -> str:
    """The model's scores next to the two floors computed on the same references."""
    tr = result["translation"]
    floors, semantic = tr.get("floors") or {}, tr.get("semantic") or {}
    rows = [("this checkpoint", {k: tr.get(k) for k in ("chrf", "bleu")}, semantic.get("score"))]
    names = {"copy_source": "English source copied", "shuffled_references": "outputs vs shuffled references"}
    for key, label in names.items():
        if key in floors:
            rows.append((label, floors[key], (semantic.get("floors") or {}).get(key)))
    lines = ["| | chrF | BLEU | semantic |", "|---|---:|---:|---:|"]
    fmt = _number(".2f")
    for label, figures, sem in rows:
        lines.append(f"| {label} | {fmt(figures.get('chrf'))} | {fmt(figures.get('bleu'))} | {_number('.3f')(sem)} |")
    return "\n".join(lines)


def _dropped(counts: dict[str, int] | None) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))


def result_markdown(result: Result) -> str:
    """The full ``eval.md`` of one checkpoint: table, data, notes, script details, examples."""
    lines = [f"# Evaluation of `{result['label']}`", "", comparison_table([result]), ""]
    base = f", base `{result['base_model']}`" if result.get("base_model") else ""
    lines.append(f"- checkpoint: `{result['checkpoint']}` ({result.get('kind', 'model')}{base})")
    val = result.get("validation")
    if val:
        lines.append(
            f"- validation: `{val['file']}` — {val['documents']} {val.get('kind', 'text')} documents, "
            f"{val['tokens']} scored tokens, "
            f"block size {val['block_size']}"
            + (f" ({val['block_size_from']})" if val.get("block_size_from") else "")
            + f", {'packed' if val['packed'] else 'one document per row'}; "
            f"dropped rows: {_dropped(val.get('dropped'))}; documents too short to score: "
            f"{val.get('skipped_documents', 0)}"
        )
    tr = result.get("translation")
    if tr:
        gen = tr.get("generation", {})
        lines.append(
            f"- test: `{tr['file']}` — {tr['n']} pairs; dropped rows: {_dropped(tr.get('dropped'))}; "
            + ", ".join(f"{k}={v}" for k, v in gen.items())
        )
        script = tr.get("script")
        if script:
            lines.append(
                f"- script check ({script['method']}): {script['outputs_with_simplified']}/{script['outputs']} "
                f"outputs contain Simplified-only characters ({script['simplified_chars']} of "
                f"{script['cjk_chars']} CJK characters); most frequent: "
                f"{' '.join(script['top_simplified_chars']) or 'none'}"
            )
        health = tr.get("health")
        if health:
            lines.append(
                "- outputs: "
                + ", ".join(
                    f"{_percent(health.get(k + '_share'))} {k.replace('_', '-')}"
                    for k in ("empty", "no_cjk", "chinese", "looping", "untranslated", "over_long")
                )
                + f"; length ratio {health['length_ratio']:.2f} (output / reference characters); "
                f"{_percent(health['references_looping_share'])} of references look looping by the same rule"
            )
        sep = (tr.get("semantic") or {}).get("separation")
        if sep:
            lines.append(
                f"- semantic score: {sep['encoder']}, cosine of output and reference; on this test set it gives "
                f"matched (source, reference) pairs {sep['matched_mean']:.3f} and mismatched ones "
                f"{sep['mismatched_mean']:.3f} (AUC {sep['auc']:.3f})"
            )
        for name, signature in tr.get("signatures", {}).items():
            lines.append(f"- {name} signature: `{signature}`")
        for note in tr.get("notes", []):
            lines.append(f"- note: {note}")
        if tr.get("floors"):
            lines += [
                "",
                "## Against the floors",
                "",
                "What the same metrics give for copying the English source, and for this checkpoint's own "
                "outputs scored against shuffled references. A score near a floor means little.",
                "",
                floors_table(result),
            ]
    lines += ["", "## Course bars", "", course_bars_table([result])]
    if result.get("examples"):
        lines += ["", "## Example translations", "", examples_table(result["examples"])]
    for key, title in (("best_examples", "Best (sentence chrF)"), ("worst_examples", "Worst (sentence chrF)")):
        if result.get(key):
            lines += ["", f"## {title}", "", examples_table(result[key])]
    return "\n".join(lines) + "\n"


def comparison_markdown(results: Sequence[Result]) -> str:
    """The comparison report of several checkpoints: the table, then each one's examples."""
    lines = ["# Checkpoint comparison", "", comparison_table(results), ""]
    for result in results:
        lines.append(f"- `{result['label']}`: `{result['checkpoint']}`")
    floors = [r for r in results if (r.get("translation") or {}).get("floors")]
    if floors:
        lines += ["", "## Against the floors", ""]
        for result in floors:
            lines += [f"`{result['label']}`:", "", floors_table(result), ""]
    lines += ["", "## Course bars", "", course_bars_table(results)]
    for result in results:
        if result.get("examples"):
            lines += ["", f"## Example translations: `{result['label']}`", "", examples_table(result["examples"])]
    return "\n".join(lines) + "\n"


def plot_comparison(results: Sequence[Result], path: str | os.PathLike[str]) -> Path:
    """Grouped bar chart (PNG) of chrF and BLEU per checkpoint; returns the path written.

    Uses matplotlib's Agg canvas directly, so it never touches a display or pyplot's global state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scored = [r for r in results if r.get("translation")]
    if not scored:
        raise ValueError("plot_comparison: no result has translation scores to plot")
    metrics = (("chrF", "chrf"), ("BLEU", "bleu"))
    labels = [r["label"] for r in scored]
    width = 0.8 / len(metrics)
    fig = Figure(figsize=(max(5.0, 1.6 * len(scored) + 2.0), 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = 0.0
    for j, (name, key) in enumerate(metrics):
        values = [r["translation"][key] for r in scored]
        xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(scored))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7, padding=2)
        top = max(top, *values)
    ax.set_xticks(range(len(scored)), labels, rotation=15 if len(scored) > 3 else 0, ha="center")
    ax.set_ylabel("score (0–100)")
    ax.set_ylim(0, max(5.0, min(100.0, top * 1.2 + 1)))
    sizes = {r["translation"]["n"] for r in scored}
    ax.set_title("EN → zh-TW translation quality" + (f" ({sizes.pop()} test pairs)" if len(sizes) == 1 else ""))
    ax.legend(loc="upper left", frameon=False, ncols=len(metrics))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
