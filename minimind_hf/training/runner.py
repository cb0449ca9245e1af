"""The one stage runner: every stage is a row of :data:`minimind_hf.training.stages.STAGES`.

    accelerate launch -m minimind_hf.train recipes/tiny/pretrain.yaml [--learning_rate 1e-3 ...]

What every stage gets: resume from the last good checkpoint in ``output_dir`` (running the same command again
continues an interrupted run; a finished stage is skipped; SIGTERM/SIGINT save and stop; one run per folder; a
changed recipe refused -- :mod:`minimind_hf.training.safety`), perplexity next to the validation loss, the
best checkpoint by validation loss, TensorBoard logs (Weights & Biases too when ``WANDB_PROJECT`` is set
and wandb is installed), a stop with the step named on a non-finite loss, a ``loss_curve.png`` and a
``stage_complete.json`` summary next to the saved model (GRPO adds a ``reward_curve.png`` and a ``grpo`` section
to the summary: its rewards, the groups that carried no signal, where a step's time went).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments, set_seed

from ..checkpoints import check_tokenizer_fits, load_checkpoint
from ..configuration_minimind import MiniMindConfig
from ..data.layout import COMPLETE_MARKER, LOSS_CURVE, REWARD_CURVE
from ..data.splits import split_log_names
from ..hub.model_card import write_stage_card
from ..modeling_minimind import MiniMindForCausalLM
from ..tokenization import load_tokenizer, save_tokenizer
from ..utils.atomic_files import atomic_write_text
from .arguments import (
    ARGUMENT_GROUPS,
    StageArguments,
    StageTrainingArguments,
    settle_for_data,
)
from .cpu_budget import CpuBudgetCallback
from .grpo import check_grpo_start
from .plotting import plot_loss_curve, plot_reward_curve
from .recipe import parse_recipe
from .regression import validation_warnings
from .safety import RunGuard, exit_status, load_finished
from .stages import STAGES
from .vocabulary import vocabulary_overrides

logger = logging.getLogger("minimind_hf.training")

__all__ = ["build_datasets", "build_test_dataset", "describe_model", "main", "parse_args", "run"]


def parse_args(argv: list[str] | None = None) -> tuple[StageArguments, TrainingArguments]:
    """Parse a recipe plus overrides into ``(StageArguments, training arguments of the stage's class)``."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def arguments_class(stage: str | None) -> type[TrainingArguments]:
        return STAGES[stage].arguments if stage in STAGES else StageTrainingArguments

    run_args, data_args, model_args, lora_args, training_args = parse_recipe(argv, ARGUMENT_GROUPS, arguments_class)
    if run_args.stage == "grpo":
        check_grpo_start(model_args.adapter_name_or_path, training_args)
    stage_args = StageArguments(run_args, data_args, model_args, lora_args)
    has_validation = bool(data_args.validation_files or data_args.validation_fraction)
    if training_args.load_best_model_at_end and not has_validation:
        raise ValueError(
            f"stage {stage_args.stage}: load_best_model_at_end needs validation_files or validation_fraction"
        )
    return stage_args, settle_for_data(training_args, has_validation)


def _load_model(stage_args: StageArguments):
    """The stage's start model in float32 (bf16 runs use autocast, i.e. mixed precision) and its tokenizer."""
    model_args = stage_args.model
    if model_args.model_name_or_path is None:  # pretraining from scratch
        overrides = model_args.model_config_overrides or {}
        overrides = json.loads(overrides) if isinstance(overrides, str) else dict(overrides)
        tokenizer = load_tokenizer(model_args.tokenizer_name_or_path)
        overrides = vocabulary_overrides(model_args.preset, overrides, tokenizer)
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(model_args.preset, **overrides))
        model.config._attn_implementation = model_args.attn_implementation
        check_tokenizer_fits(model, tokenizer)
        return model, tokenizer
    adapter = model_args.adapter_name_or_path
    try:
        loaded = load_checkpoint(
            adapter or model_args.model_name_or_path,
            base=model_args.model_name_or_path if adapter else None,
            dtype=torch.float32,
            attn_implementation=model_args.attn_implementation,
            tokenizer=model_args.tokenizer_name_or_path,
        )
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"stage {stage_args.stage}: {err}; run the previous stage first (make all runs them in order)"
        ) from err
    if adapter:
        # PEFT froze the base weights when it wrapped them and merge_and_unload leaves them frozen: without
        # this, every gradient is zero and a DPO loss sits at log 2 = 0.693 forever.
        loaded.model.requires_grad_(True)
    return loaded.model, loaded.tokenizer


def build_datasets(stage_args: StageArguments, training_args: TrainingArguments, tokenizer):
    """``(train, validation or None, collator, stats)`` for the stage."""
    stage = STAGES[stage_args.stage]
    with training_args.main_process_first(desc="tokenising the datasets"):
        dataset, stats = stage.dataset(stage_args, training_args, tokenizer)
    train = dataset["train"]
    if stage_args.data.max_train_samples is not None:
        train = train.select(range(min(stage_args.data.max_train_samples, len(train))))
    validation = dataset["validation"] if "validation" in dataset and len(dataset["validation"]) else None
    if validation is not None and stage_args.data.max_eval_samples is not None:
        validation = validation.select(range(min(stage_args.data.max_eval_samples, len(validation))))
    collator = stage.collator(tokenizer) if stage.collator is not None else None
    return train, validation, collator, stats


def _count_rows_the_trainer_dropped(name: str, trainer, given: dict[str, Any], data_stats: dict[str, Any]) -> None:
    """Count and report the pairs the DPO trainer drops.

    The DPO trainer drops pairs whose prompt alone fills ``max_length`` (no completion token would be left to learn
    from) and pairs that truncation at ``max_length`` makes identical (chosen = rejected: no preference left); count
    them in the split's stats and say so, as the project's own builders do.
    """
    held = {"train": trainer.train_dataset, "validation": trainer.eval_dataset}
    reasons = getattr(trainer, "dropped_rows", {})
    for split, before in given.items():
        after = held[split]
        if before is None or after is None or not hasattr(before, "__len__") or not hasattr(after, "__len__"):
            continue
        lost = len(before) - len(after)
        if lost <= 0:
            continue
        why = reasons.get("train" if split == "train" else "eval") or {"prompt_fills_max_length": lost}
        stats = data_stats.setdefault(split, {})
        stats.setdefault("dropped", {}).update(why)
        stats["rows_out"] = len(after)
        logger.warning(
            "stage %s: %d of %d %s rows dropped at max_length %s: %s (raise max_length to keep them)",
            name,
            lost,
            len(before),
            split,
            getattr(trainer.args, "max_length", None),
            ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in why.items()),
        )


def build_test_dataset(stage_args: StageArguments, training_args: TrainingArguments, tokenizer):
    """``(test dataset, stats)`` from ``test_files``, built as the stage builds its training rows.

    Or ``(None, None)``.
    """
    if not stage_args.data.test_files:
        return None, None
    data = dataclasses.replace(
        stage_args.data, train_files=stage_args.data.test_files, validation_files=None, validation_fraction=0.0
    )
    test_args = dataclasses.replace(stage_args, data=data)
    with training_args.main_process_first(desc="tokenising the test set"), split_log_names(train="test"):
        dataset, stats = STAGES[stage_args.stage].dataset(test_args, training_args, tokenizer)
    return dataset["train"], stats["train"]


def describe_model(model) -> str:
    """Parameter count and shape of a stage's model, for the log line every stage starts with."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    config = model.config
    shape = (
        f"{config.num_hidden_layers} layers, hidden {config.hidden_size}, {config.num_attention_heads} heads "
        f"({config.num_key_value_heads} key/value), MLP {config.intermediate_size}, vocab {config.vocab_size}"
    )
    if getattr(config, "use_moe", False):
        shape += (
            f", {config.n_routed_experts} routed experts (top {config.num_experts_per_tok}) + "
            f"{config.n_shared_experts} shared"
        )
    return f"{total:,} parameters ({trainable:,} trainable, {100 * trainable / max(total, 1):.2f}%); {shape}"


def run(stage_args: StageArguments, training_args: TrainingArguments, callbacks: list | None = None) -> dict[str, Any]:
    """Train one stage; returns the summary also written to ``output_dir/stage_complete.json``.

    ``callbacks`` are extra ``TrainerCallback`` objects (``benchmarks/trainer_overhead.py`` times steps with one).
    """
    with RunGuard(stage_args, training_args, finished_marker=COMPLETE_MARKER) as guard:
        return _run(stage_args, training_args, guard, callbacks)


def _run(
    stage_args: StageArguments, training_args: TrainingArguments, guard: RunGuard, callbacks: list | None = None
) -> dict[str, Any]:
    name, stage = stage_args.stage, STAGES[stage_args.stage]
    output_dir = Path(training_args.output_dir)
    marker = output_dir / COMPLETE_MARKER
    if stage_args.run.skip_if_done and marker.exists():
        logger.info("stage %s already finished in %s; skipping (delete %s to retrain)", name, output_dir, marker)
        return json.loads(marker.read_text())
    last = guard.resume_checkpoint()  # the newest good one; broken ones are moved aside
    set_seed(training_args.seed)
    start = time.time()
    model, tokenizer = _load_model(stage_args)
    model = stage.prepare_model(model, stage_args)
    if not any(p.requires_grad for p in model.parameters()):
        raise RuntimeError(f"stage {name}: the model has no trainable parameters")
    logger.info("stage %s: model with %s", name, describe_model(model))
    guard.check_free_space(model)
    train, validation, collator, data_stats = build_datasets(stage_args, training_args, tokenizer)
    test, test_stats = build_test_dataset(stage_args, training_args, tokenizer)
    if test is not None:
        data_stats["test"] = test_stats
    logger.info(
        "stage %s: %d training rows, %s validation rows",
        name,
        len(train),
        len(validation) if validation is not None else 0,
    )

    if stage_args.run.max_cpu_seconds:
        budget = CpuBudgetCallback(stage_args.run.max_cpu_seconds, stage_args.run.budget_fractions)
        callbacks = [*(callbacks or []), budget]
    kwargs: dict[str, Any] = dict(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    if collator is not None:
        kwargs["data_collator"] = collator
    trainer = stage.trainer(**kwargs)
    _count_rows_the_trainer_dropped(name, trainer, {"train": train, "validation": validation}, data_stats)
    trainer.check_finite_loss = stage_args.run.check_finite_loss
    if stage_args.run.labelled_logits_only and getattr(getattr(model, "config", None), "use_moe", False):
        raise ValueError(
            "labelled_logits_only computes the cross-entropy alone and would drop the MoE balance "
            "loss: leave it off for a MoE preset"
        )
    trainer.labelled_logits_only = stage_args.run.labelled_logits_only
    trainer.add_callback(guard.signals)

    if last:
        logger.info("resuming stage %s from %s", name, last)
    if guard.resume_is_finished():  # Trainer would take one step past max_steps from it
        load_finished(trainer, last)
        metrics = {}
    else:
        metrics = dict(trainer.train(resume_from_checkpoint=last).metrics)
        guard.raise_if_stopped(trainer)
    if validation is not None:
        metrics.update(trainer.evaluate())
    if test is not None:  # once, at the end, on the model that is saved
        metrics.update(trainer.evaluate(test, metric_key_prefix="test"))
    trainer.save_model(str(output_dir))
    summary: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        save_tokenizer(tokenizer, output_dir)
        plot = plot_loss_curve(trainer.state.log_history, output_dir / LOSS_CURVE, title=f"{name}: {output_dir.name}")
        extra = trainer.stage_summary() if hasattr(trainer, "stage_summary") else {}  # GRPO: rewards, signal, time
        if "grpo" in extra:
            rewards = plot_reward_curve(
                trainer.state.log_history, output_dir / REWARD_CURVE, title=f"{name}: {output_dir.name}"
            )
            extra["grpo"]["reward_curve"] = str(rewards) if rewards else None
        summary = {
            "stage": name,
            "output_dir": str(output_dir),
            "global_step": trainer.state.global_step,
            "world_size": training_args.world_size,
            "resumed_from": last,
            "wall_time_s": round(time.time() - start, 1),
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "data": data_stats,
            "loss_curve": str(plot) if plot else None,
            **extra,
            "warnings": validation_warnings(name, trainer.state.log_history, metrics),
        }
        atomic_write_text(marker, json.dumps(summary, indent=2, default=str) + "\n")
        write_stage_card(summary, stage, stage_args, training_args, trainer.model, tokenizer)
        logger.info("stage %s done in %.0fs: %s", name, summary["wall_time_s"], summary["metrics"])
        for warning in summary["warnings"]:
            logger.warning("THE MODEL GOT WORSE -- %s", warning)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    stage_args, training_args = parse_args(argv)
    return run(stage_args, training_args)


if __name__ == "__main__":
    sys.exit(exit_status(main))
