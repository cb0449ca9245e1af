"""The stage table: pretrain, SFT, LoRA, DPO and GRPO differ in dataset, collator, trainer and config only.

:data:`STAGES` is the whole difference between the stages, one row each: the training-arguments class its
recipe fills, its dataset builder, its collator, its trainer class and what is done to the loaded model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers import Trainer, TrainingArguments, default_data_collator

from ..data import (
    BuiltDataset,
    SFTCollator,
    build_dpo_dataset,
    build_pretrain_dataset,
    build_sft_dataset,
)
from ..data.layout import STAGE_NAMES
from ..prompts import resolve_system_prompt
from .arguments import (
    ChatTrainingArguments,
    GRPOStageConfig,
    StageArguments,
    StageDPOConfig,
    StageTrainingArguments,
)
from .grpo import build_grpo_dataset
from .lora import wrap_with_lora
from .trainers import MiniMindTrainer, StageDPOTrainer, StageGRPOTrainer

__all__ = ["STAGES", "Stage"]


def _common(stage_args: StageArguments, training_args: TrainingArguments) -> dict[str, Any]:
    data = stage_args.data
    return dict(
        validation_fraction=data.validation_fraction,
        seed=training_args.seed,
        skip_bad_rows=data.skip_bad_rows,
        cache_dir=data.cache_dir,
    )


def _pretrain_data(stage_args: StageArguments, training_args: TrainingArguments, tokenizer) -> BuiltDataset:
    data = stage_args.data
    return build_pretrain_dataset(
        tokenizer,
        data.train_files,
        data.validation_files,
        block_size=data.block_size,
        num_proc=data.preprocessing_num_proc,
        **_common(stage_args, training_args),
    )


def _chat_data(stage_args: StageArguments, training_args: ChatTrainingArguments, tokenizer) -> BuiltDataset:
    data = stage_args.data
    return build_sft_dataset(
        tokenizer,
        data.train_files,
        data.validation_files,
        max_length=training_args.max_length,
        system_prompt=resolve_system_prompt(data.system_prompt),
        prompt_id=data.prompt_id,
        system_prompt_fraction=data.system_prompt_fraction,
        num_proc=data.preprocessing_num_proc,
        **_common(stage_args, training_args),
    )


def _preference_data(stage_args: StageArguments, training_args: StageDPOConfig, tokenizer) -> BuiltDataset:
    data = stage_args.data
    return build_dpo_dataset(
        data.train_files,
        data.validation_files,
        system_prompt=resolve_system_prompt(data.system_prompt),
        prompt_id=data.prompt_id,
        **_common(stage_args, training_args),
    )


def _prompt_data(stage_args: StageArguments, training_args: GRPOStageConfig, tokenizer) -> BuiltDataset:
    data = stage_args.data
    return build_grpo_dataset(
        data.train_files,
        data.validation_files,
        system_prompt=resolve_system_prompt(data.system_prompt),
        prompt_id=data.prompt_id,
        max_prompts_per_file=training_args.max_prompts_per_file,
        **_common(stage_args, training_args),
    )


def _packed_blocks(features: list[dict[str, Any]]) -> dict[str, Any]:
    """Pretraining batches without the attention mask when it is all ones (packed blocks always are).

    The model then takes the plain causal path instead of inspecting the mask on the device every step.
    """
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
    return wrap_with_lora(
        model, r=lora.lora_r, alpha=lora.lora_alpha, dropout=lora.lora_dropout, target_modules=lora.lora_target_modules
    )


def _nothing_more(stage_args: StageArguments) -> dict[str, Any]:
    return {}


def _block_size(stage_args: StageArguments) -> dict[str, Any]:
    return {"block_size": stage_args.data.block_size}


def _lora_settings(stage_args: StageArguments) -> dict[str, Any]:
    lora = stage_args.lora
    return {
        "lora_r": lora.lora_r,
        "lora_alpha": lora.lora_alpha,
        "lora_dropout": lora.lora_dropout,
        "lora_target_modules": list(lora.lora_target_modules),
    }


@dataclass(frozen=True)
class Stage:
    """One row of :data:`STAGES`.

    What sets a stage apart from the others, and what is recorded about it (the model card and the run fingerprint read
    these fields, so neither branches on stage names).
    """

    arguments: type[TrainingArguments]  # the training-arguments class its recipe fills
    dataset: Callable[[StageArguments, Any, Any], BuiltDataset]  # (stage args, training args, tokenizer)
    collator: Callable[[Any], Any] | None  # tokenizer -> collator; None: the trainer's own
    trainer: type[Trainer]
    prepare_model: Callable[[Any, StageArguments], Any]  # applied to the loaded start model
    description: str  # what the stage made, for the model card
    recorded: Callable[[StageArguments], dict[str, Any]] = _nothing_more  # its own settings beside the training args
    argument_groups: tuple[str, ...] = ()  # groups it reads beyond run / data / model (the fingerprint holds them)
    use_system_prompt: str | None = None  # the system prompt its model is meant to be prompted with


STAGES: dict[str, Stage] = {
    "pretrain": Stage(
        StageTrainingArguments,
        _pretrain_data,
        lambda tokenizer: _packed_blocks,
        MiniMindTrainer,
        _as_loaded,
        "pretrained from scratch (next-token prediction on packed documents)",
        recorded=_block_size,
    ),
    "sft": Stage(
        ChatTrainingArguments,
        _chat_data,
        _sft_collator,
        MiniMindTrainer,
        _as_loaded,
        "supervised fine-tuning on translation chats (loss on the assistant replies only)",
    ),
    "lora": Stage(
        ChatTrainingArguments,
        _chat_data,
        _sft_collator,
        MiniMindTrainer,
        _wrap_lora,
        "a LoRA adapter for finance-domain translation (PEFT)",
        recorded=_lora_settings,
        argument_groups=("lora",),
        use_system_prompt="finance",
    ),
    "dpo": Stage(
        StageDPOConfig,
        _preference_data,
        None,
        StageDPOTrainer,
        _as_loaded,
        "direct preference optimisation of the SFT model with its LoRA adapter merged",
        use_system_prompt="finance",
    ),
    "grpo": Stage(
        GRPOStageConfig,
        _prompt_data,
        None,
        StageGRPOTrainer,
        _as_loaded,
        "reinforcement learning on translation quality (GRPO), rewarded by the project's own scores",
        use_system_prompt="finance",
    ),
}

assert tuple(STAGES) == STAGE_NAMES, "minimind_hf.data.layout.STAGE_NAMES lists the rows of STAGES, in order"
