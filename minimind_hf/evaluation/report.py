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
    ("chrF++", "translation", "chrf++", _number(".2f")),
    ("BLEU", "translation", "bleu", _number(".2f")),
    ("COMET", "translation", "comet", _number(".4f")),
    ("Simplified outputs", "script", "simplified_output_rate", _percent),
    ("CJK share", "script", "cjk_share", _percent),
    ("test n", "translation", "n", _number("d")),
)


def _get(result: Result, section: str | None, key: str) -> Any:
    if section == "script":
        part = (result.get("translation") or {}).get("script")
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


def examples_table(examples: Sequence[dict[str, str]]) -> str:
    """Example translations as a markdown table."""
    lines = ["| # | source | reference | hypothesis |", "|---:|---|---|---|"]
    for i, ex in enumerate(examples, 1):
        lines.append(f"| {i} | {_cell(ex['source'])} | {_cell(ex['reference'])} | {_cell(ex['hypothesis'])} |")
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
            f"block size {val['block_size']}, {'packed' if val['packed'] else 'one document per row'}; "
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
        for name, signature in tr.get("signatures", {}).items():
            lines.append(f"- {name} signature: `{signature}`")
        for note in tr.get("notes", []):
            lines.append(f"- note: {note}")
    if result.get("examples"):
        lines += ["", "## Example translations", "", examples_table(result["examples"])]
    return "\n".join(lines) + "\n"


def comparison_markdown(results: Sequence[Result]) -> str:
    """The comparison report of several checkpoints: the table, then each one's examples."""
    lines = ["# Checkpoint comparison", "", comparison_table(results), ""]
    for result in results:
        lines.append(f"- `{result['label']}`: `{result['checkpoint']}`")
    for result in results:
        if result.get("examples"):
            lines += ["", f"## Example translations: `{result['label']}`", "", examples_table(result["examples"])]
    return "\n".join(lines) + "\n"


def plot_comparison(results: Sequence[Result], path: str | os.PathLike[str]) -> Path:
    """Grouped bar chart (PNG) of chrF, chrF++ and BLEU per checkpoint; returns the path written.

    Uses matplotlib's Agg canvas directly, so it never touches a display or pyplot's global state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scored = [r for r in results if r.get("translation")]
    if not scored:
        raise ValueError("plot_comparison: no result has translation scores to plot")
    metrics = (("chrF", "chrf"), ("chrF++", "chrf++"), ("BLEU", "bleu"))
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
