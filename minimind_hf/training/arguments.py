"""The argument groups a recipe fills, one per topic, beside the stage's training arguments.

A recipe is one flat YAML file whose keys are the fields of :class:`RunArguments`, :class:`DataArguments`,
:class:`ModelArguments`, :class:`LoraArguments` and of the stage's training-arguments class (``TrainingArguments``,
:class:`ChatTrainingArguments`, TRL's ``DPOConfig``, or :class:`GRPOStageConfig`;
:data:`minimind_hf.training.stages.STAGES` names it);
every value can be overridden on the command line (TRL's ``TrlParser``, :mod:`.recipe`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainingArguments
from trl import DPOConfig, GRPOConfig

from ..checkpoints import auto_precision
from ..data.layout import COMPLETE_MARKER, DEFAULT_SEQUENCE_LENGTH, STAGE_NAMES
from ..prompts import parse_prompt_id
from . import rewards as _rewards
from .cpu_budget import DEFAULT_FRACTIONS
from .lora import DEFAULT_ALPHA, DEFAULT_DROPOUT, DEFAULT_R, DEFAULT_TARGET_MODULES

logger = logging.getLogger("minimind_hf.training")

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
#: Where the default cosine schedule ends, as a fraction of the peak learning rate.
MIN_LR_RATE = 0.1

__all__ = [
    "ARGUMENT_GROUPS",
    "PRECISIONS",
    "ChatTrainingArguments",
    "DataArguments",
    "GRPOStageConfig",
    "StageDPOConfig",
    "StageTrainingArguments",
    "LoraArguments",
    "ModelArguments",
    "RunArguments",
    "StageArguments",
]


@dataclass
class RunArguments:
    """Which stage, and the runner's guards."""

    stage: str = field(metadata={"help": "one of pretrain, sft, lora, dpo, grpo"})
    check_finite_loss: bool = field(default=True, metadata={"help": "stop on a NaN/inf loss, naming the step"})
    skip_if_done: bool = field(default=True, metadata={"help": f"skip a stage whose output_dir has {COMPLETE_MARKER}"})
    fresh_start: bool = field(
        default=False, metadata={"help": "start over: the old checkpoints are moved aside, not resumed"}
    )
    max_cpu_seconds: float | None = field(
        default=None,
        metadata={
            "help": "stop after this many CPU seconds of training, saving at budget_fractions of it "
            "(training.cpu_budget)"
        },
    )
    budget_fractions: list[float] = field(
        default_factory=lambda: list(DEFAULT_FRACTIONS),
        metadata={"help": "with max_cpu_seconds: save a checkpoint when these fractions of the budget are spent"},
    )
    labelled_logits_only: bool = field(
        default=False,
        metadata={
            "help": "compute the output layer only where a label is (training.labelled_loss); same loss, less work"
        },
    )

    def __post_init__(self) -> None:
        if self.stage not in STAGE_NAMES:
            raise ValueError(f"stage must be one of {STAGE_NAMES}, got {self.stage!r}")


@dataclass
class DataArguments:
    """What a stage trains on, and how its rows are built."""

    train_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "jsonl or raw-text files (.train/.dev/.test/.txt/.val), directories of them, or a Hub dataset name"
        },
    )
    validation_files: list[str] | None = field(default=None, metadata={"help": "validation files (same forms)"})
    test_files: list[str] | None = field(
        default=None,
        metadata={"help": "test files (same forms), evaluated once after training: test_loss, test_perplexity"},
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "where tokenised data is cached (default: datasets')"}
    )
    validation_fraction: float = field(default=0.0, metadata={"help": "hold out this fraction when no validation file"})
    block_size: int = field(default=DEFAULT_SEQUENCE_LENGTH, metadata={"help": "pretrain: packed sequence length"})
    system_prompt: str | None = field(
        default=None, metadata={"help": "system turn for parallel rows ('finance' = the finance prompt)"}
    )
    system_prompt_fraction: float = field(
        default=1.0, metadata={"help": "give the system turn to this share of rows only (stable per row)"}
    )
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

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "starting checkpoint (pretrain: none = from scratch)"}
    )
    preset: str = field(default="minimind-26m", metadata={"help": "MiniMindConfig preset for a model from scratch"})
    model_config_overrides: str | None = field(
        default=None, metadata={"help": "JSON of MiniMindConfig fields to override"}
    )
    attn_implementation: str = field(default="sdpa", metadata={"help": "eager, sdpa or flash_attention_2"})
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "default: the model's, else the shipped one"}
    )
    adapter_name_or_path: str | None = field(
        default=None, metadata={"help": "dpo: a LoRA adapter merged into the start model"}
    )


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
class _StageDefaults:
    """What every stage's training arguments share, the defaults the recipes used to repeat.

    ``precision``, settled into ``bf16`` / ``fp16`` / ``use_cpu`` before the library checks them, a cosine schedule down
    to a tenth of the learning rate, evaluation every ``eval_steps``, TensorBoard logs, no gradient checkpointing and no
    NaN filter (the runner's finite-loss guard stops on a NaN instead). Best-checkpoint selection is settled by
    :func:`settle_for_data`, which knows whether there is validation data.
    """

    precision: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16 where the device computes it natively: minimind_hf.checkpoints.auto_precision), "
            "bf16, fp16 or fp32"
        },
    )
    lr_scheduler_type: str = field(default="cosine_with_min_lr", metadata={"help": "learning-rate schedule"})
    lr_scheduler_kwargs: dict | str | None = field(
        default=None, metadata={"help": "arguments of the schedule (cosine_with_min_lr: min_lr_rate 0.1 unless given)"}
    )
    eval_strategy: str = field(default="steps", metadata={"help": "steps (off where there is no validation data)"})
    load_best_model_at_end: bool | None = field(
        default=None,
        metadata={
            "help": "keep the checkpoint with the lowest validation loss (default: whenever there is validation data)"
        },
    )
    report_to: None | str | list[str] = field(
        default_factory=lambda: ["tensorboard"],
        metadata={"help": "loggers; wandb is added when WANDB_PROJECT is set and wandb is installed"},
    )
    logging_nan_inf_filter: bool = field(
        default=False,
        metadata={"help": "the runner stops on a non-finite loss; the Trainer's filter would average it away"},
    )

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.lr_scheduler_type == "cosine_with_min_lr" and not self.lr_scheduler_kwargs:
            self.lr_scheduler_kwargs = {"min_lr_rate": MIN_LR_RATE}
        ran = auto_precision() if self.precision == "auto" else self.precision
        self.bf16, self.fp16 = ran == "bf16", ran == "fp16"  # explicit: TRL's configs default to bf16 on any device
        if not torch.cuda.is_available():
            self.use_cpu = True  # a CPU-only machine: gloo workers under a multi-process launch
        if os.environ.get("WANDB_PROJECT"):
            report = [self.report_to] if isinstance(self.report_to, str) else list(self.report_to or [])
            if importlib.util.find_spec("wandb") is None:
                logger.warning("WANDB_PROJECT is set but wandb is not installed; logging to %s only", report)
            elif "wandb" not in report and "none" not in report:
                self.report_to = sorted({*report, "wandb"})
        super().__post_init__()

    @property
    def ran_precision(self) -> str:
        """The precision the run computes in: ``bf16``, ``fp16`` or ``fp32`` (``auto`` settled)."""
        return "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"


@dataclass
class StageTrainingArguments(_StageDefaults, TrainingArguments):
    """``TrainingArguments`` of the pretraining stage, with the project's defaults."""


@dataclass
class ChatTrainingArguments(StageTrainingArguments):
    """Training arguments of the chat stages (SFT, LoRA), with the longest chat under TRL's name."""

    max_length: int = field(default=DEFAULT_SEQUENCE_LENGTH, metadata={"help": "sft/lora: longest chat in tokens"})


@dataclass
class StageDPOConfig(_StageDefaults, DPOConfig):
    """TRL's ``DPOConfig`` with the project's defaults (the same as every other stage's)."""


@dataclass
class GRPOStageConfig(_StageDefaults, GRPOConfig):
    """TRL's ``GRPOConfig`` with the project's defaults and rewards (:mod:`.rewards`).

    One weight per reward (``reward_chrf``, ``reward_semantic``, ``reward_script``, ``reward_health``; 0 leaves a reward
    out), ``reference_free_reward`` (semantic-to-source + script + health, for prompts without a reference),
    ``reward_control`` (``none``; ``shuffled``: the reference-based rewards read another prompt's reference;
    ``constant``: no signal at all) and ``max_prompts_per_file`` (a seeded sample of each training file, so a large
    general split does not drown the finance prompts). GRPO's loss says nothing about a checkpoint's quality, so no best
    checkpoint is picked by it.
    """

    load_best_model_at_end: bool | None = field(
        default=False, metadata={"help": "GRPO's validation loss does not rank checkpoints; keep the last one"}
    )
    reward_chrf: float = field(default=1.0, metadata={"help": "weight of sentence chrF against the reference (0..1)"})
    reward_semantic: float = field(default=0.5, metadata={"help": "weight of the sentence-encoder similarity"})
    reward_script: float = field(default=0.5, metadata={"help": "weight of the Chinese-and-Traditional score (0..1)"})
    reward_health: float = field(
        default=1.0,
        metadata={"help": "weight of the output-health penalty (-1 per flag: empty, looping, untranslated, over-long)"},
    )
    reference_free_reward: bool = field(
        default=False, metadata={"help": "use no reference: semantic similarity to the source, script and health only"}
    )
    reward_control: str = field(
        default="none",
        metadata={
            "help": "none; shuffled (the reference-based rewards read another prompt's reference: the control run); "
            "constant (every reward 0: no signal)"
        },
    )
    max_prompts_per_file: int | None = field(
        default=None, metadata={"help": "use a seeded sample of at most this many prompts from each training file"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reward_weights is not None:
            raise ValueError(
                "GRPO stage: give the reward weights as reward_chrf / reward_semantic / reward_script / "
                "reward_health, not reward_weights"
            )
        if self.max_prompts_per_file is not None and self.max_prompts_per_file < 1:
            raise ValueError(f"max_prompts_per_file must be positive, got {self.max_prompts_per_file}")
        self.reward_setup()  # a bad combination is named now, before any model is loaded

    @property
    def reward_weight_map(self) -> dict[str, float]:
        return {name: getattr(self, f"reward_{name}") for name in _rewards.REWARD_NAMES}

    def reward_setup(self) -> tuple[list, list[float]]:
        """``(reward_funcs, weights)`` this config asks for."""
        return _rewards.reward_functions(
            self.reward_weight_map, reference_free=self.reference_free_reward, control=self.reward_control
        )

    def describe_rewards(self) -> str:
        """One line naming the rewards and their weights, for the log and the stage summary."""
        funcs, weights = self.reward_setup()
        words = " + ".join(f"{w:g} x {f.__name__}" for f, w in zip(funcs, weights, strict=True))
        return words + (f" (control: {self.reward_control})" if self.reward_control != "none" else "")


def settle_for_data(training_args: Any, has_validation: bool) -> Any:
    """The training arguments with evaluation and best-checkpoint selection settled by the data.

    Both on whenever there is validation data (``load_best_model_at_end`` unset), evaluation off where there is none.
    """
    changes: dict[str, Any] = {}
    if training_args.load_best_model_at_end is None:
        changes["load_best_model_at_end"] = has_validation
    if not has_validation and training_args.eval_strategy != "no":
        changes["eval_strategy"] = "no"
    if not changes:
        return training_args
    return dataclasses.replace(training_args, **changes)


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
