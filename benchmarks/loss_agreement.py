"""Do the fast settings train the same model? Loss curves of one recipe under the plain and the fast settings.

    python benchmarks/loss_agreement.py                                   # recipes/tiny/pretrain.yaml, 300 steps
    python benchmarks/loss_agreement.py --recipe recipes/small/sft.yaml --steps 300 --variants fp32 bf16 seed
    python benchmarks/loss_agreement.py --quick                           # a few steps: checks it runs

Every variant trains the recipe through the stage runner from the same seed (same initial weights, same data
order) for ``--steps`` steps, logging the training loss at every step, and is evaluated on the validation
split at the end. Variants: ``fp32`` (the plain setting, the reference), ``bf16`` (bf16 autocast),
``compile`` (``torch.compile``, fp32), ``bf16+compile``, and ``seed`` (fp32 from the next seed: how far two
equally valid runs drift apart, the yardstick for the others).

Agreement, against the reference, after the warm-up (the first 10% of the steps): the largest relative gap of
the smoothed training loss (moving average over ``--window`` steps) and the relative gap of the final
validation loss. A variant passes when both are within ``--tolerance`` and ``--eval-tolerance``. A PNG shows the
curves and the gaps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from common import NO_EVAL_NO_SAVE, describe, device_info, format_table, repo_path, write_json  # noqa: E402

VARIANTS = {
    "fp32": ["--precision", "fp32"],
    "bf16": ["--precision", "bf16"],
    "compile": ["--precision", "fp32", "--torch_compile", "true"],
    "bf16+compile": ["--precision", "bf16", "--torch_compile", "true"],
    "seed": ["--precision", "fp32"],  # and the next seed
}


def train_one(recipe: str, variant: str, steps: int, overrides: list[str], out: Path) -> dict:
    """One variant's run: every step's training loss, the final validation loss, the wall time."""
    from transformers import TrainerCallback

    from minimind_hf.training import runner as stage_runner
    from minimind_hf.training.plotting import loss_points

    class History(TrainerCallback):
        log_history: list[dict] = []

        def on_train_end(self, args, state, control, **kwargs):
            self.log_history = list(state.log_history)

    argv = [
        recipe,
        *VARIANTS[variant],
        "--output_dir",
        str(out / "run"),
        "--max_steps",
        str(steps),
        "--skip_if_done",
        "false",
        "--logging_steps",
        "1",
        *NO_EVAL_NO_SAVE,
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        *overrides,
    ]
    stage_args, training_args = stage_runner.parse_args(argv)
    if variant == "seed":
        training_args.seed += 1  # initial weights and, unless the recipe sets data_seed, the data order
        if training_args.data_seed is not None:
            training_args.data_seed += 1
    start = time.perf_counter()
    history = History()
    summary = stage_runner.run(stage_args, training_args, callbacks=[history])
    return {
        "variant": variant,
        "losses": [loss for _, loss in sorted(loss_points(history.log_history)["train"])],
        "eval_loss": summary["metrics"].get("eval_loss"),
        "train_runtime_s": summary["metrics"].get("train_runtime"),
        "wall_s": time.perf_counter() - start,
    }


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what there is)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def compare(reference: dict, run: dict, window: int, skip: int) -> dict:
    ref, new = smooth(reference["losses"], window), smooth(run["losses"], window)
    n = min(len(ref), len(new))
    gaps = [(new[i] - ref[i]) / ref[i] for i in range(skip, n)]
    worst = max(range(len(gaps)), key=lambda i: abs(gaps[i])) if gaps else None
    eval_gap = None
    if reference["eval_loss"] and run["eval_loss"]:
        eval_gap = (run["eval_loss"] - reference["eval_loss"]) / reference["eval_loss"]
    return {
        "max_gap_pct": 100 * abs(gaps[worst]) if gaps else None,
        "max_gap_step": skip + worst + 1 if gaps else None,
        "mean_gap_pct": 100 * sum(gaps) / len(gaps) if gaps else None,
        "final_train_loss": new[n - 1],
        "eval_gap_pct": 100 * eval_gap if eval_gap is not None else None,
        "gaps": gaps,
    }


def plot(runs: list[dict], window: int, skip: int, tolerance: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 6.5), dpi=120, sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    for i, run in enumerate(runs):
        colour = f"C{i}"  # one colour per variant in both panels
        steps = range(1, len(run["losses"]) + 1)
        top.plot(steps, smooth(run["losses"], window), label=run["variant"], linewidth=1.2, color=colour)
        if "gaps" in run:
            bottom.plot(
                range(skip + 1, skip + 1 + len(run["gaps"])),
                [100 * g for g in run["gaps"]],
                label=run["variant"],
                linewidth=1,
                color=colour,
            )
    top.set_ylabel(f"training loss ({window}-step mean)")
    top.set_title(title)
    top.grid(alpha=0.3)
    top.legend()
    bottom.axhspan(-100 * tolerance, 100 * tolerance, color="green", alpha=0.12, label="tolerance")
    bottom.axhline(0, color="black", linewidth=0.6)
    bottom.set_ylabel(f"gap to {runs[0]['variant']} (%)")
    bottom.set_xlabel("step")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _run_child(
    recipe: str, variant: str, steps: int, overrides: list[str], threads: int | None, out: Path
) -> subprocess.Popen:
    cmd = [
        sys.executable,
        __file__,
        "--recipe",
        recipe,
        "--child",
        variant,
        "--steps",
        str(steps),
        "--child-out",
        str(out),
    ]
    if threads:
        cmd += ["--threads", str(threads)]
    log = open(out / "log.txt", "w")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([*cmd, "--", *overrides], stdout=log, stderr=subprocess.STDOUT, env=env)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="anything after -- goes to the recipe as overrides"
    )
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "tiny" / "pretrain.yaml"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["fp32", "bf16", "compile", "seed"],
        choices=list(VARIANTS),
        help="the first is the reference",
    )
    parser.add_argument("--window", type=int, default=20, help="moving-average window of the training loss")
    parser.add_argument("--tolerance", type=float, default=0.02, help="largest relative gap of the smoothed loss")
    parser.add_argument("--eval-tolerance", type=float, default=0.01, help="largest relative gap of the eval loss")
    parser.add_argument("--jobs", type=int, default=1, help="variants trained at once, each on its own threads")
    parser.add_argument("--threads", type=int, help="torch CPU threads per variant (default: cores / jobs)")
    parser.add_argument("--quick", action="store_true", help="tiny preset, 12 steps: checks the benchmark runs")
    parser.add_argument("--out", default=None, help="folder for the PNG and JSON (default: out/bench)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args(argv)
    overrides = [o for o in overrides if o != "--"]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:  # one variant, in its own process (compiled graphs and thread pools do not leak across)
        result = train_one(args.recipe, args.child, args.steps, overrides, Path(args.child_out))
        (Path(args.child_out) / "result.json").write_text(json.dumps(result), encoding="utf-8")
        return result
    if args.quick:
        args.steps, args.window = 12, 3
        overrides = [
            "--preset",
            "tiny",
            "--block_size",
            "64",
            "--per_device_train_batch_size",
            "4",
            "--max_eval_samples",
            "8",
            "--warmup_steps",
            "2",
            *overrides,
        ]
    threads = args.threads or max((os.cpu_count() or 1) // args.jobs, 1)
    if not torch.cuda.is_available():
        torch.set_num_threads(threads)
    info = device_info("cuda" if torch.cuda.is_available() else "cpu")
    print(describe(info), flush=True)
    work = Path(tempfile.mkdtemp(prefix="loss_agreement_"))
    pending = list(args.variants)
    running: list[tuple[str, subprocess.Popen, Path]] = []
    runs: dict[str, dict] = {}
    while pending or running:
        while pending and len(running) < args.jobs:
            variant = pending.pop(0)
            (work / variant).mkdir()
            running.append(
                (
                    variant,
                    _run_child(args.recipe, variant, args.steps, overrides, threads, work / variant),
                    work / variant,
                )
            )
        time.sleep(1)
        for item in list(running):
            variant, proc, folder = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode != 0:
                tail = (folder / "log.txt").read_text(encoding="utf-8", errors="replace")[-3000:]
                raise SystemExit(f"variant {variant} failed (exit {proc.returncode}):\n{tail}")
            runs[variant] = json.loads((folder / "result.json").read_text(encoding="utf-8"))
            print(f"  {variant}: done in {runs[variant]['wall_s']:.0f} s", flush=True)
    ordered = [runs[v] for v in args.variants]
    reference, skip = ordered[0], max(args.steps // 10, 1)
    rows = [
        {
            "variant": reference["variant"],
            "final_train_loss": smooth(reference["losses"], args.window)[-1],
            "eval_loss": reference["eval_loss"],
            "train_runtime_s": reference["train_runtime_s"],
        }
    ]
    for run in ordered[1:]:
        stats = compare(reference, run, args.window, skip)
        run["gaps"] = stats.pop("gaps")
        agrees = (
            stats["max_gap_pct"] is not None
            and stats["max_gap_pct"] <= 100 * args.tolerance
            and (stats["eval_gap_pct"] is None or abs(stats["eval_gap_pct"]) <= 100 * args.eval_tolerance)
        )
        rows.append(
            {
                "variant": run["variant"],
                "eval_loss": run["eval_loss"],
                "train_runtime_s": run["train_runtime_s"],
                "agrees": agrees,
                **stats,
            }
        )
    name = f"loss_agreement_{Path(args.recipe).parent.name}_{Path(args.recipe).stem}"
    out = Path(args.out) if args.out else ROOT / "out" / "bench"
    png = out / f"{name}.png"
    plot(
        ordered,
        args.window,
        skip,
        args.tolerance,
        png,
        f"{repo_path(args.recipe)}: {args.steps} steps ({info['device'].split(',')[0]})",
    )
    print(
        f"{repo_path(args.recipe)}, {args.steps} steps, reference {reference['variant']}; gaps of the "
        f"{args.window}-step mean training loss after step {skip}; tolerance {100 * args.tolerance:g}% "
        f"(train) and {100 * args.eval_tolerance:g}% (final eval loss)"
    )
    print(
        format_table(
            [
                ("variant", "variant"),
                ("final_train_loss", "train loss (end)"),
                ("eval_loss", "eval loss"),
                ("max_gap_pct", "max gap %"),
                ("max_gap_step", "at step"),
                ("mean_gap_pct", "mean gap %"),
                ("eval_gap_pct", "eval gap %"),
                ("train_runtime_s", "train s"),
                ("agrees", "agrees"),
            ],
            rows,
        )
    )
    print(f"wrote {png}")
    payload = {
        "info": info,
        "recipe": repo_path(args.recipe),
        "steps": args.steps,
        "window": args.window,
        "tolerance": args.tolerance,
        "eval_tolerance": args.eval_tolerance,
        "threads": threads,
        "jobs": args.jobs,
        "rows": rows,
        "losses": {r["variant"]: r["losses"] for r in ordered},
    }
    write_json(str(out / f"{name}.json"), payload)
    return payload


if __name__ == "__main__":
    main()
