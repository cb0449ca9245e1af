"""Tokens per second of each CPU recipe as the stage runner trains it: pretrain, SFT, LoRA, DPO and GRPO.

    python benchmarks/recipe_throughput.py                                # recipes/tiny/*.yaml, 30 steps each
    python benchmarks/recipe_throughput.py --scale small --steps 20       # recipes/small/*.yaml (needs make data)
    python benchmarks/recipe_throughput.py --recipes recipes/small/sft.yaml -- --precision fp32
    python benchmarks/recipe_throughput.py --quick                        # a few steps of each tiny recipe

Each recipe runs through ``minimind_hf.training.runner.run`` exactly as written (model, batch, sequence length,
precision, data loader), for ``--steps`` optimizer steps with evaluation and checkpoints off; the first
``--warmup`` steps are left out. A forward pre-hook on the trained model counts the tokens of every training
forward: all positions (what the matmuls see, padding included) and the real ones (attention mask set). DPO's
forward holds the chosen and the rejected reply of each pair. The stage's own time at the recipe's ``max_steps``
is projected from the measured seconds per step (evaluation and checkpoints not included).

Each stage starts from what the stage before it trained in the same run (SFT from the pretrained model, LoRA
from the SFT one, DPO from SFT with the LoRA adapter merged, GRPO from the DPO one): the speed of a step does not
depend on how well trained the weights are, except GRPO's, whose completions stop when the model ends them. GRPO's
generation runs without gradients, so its tokens are not counted: its figure is the update's.
A recipe benchmarked on its own starts from the paths it names.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from common import NO_EVAL_NO_SAVE, describe, device_info, format_table, load_average, repo_path, write_json  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from minimind_hf.data.layout import STAGE_NAMES, split_file  # noqa: E402
from minimind_hf.training import runner as stage_runner  # noqa: E402


class TokenClock(TrainerCallback):
    """Times every optimizer step and counts the tokens the model's training forwards saw in it."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.handle = None
        self.step_start: float | None = None
        self.train_start: float | None = None
        self.first_step_s: float | None = None  # compile, if any, falls in here
        self.tokens = self.real_tokens = 0
        self.steps: list[dict] = []
        self.batches_per_epoch: int | None = None

    def _count(self, module, args, kwargs) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return  # evaluation, or DPO's reference forward
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:
            return
        mask = kwargs.get("attention_mask")
        self.tokens += input_ids.numel()
        self.real_tokens += int(mask.sum()) if mask is not None else input_ids.numel()

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.handle = base.register_forward_pre_hook(self._count, with_kwargs=True)
        self.train_start = time.perf_counter()
        try:
            self.batches_per_epoch = len(kwargs["train_dataloader"])
        except (KeyError, TypeError):  # an iterable dataset has no length
            self.batches_per_epoch = None

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_start = time.perf_counter()
        self.tokens = self.real_tokens = 0

    def on_step_end(self, args, state, control, **kwargs):
        seconds = time.perf_counter() - self.step_start
        if state.global_step == 1:
            self.first_step_s = time.perf_counter() - self.train_start
        if state.global_step > self.warmup:
            self.steps.append({"s": seconds, "tokens": self.tokens, "real_tokens": self.real_tokens})

    def on_train_end(self, args, state, control, **kwargs):
        if self.handle is not None:
            self.handle.remove()


def _start_from(stage: str, outputs: dict[str, Path], overrides: list[str]) -> list[str]:
    """Point each recipe at the output of the stage before it in this run.

    SFT and LoRA start from this run's SFT/pretrain output, DPO from its SFT model and LoRA adapter, GRPO from its DPO
    model; a recipe run on its own keeps the paths it names.
    """
    start = {"sft": ("pretrain", None), "lora": ("sft", None), "dpo": ("sft", "lora"), "grpo": ("dpo", None)}.get(stage)
    if start is None or start[0] not in outputs or "--model_name_or_path" in overrides:
        return []
    model, adapter = start
    extra = ["--model_name_or_path", str(outputs[model])]
    if adapter and adapter in outputs and "--adapter_name_or_path" not in overrides:
        extra += ["--adapter_name_or_path", str(outputs[adapter])]
    return extra


def _recipe_steps(written, batches_per_epoch: int | None) -> int | None:
    """The optimizer steps of the recipe as written.

    Its ``max_steps``, else its epochs over the batches the measured run's data loader holds (``None`` where that is
    unknown).
    """
    if written.max_steps and written.max_steps > 0:
        return written.max_steps
    if not batches_per_epoch:
        return None
    return math.ceil(written.num_train_epochs * math.ceil(batches_per_epoch / written.gradient_accumulation_steps))


def measure(recipe: str, steps: int, warmup: int, outputs: dict[str, Path], overrides: list[str]) -> dict:
    """Trains ``recipe`` for ``steps`` steps into a fresh folder (recorded in ``outputs`` by stage)."""
    out = Path(tempfile.mkdtemp(prefix="recipe_throughput_"))
    as_written, written = stage_runner.parse_args([recipe, "--output_dir", str(out / "as_written"), *overrides])
    stage = as_written.stage
    argv = [
        recipe,
        "--output_dir",
        str(out / "run"),
        "--max_steps",
        str(steps),
        "--skip_if_done",
        "false",
        *NO_EVAL_NO_SAVE,
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--logging_steps",
        str(max(steps, 1)),
        *_start_from(stage, outputs, overrides),
        *overrides,
    ]
    data = as_written.data
    if (
        data.validation_files
        and "--train_files" not in overrides
        and not all(Path(f).exists() for f in data.train_files)
    ):
        # the DPO recipes train on the pairs `make pairs` writes; where there are none yet, the data folder's own
        shipped = Path(data.validation_files[0]).with_name(split_file(stage))
        print(f"{recipe}: {data.train_files} not made yet; measuring on {shipped}", flush=True)
        argv += ["--train_files", str(shipped)]
    stage_args, training_args = stage_runner.parse_args(argv)
    missing = [
        p
        for p in (stage_args.model.model_name_or_path, stage_args.model.adapter_name_or_path)
        if p and not Path(p).exists()
    ]
    if missing:
        raise SystemExit(
            f"{recipe}: {missing[0]} does not exist; benchmark the earlier stages in the same run "
            "or pass --model_name_or_path after --"
        )
    clock = TokenClock(warmup)
    start = time.perf_counter()
    stage_runner.run(stage_args, training_args, callbacks=[clock])
    wall = time.perf_counter() - start
    outputs[stage] = out / "run"
    rows = clock.steps
    if not rows:
        raise SystemExit(f"{recipe}: no step after the {warmup} warm-up steps; raise --steps")
    seconds = sum(r["s"] for r in rows)
    s_per_step = statistics.median(r["s"] for r in rows)
    tokens = sum(r["tokens"] for r in rows)
    real = sum(r["real_tokens"] for r in rows)
    recipe_steps = _recipe_steps(written, clock.batches_per_epoch)
    return {
        "recipe": repo_path(recipe),
        "stage": stage_args.stage,
        "precision": "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32",
        "compile": bool(training_args.torch_compile),
        "batch": training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps,
        "steps_timed": len(rows),
        "tokens_per_step": tokens / len(rows),
        "tokens_per_s": tokens / seconds,
        "real_tokens_per_s": real / seconds,
        "padding_pct": 100 * (1 - real / tokens) if tokens else 0.0,
        "s_per_step": s_per_step,
        "first_step_s": clock.first_step_s,
        "recipe_max_steps": recipe_steps,
        "projected_min": recipe_steps * seconds / len(rows) / 60 if recipe_steps else None,
        "run_wall_s": wall,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="anything after -- goes to every recipe as overrides"
    )
    parser.add_argument("--scale", default="tiny", choices=["tiny", "small", "full"], help="recipes/<scale>/*.yaml")
    parser.add_argument("--recipes", nargs="+", help="recipe files (default: the four stages of --scale)")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per recipe")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the figures")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--quick", action="store_true", help="tiny preset, 6 steps per recipe: checks it runs")
    parser.add_argument("--json", default=None, help="write the figures here")
    args, overrides = parser.parse_known_args(argv)
    overrides = [o for o in overrides if o != "--"]
    recipes = args.recipes or [str(ROOT / "recipes" / args.scale / f"{stage}.yaml") for stage in STAGE_NAMES]
    if args.quick:
        args.steps, args.warmup = 6, 2
        overrides = ["--preset", "tiny", "--max_eval_samples", "8", "--per_device_train_batch_size", "4", *overrides]
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("minimind_hf.training").setLevel(logging.WARNING)
    info = device_info("cuda" if torch.cuda.is_available() else "cpu")
    print(describe(info))
    results, outputs = [], {}
    for recipe in recipes:
        results.append(measure(recipe, args.steps, args.warmup, outputs, overrides))
        r = results[-1]
        print(f"  {r['recipe']}: {r['tokens_per_s']:,.0f} tokens/s ({r['s_per_step']:.3f} s/step)", flush=True)
    print(f"{args.steps} steps per recipe, the first {args.warmup} left out; load average {load_average()}")
    print(
        format_table(
            [
                ("recipe", "recipe"),
                ("precision", "precision"),
                ("compile", "compile"),
                ("batch", "batch"),
                ("tokens_per_step", "tokens/step"),
                ("tokens_per_s", "tokens/s"),
                ("real_tokens_per_s", "real tokens/s"),
                ("padding_pct", "padding %"),
                ("s_per_step", "s/step"),
                ("first_step_s", "first step s"),
                ("recipe_max_steps", "recipe steps"),
                ("projected_min", "projected min"),
            ],
            results,
        )
    )
    write_json(args.json, {"info": info, "results": results})
    return results


if __name__ == "__main__":
    main()
