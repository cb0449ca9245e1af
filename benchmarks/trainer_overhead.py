"""What the stage runner costs over a plain PyTorch loop, step for step, on the same machine at the same time.

    python benchmarks/trainer_overhead.py                       # recipes/tiny/pretrain.yaml, 40 steps
    python benchmarks/trainer_overhead.py --recipe recipes/tiny/sft.yaml --steps 30 --json out/bench/sft.json
    python benchmarks/trainer_overhead.py --quick               # a few steps of the tiny preset (a smoke test)

The stage runner (``minimind_hf.training.runner.run``: ``transformers.Trainer`` with its data loader, collator, logging,
finite-loss guard, evaluation and checkpoints) trains the recipe; after every one of its optimizer steps a
callback runs one step of a plain loop -- the same model shape, batch, data, AdamW hyper-parameters,
gradient clipping and learning-rate schedule, a bare ``DataLoader`` and no reading of the loss. The two are
paired step by step in one process, so a change of machine load hits both alike, and the stage runner's own
time per step is the time between two of its steps less the plain step that ran in between.

Evaluation and checkpoints run every ``--steps / 2`` steps (as in the tiny recipes: two of each per run);
their measured cost per event then projects the overhead of the recipe as written (its own ``max_steps``,
``eval_steps``, ``save_steps``).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from common import describe, device_info, format_table, load_average, repo_path, write_json  # noqa: E402
from transformers import TrainerCallback, get_scheduler  # noqa: E402

from minimind_hf.training import runner as stage_runner  # noqa: E402


class PlainLoop:
    """One optimizer step at a time of the loop a user would write by hand."""

    def __init__(self, stage_args, training_args, train_dataset, collator, device: str) -> None:
        model, _ = stage_runner._load_model(stage_args)
        self.model = stage_runner.STAGES[stage_args.stage].prepare_model(model, stage_args).to(device).train()
        self.device = device
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.params = params
        self.optimizer = torch.optim.AdamW(
            params,
            lr=training_args.learning_rate,
            betas=(training_args.adam_beta1, training_args.adam_beta2),
            eps=training_args.adam_epsilon,
            weight_decay=training_args.weight_decay,
        )
        self.scheduler = get_scheduler(
            training_args.lr_scheduler_type,
            self.optimizer,
            num_warmup_steps=training_args.warmup_steps,
            num_training_steps=training_args.max_steps,
            scheduler_specific_kwargs=training_args.lr_scheduler_kwargs,
        )
        if collator is None:
            dataset, collate = train_dataset.with_format("torch"), None
        else:
            dataset, collate = train_dataset, collator
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=training_args.per_device_train_batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=collate,
        )
        self.batches = iter(self.loader)
        self.max_grad_norm = training_args.max_grad_norm
        self.autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bool(training_args.bf16))
        self.tokens = self.n_steps = 0

    def step(self) -> None:
        try:
            batch = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            batch = next(self.batches)
        batch = {k: v.to(self.device).long() for k, v in batch.items()}
        self.tokens += int(batch["input_ids"].numel())
        self.n_steps += 1
        with self.autocast:
            loss = self.model(**batch).loss
        loss.backward()
        if self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)


class PairedSteps(TrainerCallback):
    """Times the stage runner's steps and what it does between them, and runs a plain step after each."""

    def __init__(self, plain: PlainLoop, warmup: int) -> None:
        self.plain, self.warmup = plain, warmup
        self.marker: float | None = None
        self.segments: list[tuple[str, float]] = []  # (what ended the segment, seconds) since the marker
        self.steps: list[dict] = []  # per stage-runner step after warm-up
        self.plain_times: list[float] = []

    def _segment(self, kind: str) -> None:
        if self.marker is not None:
            now = time.perf_counter()
            self.segments.append((kind, now - self.marker))
            self.marker = now

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._segment("evaluate" if logs and any(k.startswith("eval_") for k in logs) else "log")

    def on_evaluate(self, args, state, control, **kwargs):
        self._segment("evaluate")

    def on_save(self, args, state, control, **kwargs):
        self._segment("save")

    def on_step_end(self, args, state, control, **kwargs):
        self._segment("step")
        if state.global_step > self.warmup:
            costs = {"step": 0.0, "log": 0.0, "evaluate": 0.0, "save": 0.0}
            for kind, seconds in self.segments:
                costs[kind] += seconds
            self.steps.append({"global_step": state.global_step, **costs})
        self.segments = []
        start = time.perf_counter()
        self.plain.step()
        if state.global_step > self.warmup:
            self.plain_times.append(time.perf_counter() - start)
        self.marker = time.perf_counter()


def measure(recipe: str, steps: int, warmup: int, overrides: list[str]) -> dict:
    out = Path(tempfile.mkdtemp(prefix="trainer_overhead_"))
    every = max(steps // 2, 1)
    argv = [
        recipe,
        "--output_dir",
        str(out / "run"),
        "--max_steps",
        str(steps),
        "--skip_if_done",
        "false",
        "--eval_steps",
        str(every),
        "--save_steps",
        str(every),
        "--disable_tqdm",
        "true",
        *overrides,
    ]
    stage_args, training_args = stage_runner.parse_args(argv)
    written_args = stage_runner.parse_args([recipe, "--output_dir", str(out / "unused"), *overrides])[1]
    device = "cpu" if training_args.use_cpu or not torch.cuda.is_available() else "cuda"
    _, tokenizer = stage_runner._load_model(stage_args)
    train, _, collator, _ = stage_runner.build_datasets(stage_args, training_args, tokenizer)
    plain = PlainLoop(stage_args, training_args, train, collator, device)
    paired = PairedSteps(plain, warmup)
    start = time.perf_counter()
    stage_runner.run(stage_args, training_args, callbacks=[paired])
    wall = time.perf_counter() - start

    rows = paired.steps
    tokens_per_step = plain.tokens / plain.n_steps
    plain_s = statistics.median(paired.plain_times)
    quiet = [r["step"] for r in rows if r["log"] == r["evaluate"] == r["save"] == 0.0]
    runner_s = statistics.median(quiet)
    ratios = [r["step"] / p for r, p in zip(rows, paired.plain_times, strict=True)]
    log_cost = [r["log"] for r in rows if r["log"]]
    eval_cost = [r["evaluate"] for r in rows if r["evaluate"]]
    save_cost = [r["save"] for r in rows if r["save"]]
    per_log = statistics.median(log_cost) if log_cost else 0.0
    per_eval = statistics.median(eval_cost) if eval_cost else 0.0
    per_save = statistics.median(save_cost) if save_cost else 0.0
    total_runner = sum(r["step"] + r["log"] + r["evaluate"] + r["save"] for r in rows)

    # the recipe as written: its own number of steps, logs, evaluations and checkpoints
    n = written_args.max_steps
    n_logs = n // max(written_args.logging_steps, 1) if written_args.logging_strategy != "no" else 0
    n_evals = n // max(written_args.eval_steps or n, 1) if written_args.eval_strategy != "no" else 0
    n_saves = n // max(written_args.save_steps or n, 1) if written_args.save_strategy != "no" else 0
    step_overhead = statistics.median(ratios) - 1
    projected = (n * step_overhead * plain_s + n_logs * per_log + n_evals * per_eval + n_saves * per_save) / (
        n * plain_s
    )
    return {
        "recipe": repo_path(recipe),
        "stage": stage_args.stage,
        "device": device,
        "steps_paired": len(rows),
        "tokens_per_step": tokens_per_step,
        "plain_tokens_per_s": tokens_per_step / plain_s,
        "runner_tokens_per_s": tokens_per_step / runner_s,
        "step_overhead_pct": 100 * step_overhead,
        "window_overhead_pct": 100 * (total_runner / sum(paired.plain_times) - 1),
        "ms_per_plain_step": 1000 * plain_s,
        "ms_per_runner_step": 1000 * runner_s,
        "ms_per_log": 1000 * per_log,
        "ms_per_evaluate": 1000 * per_eval,
        "ms_per_save": 1000 * per_save,
        "recipe_as_written": {
            "max_steps": n,
            "logs": n_logs,
            "evaluations": n_evals,
            "checkpoints": n_saves,
            "projected_overhead_pct": 100 * projected,
        },
        "run_wall_s": wall,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="anything after -- goes to the recipe as overrides"
    )
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "tiny" / "pretrain.yaml"))
    parser.add_argument("--steps", type=int, default=40, help="stage-runner steps (each paired with a plain step)")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the figures")
    parser.add_argument("--quick", action="store_true", help="tiny preset, 8 steps: checks the benchmark runs")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--json", default=None, help="write the figures here")
    args, overrides = parser.parse_known_args(argv)
    overrides = [o for o in overrides if o != "--"]
    if args.quick:
        args.steps, args.warmup = 8, 2
        overrides = [
            "--preset",
            "tiny",
            "--block_size",
            "64",
            "--per_device_train_batch_size",
            "4",
            "--max_eval_samples",
            "8",
            "--report_to",
            "none",
            *overrides,
        ]
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("minimind_hf.training").setLevel(logging.WARNING)
    info = device_info("cuda" if torch.cuda.is_available() else "cpu")
    print(describe(info))
    result = measure(args.recipe, args.steps, args.warmup, overrides)
    result["load_average_after"] = load_average()
    written = result["recipe_as_written"]
    print(
        f"{result['recipe']} ({result['stage']}), {result['steps_paired']} paired steps after {args.warmup} "
        f"warm-up, {result['tokens_per_step']:.0f} tokens per step"
    )
    print(
        format_table(
            [("what", "what"), ("ms", "ms"), ("tokens_per_s", "tokens/s"), ("overhead", "vs plain")],
            [
                {
                    "what": "plain PyTorch loop, per step",
                    "ms": result["ms_per_plain_step"],
                    "tokens_per_s": result["plain_tokens_per_s"],
                },
                {
                    "what": "stage runner, per step (no log/eval/save)",
                    "ms": result["ms_per_runner_step"],
                    "tokens_per_s": result["runner_tokens_per_s"],
                    "overhead": f"{result['step_overhead_pct']:+.1f}%",
                },
                {"what": "stage runner, one log line", "ms": result["ms_per_log"]},
                {"what": "stage runner, one evaluation", "ms": result["ms_per_evaluate"]},
                {"what": "stage runner, one checkpoint", "ms": result["ms_per_save"]},
                {
                    "what": f"all {result['steps_paired']} paired steps",
                    "overhead": f"{result['window_overhead_pct']:+.1f}%",
                },
                {
                    "what": (
                        f"recipe as written ({written['max_steps']} steps, {written['logs']} logs, "
                        f"{written['evaluations']} evals, {written['checkpoints']} checkpoints), projected"
                    ),
                    "overhead": f"{written['projected_overhead_pct']:+.1f}%",
                },
            ],
        )
    )
    write_json(args.json, {"info": info, "result": result})
    return result


if __name__ == "__main__":
    main()
