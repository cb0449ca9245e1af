"""The argument groups a recipe fills, one per topic, beside the stage's training arguments.

A recipe is one flat YAML file whose keys are the fields of :class:`RunArguments`, :class:`DataArguments`,
:class:`ModelArguments`, :class:`LoraArguments` and of the stage's training-arguments class (``TrainingArguments``,
:class:`ChatTrainingArguments`, or TRL's ``DPOConfig``; :data:`minimind_hf.training.stages.STAGES` names it);
every value can be overridden on the command line (TRL's ``TrlParser``, :mod:`.recipe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..data.layout import COMPLETE_MARKER, STAGE_NAMES
from ..prompts import parse_prompt_id
from .cpu_budget import DEFAULT_FRACTIONS
from .lora import DEFAULT_ALPHA, DEFAULT_DROPOUT, DEFAULT_R, DEFAULT_TARGET_MODULES

PRECISIONS = ("auto", "bf16", "fp16", "fp32")

__all__ = [
    "ARGUMENT_GROUPS",
    "PRECISIONS",
    "ChatTrainingArguments",
    "DataArguments",
    "LoraArguments",
    "ModelArguments",
    "RunArguments",
    "StageArguments",
]


@dataclass
class RunArguments:
    """Which stage, at which precision, and the runner's guards."""

    stage: str = field(metadata={"help": "one of pretrain, sft, lora, dpo"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 where supported), bf16, fp16 or fp32"})
    check_finite_loss: bool = field(default=True, metadata={"help": "stop on a NaN/inf loss, naming the step"})
    skip_if_done: bool = field(default=True, metadata={"help": f"skip a stage whose output_dir has {COMPLETE_MARKER}"})
    fresh_start: bool = field(default=False, metadata={"help": "start over: the old checkpoints are moved aside, not resumed"})
    max_cpu_seconds: float | None = field(default=None, metadata={
        "help": "stop after this many CPU seconds of training, saving at budget_fractions of it (training.cpu_budget)"})
    budget_fractions: list[float] = field(default_factory=lambda: list(DEFAULT_FRACTIONS), metadata={
        "help": "with max_cpu_seconds: save a checkpoint when these fractions of the budget are spent"})
    labelled_logits_only: bool = field(default=False, metadata={
        "help": "compute the output layer only where a label is (training.labelled_loss); same loss, less work"})

    def __post_init__(self) -> None:
        if self.stage not in STAGE_NAMES:
            raise ValueError(f"stage must be one of {STAGE_NAMES}, got {self.stage!r}")
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
