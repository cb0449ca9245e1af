"""The one stage runner: pretrain, SFT, LoRA and DPO differ in dataset, collator, trainer and config only.

    accelerate launch -m minimind_hf.train --config recipes/tiny/pretrain.yaml [--learning_rate 1e-3 ...]

:data:`STAGES` is the whole difference between the stages, one row each: the training-arguments class
its recipe fills, its dataset builder, its collator, its trainer class and what is done to the loaded
model. A recipe is one flat YAML file whose keys are the fields of the argument groups -- :class:`RunArguments`,
:class:`DataArguments`, :class:`ModelArguments`, :class:`LoraArguments` -- and of the stage's training
arguments (``TrainingArguments``, :class:`ChatTrainingArguments`, or TRL's ``DPOConfig``); every value can
be overridden on the command line (TRL's ``TrlParser``).

What every stage gets: resume from the last good checkpoint in ``output_dir`` (running the same command again
continues an interrupted run; a finished stage is skipped; SIGTERM/SIGINT save and stop; one run per folder; a
changed recipe refused -- :mod:`minimind_hf.run_safety`), perplexity next to the validation loss, the
best checkpoint by validation loss, TensorBoard logs (Weights & Biases too when ``WANDB_PROJECT`` is set
and wandb is installed), a stop with the step named on a non-finite loss, a ``loss_curve.png`` and a
``stage_complete.json`` summary next to the saved model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments, default_data_collator, set_seed
from trl import DPOConfig

from . import MiniMindConfig, MiniMindForCausalLM
from .atomic_files import atomic_write_text
from .checkpoints import check_tokenizer_fits, load_checkpoint
from .cpu_budget import DEFAULT_FRACTIONS, CpuBudgetCallback
from .data import BuiltDataset, SFTCollator, build_dpo_dataset, build_pretrain_dataset, build_sft_dataset
from .dpo import MiniMindDPOTrainer
from .labelled_loss import labelled_positions_loss
from .lora import DEFAULT_ALPHA, DEFAULT_DROPOUT, DEFAULT_R, DEFAULT_TARGET_MODULES, wrap_with_lora
from .model_card import write_stage_card
from .plotting import plot_loss_curve
from .prompts import parse_prompt_id, resolve_system_prompt
from .recipe import checkpointing_argument_name, parse_recipe
from .run_safety import RunGuard, exit_status, load_finished
from .tokenization import load_tokenizer, save_tokenizer

logger = logging.getLogger("minimind_hf.train")

COMPLETE_MARKER = "stage_complete.json"
PRECISIONS = ("auto", "bf16", "fp16", "fp32")

__all__ = [
    "COMPLETE_MARKER",
    "STAGES",
    "ChatTrainingArguments",
    "DataArguments",
    "LoraArguments",
    "ModelArguments",
    "NonFiniteLossError",
    "RunArguments",
    "Stage",
    "StageArguments",
    "checkpointing_argument_name",
    "main",
    "parse_args",
    "run",
]

# ----------------------------------------------------------------------------- arguments, by topic


@dataclass
class RunArguments:
    """Which stage, at which precision, and the runner's guards."""

    stage: str = field(metadata={"help": "one of pretrain, sft, lora, dpo"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 where supported), bf16, fp16 or fp32"})
    check_finite_loss: bool = field(default=True, metadata={"help": "stop on a NaN/inf loss, naming the step"})
    skip_if_done: bool = field(default=True, metadata={"help": f"skip a stage whose output_dir has {COMPLETE_MARKER}"})
    fresh_start: bool = field(default=False, metadata={"help": "start over: the old checkpoints are moved aside, not resumed"})
    max_cpu_seconds: float | None = field(default=None, metadata={
        "help": "stop after this many CPU seconds of training, saving at budget_fractions of it (minimind_hf.cpu_budget)"})
    budget_fractions: list[float] = field(default_factory=lambda: list(DEFAULT_FRACTIONS), metadata={
        "help": "with max_cpu_seconds: save a checkpoint when these fractions of the budget are spent"})
    labelled_logits_only: bool = field(default=False, metadata={
        "help": "compute the output layer only where a label is (minimind_hf.labelled_loss); same loss, less work"})

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {tuple(STAGES)}, got {self.stage!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be auto, bf16, fp16 or fp32, got {self.precision!r}")


@dataclass
class DataArguments:
    """What a stage trains on, and how its rows are built."""

    train_files: list[str] = field(default_factory=list, metadata={
        "help": "jsonl or raw-text files (.train/.dev/.test/.txt/.val), directories of them, or a Hub dataset name"})
    validation_files: list[str] | None = field(default=None, metadata={"help": "validation files (same forms)"})
    test_files: list[str] | None = field(default=None, metadata={
        "help": "test files (same forms), evaluated once after training: test_loss, test_perplexity"})
    cache_dir: str | None = field(default=None, metadata={"help": "where tokenised data is cached (default: datasets')"})
    validation_fraction: float = field(default=0.0, metadata={"help": "hold out this fraction when no validation file"})
    block_size: int = field(default=512, metadata={"help": "pretrain: packed sequence length"})
    system_prompt: str | None = field(default=None, metadata={"help": "system turn for parallel rows ('finance' = the finance prompt)"})
    system_prompt_fraction: float = field(default=1.0, metadata={"help": "give the system turn to this share of rows only (stable per row)"})
    prompt_id: str = field(default="0", metadata={"help": "translation prompt for parallel rows: an index or 'mixed'"})
    skip_bad_rows: bool = field(default=False, metadata={"help": "count and skip malformed rows instead of stopping"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N training rows"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "use only the first N validation rows"})
    preprocessing_num_proc: int = field(default=1, metadata={"help": "processes for tokenisation"})

    def __post_init__(self) -> None:
        parse_prompt_id(self.prompt_id)  # a bad id is named now, not after the model is loaded


@dataclass
class ModelArguments:
    """The model a stage starts from (TRL's ``ModelConfig`` topic)."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "starting checkpoint (pretrain: none = from scratch)"})
    preset: str = field(default="minimind-26m", metadata={"help": "MiniMindConfig preset for a model from scratch"})
    model_config_overrides: str | None = field(default=None, metadata={"help": "JSON of MiniMindConfig fields to override"})
    attn_implementation: str = field(default="sdpa", metadata={"help": "eager, sdpa or flash_attention_2"})
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "default: the model's, else the shipped one"})
    adapter_name_or_path: str | None = field(default=None, metadata={"help": "dpo: a LoRA adapter merged into the start model"})


@dataclass
class LoraArguments:
    """The adapter of the LoRA stage; the defaults are :mod:`minimind_hf.lora`'s."""

    lora_r: int = field(default=DEFAULT_R, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=DEFAULT_ALPHA, metadata={"help": "LoRA alpha (scaling = alpha / r)"})
    lora_dropout: float = field(default=DEFAULT_DROPOUT, metadata={"help": "dropout on the LoRA branch"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_TARGET_MODULES), metadata={"help": "module names LoRA wraps"}
    )


@dataclass
class ChatTrainingArguments(TrainingArguments):
    """``TrainingArguments`` of the chat stages (SFT, LoRA), with the longest chat under TRL's name."""

    max_length: int = field(default=512, metadata={"help": "sft/lora: longest chat in tokens (was: seq_length)"})


ARGUMENT_GROUPS = (RunArguments, DataArguments, ModelArguments, LoraArguments)


@dataclass
class StageArguments:
    """Everything a recipe says besides the training arguments, one group per topic."""

    run: RunArguments
    data: DataArguments
    model: ModelArguments
    lora: LoraArguments

    def __post_init__(self) -> None:
        if not self.data.train_files:
            raise ValueError(f"stage {self.stage}: no train_files given")
        if self.stage != "pretrain" and not self.model.model_name_or_path:
            raise ValueError(f"stage {self.stage}: model_name_or_path (the previous stage's output) is required")

    @property
    def stage(self) -> str:
        return self.run.stage


# ------------------------------------------------------------------------------------------ trainers


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; raised before the optimizer step applies it."""


class _StageTrainerMixin:
    """Shared by every stage's trainer: finite-loss guard, perplexity next to the validation loss, and
    checkpoints saved for inference.

    The guard costs no host sync per step where the optimizer is a fused Adam(W) (the Trainer's default) on
    one process: a device-side flag, set by the first non-finite loss and kept, is handed to the optimizer
    as ``found_inf`` -- the same mechanism ``torch.amp.GradScaler`` uses -- so that update and every later one
    is skipped on the device; the flag is read where the Trainer reads values anyway (each log line) and
    before any checkpoint or model is written, and the run stops there, naming the step. Elsewhere (other
    optimizers, several processes) the loss is checked on the host every step.
    """

    check_finite_loss: bool = True
    labelled_logits_only: bool = False  # training loss through labelled_positions_loss
    reports_perplexity: bool = True  # the validation loss is a language-model loss (not DPO's)
    _nonfinite: torch.Tensor | None = None  # device flag: a non-finite loss was seen
    _first_bad: tuple[torch.Tensor, torch.Tensor] | None = None  # (step, loss) of the first one

    def _skippable_optimizer(self):
        """The torch optimizer when it can skip an update on the device (fused Adam/AdamW, one process)."""
        inner = getattr(self.optimizer, "optimizer", self.optimizer)
        fused = isinstance(inner, (torch.optim.Adam, torch.optim.AdamW)) and all(
            group.get("fused") for group in inner.param_groups)
        return inner if fused and self.args.world_size == 1 else None

    def _nonfinite_error(self, step: int, loss: float, detected: str = "") -> NonFiniteLossError:
        return NonFiniteLossError(
            f"non-finite training loss ({loss}) at step {step} of {self.state.max_steps}{detected}; "
            "stopped before the update, no weights were written. Lower the learning rate, check the data, "
            f"or resume from the last checkpoint in {self.args.output_dir}"
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not (self.labelled_logits_only and model.training and not return_outputs and "labels" in inputs):
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        return labelled_positions_loss(model, inputs, num_items_in_batch, self.args.label_smoothing_factor)

    def training_step(self, model, inputs, *args, **kwargs):
        loss = super().training_step(model, inputs, *args, **kwargs)
        if not self.check_finite_loss:
            return loss
        step = self.state.global_step + 1
        bad = ~torch.isfinite(loss.detach()).all()
        optimizer = self._skippable_optimizer()
        if optimizer is None:
            if bad:  # one host sync per step
                raise self._nonfinite_error(step, loss.detach().float().item())
            return loss
        value = loss.detach().float().reshape(-1)[0]
        if self._nonfinite is None:
            self._nonfinite = bad.clone()
            self._first_bad = (torch.where(bad, step, 0), value)
        else:
            new = bad & ~self._nonfinite
            first_step, first_loss = self._first_bad
            self._first_bad = (torch.where(new, step, first_step), torch.where(new, value, first_loss))
            self._nonfinite = self._nonfinite | bad
        optimizer.found_inf = self._nonfinite.float()  # fused AdamW skips its update where this is 1
        return loss

    def _raise_if_nonfinite(self) -> None:
        """Read the device flag (one host sync) and stop if a non-finite loss was seen."""
        if self._nonfinite is not None and bool(self._nonfinite):
            step, loss = (int(self._first_bad[0]), float(self._first_bad[1]))
            raise self._nonfinite_error(step, loss, f" (seen at step {self.state.global_step}; the updates from "
                                                    f"step {step} on were skipped on the device)")

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save with the cache on, the inference default: the Trainer turns ``use_cache`` off to train,
        and a checkpoint saved that way would give a user's plain ``model(...)`` call no KV cache."""
        self._raise_if_nonfinite()
        config = getattr(self.model, "config", None)
        training_value = getattr(config, "use_cache", None)
        if config is not None:
            config.use_cache = True
        try:
            super().save_model(output_dir, _internal_call=_internal_call)
        finally:
            if config is not None:
                config.use_cache = training_value

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        self._raise_if_nonfinite()
        for prefix in ("eval", "test"):
            if self.reports_perplexity and f"{prefix}_loss" in logs and f"{prefix}_perplexity" not in logs:
                logs[f"{prefix}_perplexity"] = math.exp(min(logs[f"{prefix}_loss"], 50.0))
        super().log(logs, *args, **kwargs)


class MiniMindTrainer(_StageTrainerMixin, Trainer):
    """``transformers.Trainer`` for pretraining, SFT and LoRA."""


class StageDPOTrainer(_StageTrainerMixin, MiniMindDPOTrainer):
    """The project's DPO trainer with the shared guards."""

    reports_perplexity = False


# --------------------------------------------------------------------------------- the stage table


def _common(stage_args: StageArguments, training_args: TrainingArguments) -> dict[str, Any]:
    data = stage_args.data
    return dict(validation_fraction=data.validation_fraction, seed=training_args.seed, skip_bad_rows=data.skip_bad_rows,
                cache_dir=data.cache_dir)


def _pretrain_data(stage_args: StageArguments, training_args: TrainingArguments, tokenizer) -> BuiltDataset:
    data = stage_args.data
    return build_pretrain_dataset(tokenizer, data.train_files, data.validation_files, block_size=data.block_size,
                                  num_proc=data.preprocessing_num_proc, **_common(stage_args, training_args))


def _chat_data(stage_args: StageArguments, training_args: ChatTrainingArguments, tokenizer) -> BuiltDataset:
    data = stage_args.data
    return build_sft_dataset(tokenizer, data.train_files, data.validation_files, max_length=training_args.max_length,
                             system_prompt=resolve_system_prompt(data.system_prompt), prompt_id=data.prompt_id,
                             system_prompt_fraction=data.system_prompt_fraction,
                             num_proc=data.preprocessing_num_proc, **_common(stage_args, training_args))


def _preference_data(stage_args: StageArguments, training_args: DPOConfig, tokenizer) -> BuiltDataset:
    data = stage_args.data
    return build_dpo_dataset(data.train_files, data.validation_files,
                             system_prompt=resolve_system_prompt(data.system_prompt), prompt_id=data.prompt_id,
                             **_common(stage_args, training_args))


def _packed_blocks(features: list[dict[str, Any]]) -> dict[str, Any]:
    """Pretraining batches without the attention mask when it is all ones (packed blocks always are): the
    model then takes the plain causal path instead of inspecting the mask on the device every step."""
    batch = default_data_collator(features)
    mask = batch.get("attention_mask")
    if mask is not None and bool(mask.all()):  # a host-side check of a CPU tensor
        del batch["attention_mask"]
    return batch


def _sft_collator(tokenizer) -> SFTCollator:
    return SFTCollator(tokenizer, pad_to_multiple_of=8)


def _as_loaded(model, stage_args: StageArguments):
    return model


def _wrap_lora(model, stage_args: StageArguments):
    lora = stage_args.lora
    return wrap_with_lora(model, r=lora.lora_r, alpha=lora.lora_alpha, dropout=lora.lora_dropout,
                          target_modules=lora.lora_target_modules)


@dataclass(frozen=True)
class Stage:
    """One row of :data:`STAGES`: what sets a stage apart from the others."""

    arguments: type[TrainingArguments]  # the training-arguments class its recipe fills
    dataset: Callable[[StageArguments, Any, Any], BuiltDataset]  # (stage args, training args, tokenizer)
    collator: Callable[[Any], Any] | None  # tokenizer -> collator; None: the trainer's own
    trainer: type[Trainer]
    prepare_model: Callable[[Any, StageArguments], Any]  # applied to the loaded start model


STAGES: dict[str, Stage] = {
    "pretrain": Stage(TrainingArguments, _pretrain_data, lambda tokenizer: _packed_blocks, MiniMindTrainer,
                      _as_loaded),
    "sft": Stage(ChatTrainingArguments, _chat_data, _sft_collator, MiniMindTrainer, _as_loaded),
    "lora": Stage(ChatTrainingArguments, _chat_data, _sft_collator, MiniMindTrainer, _wrap_lora),
    "dpo": Stage(DPOConfig, _preference_data, None, StageDPOTrainer, _as_loaded),
}


# ------------------------------------------------------------------------------------------ running


def parse_args(argv: list[str] | None = None) -> tuple[StageArguments, TrainingArguments]:
    """Parse a recipe plus overrides into ``(StageArguments, training arguments of the stage's class)``."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def arguments_class(stage: str | None) -> type[TrainingArguments]:
        return STAGES[stage].arguments if stage in STAGES else TrainingArguments

    run_args, data_args, model_args, lora_args, training_args = parse_recipe(argv, ARGUMENT_GROUPS, arguments_class)
    return StageArguments(run_args, data_args, model_args, lora_args), training_args


def _load_model(stage_args: StageArguments):
    """The stage's start model in float32 (bf16 runs use autocast, i.e. mixed precision) and its tokenizer."""
    model_args = stage_args.model
    if model_args.model_name_or_path is None:  # pretraining from scratch
        overrides = model_args.model_config_overrides or {}
        overrides = json.loads(overrides) if isinstance(overrides, str) else dict(overrides)
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(model_args.preset, **overrides))
        model.config._attn_implementation = model_args.attn_implementation
        tokenizer = load_tokenizer(model_args.tokenizer_name_or_path)
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
    """TRL's DPO trainer filters out pairs whose prompt alone fills ``max_length`` (no completion token would be
    left to learn from); count them in the split's stats and say so, as the project's own builders do."""
    held = {"train": trainer.train_dataset, "validation": trainer.eval_dataset}
    for split, before in given.items():
        after = held[split]
        if before is None or after is None or not hasattr(before, "__len__") or not hasattr(after, "__len__"):
            continue
        lost = len(before) - len(after)
        if lost <= 0:
            continue
        stats = data_stats.setdefault(split, {})
        stats.setdefault("dropped", {})["prompt_fills_max_length"] = lost
        stats["rows_out"] = len(after)
        logger.warning("stage %s: %d of %d %s rows dropped: the prompt alone fills max_length %s "
                       "(raise max_length to keep them)", name, lost, len(before), split,
                       getattr(trainer.args, "max_length", None))


def build_test_dataset(stage_args: StageArguments, training_args: TrainingArguments, tokenizer):
    """``(test dataset, stats)`` from ``test_files``, built as the stage builds its training rows; or ``(None, None)``."""
    if not stage_args.data.test_files:
        return None, None
    data = dataclasses.replace(stage_args.data, train_files=stage_args.data.test_files, validation_files=None,
                               validation_fraction=0.0)
    test_args = dataclasses.replace(stage_args, data=data)
    with training_args.main_process_first(desc="tokenising the test set"):
        dataset, stats = STAGES[stage_args.stage].dataset(test_args, training_args, tokenizer)
    return dataset["train"], stats["train"]



def describe_model(model) -> str:
    """Parameter count and shape of a stage's model, for the log line every stage starts with."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    config = model.config
    shape = (f"{config.num_hidden_layers} layers, hidden {config.hidden_size}, {config.num_attention_heads} heads "
             f"({config.num_key_value_heads} key/value), MLP {config.intermediate_size}, vocab {config.vocab_size}")
    if getattr(config, "use_moe", False):
        shape += (f", {config.n_routed_experts} routed experts (top {config.num_experts_per_tok}) + "
                  f"{config.n_shared_experts} shared")
    return f"{total:,} parameters ({trainable:,} trainable, {100 * trainable / max(total, 1):.2f}%); {shape}"


def run(stage_args: StageArguments, training_args: TrainingArguments, callbacks: list | None = None) -> dict[str, Any]:
    """Train one stage; returns the summary also written to ``output_dir/stage_complete.json``.

    ``callbacks`` are extra ``TrainerCallback`` objects (``benchmarks/trainer_overhead.py`` times steps with one)."""
    with RunGuard(stage_args, training_args, finished_marker=COMPLETE_MARKER) as guard:
        return _run(stage_args, training_args, guard, callbacks)


def _run(stage_args: StageArguments, training_args: TrainingArguments, guard: RunGuard,
         callbacks: list | None = None) -> dict[str, Any]:
    name, stage = stage_args.stage, STAGES[stage_args.stage]
    output_dir = Path(training_args.output_dir)
    marker = output_dir / COMPLETE_MARKER
    if stage_args.run.skip_if_done and marker.exists():
        logger.info("stage %s already finished in %s; skipping (delete %s to retrain)", name, output_dir, marker)
        return json.loads(marker.read_text())
    data = stage_args.data
    if training_args.load_best_model_at_end and not (data.validation_files or data.validation_fraction):
        raise ValueError(f"stage {name}: load_best_model_at_end needs validation_files or validation_fraction")
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
    logger.info("stage %s: %d training rows, %s validation rows", name, len(train),
                len(validation) if validation is not None else 0)

    if stage_args.run.max_cpu_seconds:
        callbacks = [*(callbacks or []), CpuBudgetCallback(stage_args.run.max_cpu_seconds, stage_args.run.budget_fractions)]
    kwargs: dict[str, Any] = dict(model=model, args=training_args, train_dataset=train, eval_dataset=validation,
                                  processing_class=tokenizer, callbacks=callbacks)
    if collator is not None:
        kwargs["data_collator"] = collator
    trainer = stage.trainer(**kwargs)
    _count_rows_the_trainer_dropped(name, trainer, {"train": train, "validation": validation}, data_stats)
    trainer.check_finite_loss = stage_args.run.check_finite_loss
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
        plot = plot_loss_curve(trainer.state.log_history, output_dir / "loss_curve.png",
                               title=f"{name}: {output_dir.name}")
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
        }
        atomic_write_text(marker, json.dumps(summary, indent=2, default=str) + "\n")
        write_stage_card(summary, stage_args, training_args, trainer.model, tokenizer)
        logger.info("stage %s done in %.0fs: %s", name, summary["wall_time_s"], summary["metrics"])
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    stage_args, training_args = parse_args(argv)
    return run(stage_args, training_args)


if __name__ == "__main__":
    sys.exit(exit_status(main))
