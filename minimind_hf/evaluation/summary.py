"""The results of a whole pipeline run in one folder: ``results.json``, ``results.md`` and charts.

    python -m minimind_hf.evaluation.summary out --output out/quality --command "make quality SCALE=small"

reads what the stages and evaluations left under the run folder — ``<stage>/stage_complete.json`` (wall
time, losses, data), ``eval/<name>/eval.json`` (one evaluation each), ``pairs/dpo.report.json`` (the
preference pairs) — and writes one table per test set with every stage's scores next to the floors,
the course bars, the wall time of each step and of the whole run, the device and the date; plus a bar
chart per test set and the loss curves of all stages in one figure (GRPO's: its reward and chrF reward).
The GRPO runs (``grpo`` and its control, ``grpo-control``) also get a line each: their rewards, the share of
groups that carried no signal, and where a step's wall time went.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from ..data.layout import COMPLETE_MARKER, CONTROL_RUNS, STAGE_NAMES
from ..training.plotting import loss_points, reward_points
from ..utils.command_errors import one_line_errors
from .report import COURSE_BARS, _percent, course_bars_table

#: The run folders summarised: every stage's, then the control runs beside them.
RUN_FOLDERS: tuple[str, ...] = STAGE_NAMES + CONTROL_RUNS


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def device_name() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def collect(run_dir: Path) -> dict[str, Any]:
    stages = {s: _read(run_dir / s / COMPLETE_MARKER) for s in RUN_FOLDERS}
    evaluations = {}
    for path in sorted((run_dir / "eval").glob("**/eval.json")):
        result = _read(path)
        if result:
            evaluations[str(path.parent.relative_to(run_dir / "eval"))] = result
    return {
        "stages": {k: v for k, v in stages.items() if v},
        "evaluations": evaluations,
        "pairs": _read(run_dir / "pairs" / "dpo.report.json"),
    }


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _test_rows(evaluations: dict[str, dict]) -> dict[str, list[tuple[str, dict]]]:
    """Translation results grouped by test file."""
    by_test: dict[str, list[tuple[str, dict]]] = {}
    for name, result in evaluations.items():
        tr = result.get("translation")
        if tr:
            by_test.setdefault(tr["file"], []).append((name, result))
    return by_test


def results_markdown(summary: dict[str, Any]) -> str:
    lines = ["# Quality run", ""]
    lines.append(f"- command: `{summary['command']}`" if summary.get("command") else "- command: (not given)")
    lines += [
        f"- device: {summary['device']}",
        f"- date: {summary['date']}",
        f"- wall time of the stages: {summary['stage_wall_s'] / 60:.1f} min"
        + (f"; whole run: {summary['total_wall_s'] / 60:.1f} min" if summary.get("total_wall_s") else ""),
        "",
    ]
    warnings = [w for info in summary["stages"].values() for w in info.get("warnings") or []]
    if warnings:
        lines += ["**Warning: a stage's own validation says it made the model worse:**", ""]
        lines += [f"- {warning}" for warning in warnings] + [""]
    lines += [
        "## Stages",
        "",
        "| stage | steps | wall | validation loss | validation perplexity | data |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for stage, info in summary["stages"].items():
        metrics = info.get("metrics", {})
        files = (
            ", ".join(Path(f).name for f in (info.get("data") or {}).get("train", {}).get("sources", []))
            if isinstance((info.get("data") or {}).get("train"), dict)
            else ""
        )
        lines.append(
            f"| {stage} | {info.get('global_step')} | {info.get('wall_time_s', 0) / 60:.1f} min | "
            f"{_fmt(None if info.get('grpo') else metrics.get('eval_loss'), '.3f')} | "
            f"{_fmt(metrics.get('eval_perplexity'), '.1f')} | "
            f"{files} |"
        )
    for stage, info in summary["stages"].items():
        grpo = info.get("grpo")
        if grpo:
            timing = grpo.get("step_time_s") or {}
            share = grpo.get("zero_signal_share")
            zero_share = 100 * share if share is not None else None
            lines += [
                "",
                f"{stage}: rewards {grpo.get('rewards')}; last logged reward {_fmt(grpo.get('final_reward'), '.3f')}; "
                f"{grpo.get('zero_signal_groups')} of {grpo.get('groups_seen')} groups without signal "
                f"({_fmt(zero_share, '.1f')}%); "
                f"a step took {_fmt(timing.get('total'))} s: generation {_fmt(timing.get('generate'))} s, "
                f"rewards {_fmt(timing.get('reward'))} s, update {_fmt(timing.get('update'))} s.",
            ]
    pairs = summary.get("pairs")
    if pairs:
        lines += [
            "",
            f"DPO pairs: {pairs['kept']} of {pairs['sources']} sources kept "
            f"({pairs['reference_as_chosen']} with the reference as chosen), scored by {pairs['method']}, "
            f"median margin {_fmt(pairs['margin'].get('median'), '.1f')}; dropped {pairs['dropped'] or 'none'}.",
        ]
    for test, rows in _test_rows(summary["evaluations"]).items():
        lines += [
            "",
            f"## `{test}`",
            "",
            "| evaluation | stage | system | chrF | BLEU | semantic | COMET | Traditional (of Chinese outputs) | "
            "empty | no CJK | looping | untranslated | length ratio |",
            "|---|---|---|" + "---:|" * 10,
        ]
        for name, result in rows:
            tr = result["translation"]
            health = tr.get("health", {})
            lines.append(
                f"| {name} | {result.get('stage') or '–'} | {tr['generation'].get('system') or '–'} | "
                f"{tr['chrf']:.2f} | "
                f"{tr['bleu']:.2f} | {_fmt((tr.get('semantic') or {}).get('score'), '.3f')} | "
                f"{_fmt(tr.get('comet'), '.4f')} | {_percent(tr.get('traditional_share'))} | "
                f"{_percent(health.get('empty_share'))} | {_percent(health.get('no_cjk_share'))} | "
                f"{_percent(health.get('looping_share'))} | {_percent(health.get('untranslated_share'))} | "
                f"{_fmt(health.get('length_ratio'))} |"
            )
        floors = rows[0][1]["translation"].get("floors") or {}
        if "copy_source" in floors:
            copy = floors["copy_source"]
            shuffled = [r["translation"]["floors"]["shuffled_references"]["chrf"] for _, r in rows]
            lines += [
                "",
                f"Floors on this test set: the English source copied scores chrF {copy['chrf']:.2f} / "
                f"BLEU {copy['bleu']:.2f}; each model's outputs against shuffled "
                f"references score chrF {min(shuffled):.2f}-{max(shuffled):.2f}.",
                f"Decoding: {rows[0][1]['translation']['generation']}.",
            ]
    if summary["evaluations"]:
        lines += [
            "",
            "## Course bars",
            "",
            course_bars_table(
                [dict(r, label=n) for n, r in summary["evaluations"].items() if r.get("stage") in COURSE_BARS]
            ),
        ]
    return "\n".join(lines) + "\n"


def plot_tests(summary: dict[str, Any], out_dir: Path) -> list[Path]:
    """A bar chart per test set: chrF and BLEU of each evaluation, with the copy-source floor dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    paths = []
    for index, (test, rows) in enumerate(_test_rows(summary["evaluations"]).items()):
        fig = Figure(figsize=(max(5.0, 1.5 * len(rows) + 2), 4), dpi=120)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        names = [name for name, _ in rows]
        for j, (key, label) in enumerate((("chrf", "chrF"), ("bleu", "BLEU"))):
            values = [r["translation"][key] for _, r in rows]
            bars = ax.bar([i + (j - 0.5) * 0.38 for i in range(len(rows))], values, 0.38, label=label)
            ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7, padding=2)
        floors = rows[0][1]["translation"].get("floors") or {}
        if "copy_source" in floors:
            ax.axhline(floors["copy_source"]["chrf"], ls="--", color="grey", lw=1, label="copy-source chrF")
        ax.set_xticks(range(len(rows)), names, rotation=15 if len(rows) > 3 else 0)
        ax.set_ylabel("score (0-100)")
        ax.set_title(Path(test).name)
        ax.legend(frameon=False, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"scores_{index}_{Path(test).stem.replace('.', '_')}.png"
        fig.savefig(path)
        paths.append(path)
    return paths


def plot_losses(run_dir: Path, path: Path) -> Path | None:
    """Training and validation loss of every stage, side by side, from each checkpoint's trainer state.

    For GRPO, whose loss says little, the total reward and the chrF reward.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    histories = {}
    for stage in RUN_FOLDERS:
        states = sorted(
            (run_dir / stage).glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[-1])
        )
        state = _read(states[-1]) if states else None
        if state:
            histories[stage] = state["log_history"]
    if not histories:
        return None
    fig = Figure(figsize=(3.2 * len(histories), 3), dpi=120)
    FigureCanvasAgg(fig)
    for i, (stage, history) in enumerate(histories.items(), 1):
        ax = fig.add_subplot(1, len(histories), i)
        if stage.startswith("grpo"):  # GRPO's loss says little: its reward, chrF reward and held-out reward
            curves = reward_points(history)
            lines = (("reward", "-"), ("chrf_reward", "-"), ("chrf_shuffled_reward", "-"), ("eval_reward", "o-"))
        else:
            curves = loss_points(history)  # the runner's own reader of a log history
            lines = (("train", "-"), ("validation", "o-"))
        for key, style in lines:
            if curves.get(key):
                label = {"train": "loss", "validation": "eval loss"}.get(key, key.replace("_", " "))
                ax.plot(*zip(*curves[key], strict=True), style, ms=3, label=label)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def summarise(
    run_dir: str | Path, output: str | Path, command: str | None = None, total_wall_s: float | None = None
) -> dict[str, Any]:
    run_dir, out = Path(run_dir), Path(output)
    out.mkdir(parents=True, exist_ok=True)
    summary = collect(run_dir)
    summary.update(
        command=command,
        device=device_name(),
        date=time.strftime("%Y-%m-%d"),
        stage_wall_s=sum(s.get("wall_time_s", 0) for s in summary["stages"].values()),
        total_wall_s=total_wall_s,
    )
    charts = [str(p) for p in plot_tests(summary, out)]
    losses = plot_losses(run_dir, out / "loss_curves.png")
    summary["charts"] = charts + ([str(losses)] if losses else [])
    (out / "results.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    markdown = results_markdown(summary)
    markdown += "".join(f"\n![{Path(c).stem}]({Path(c).name})\n" for c in summary["charts"])
    (out / "results.md").write_text(markdown, encoding="utf-8")
    return summary


@one_line_errors("python -m minimind_hf.evaluation.summary")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minimind_hf.evaluation.summary", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run_dir", help="the folder the stages wrote into (out)")
    parser.add_argument("--output", required=True, help="where results.json / results.md / charts go")
    parser.add_argument("--command", help="the command that made the run, for the record")
    parser.add_argument("--started", type=float, help="the run's start (seconds since the epoch) for its wall time")
    args = parser.parse_args(argv)
    total = time.time() - args.started if args.started else None
    summary = summarise(args.run_dir, args.output, args.command, total)
    print(results_markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
