"""The one stage runner: pretrain, SFT, LoRA and DPO differ in dataset, collator, trainer and config only.

    accelerate launch -m minimind_hf.train --config recipes/tiny/pretrain.yaml [--learning_rate 1e-3 ...]

A recipe is a YAML file of :class:`StageArguments` fields plus the stage's ``TrainingArguments`` (or
TRL's ``DPOConfig``); every value can be overridden on the command line (TRL's ``TrlParser``).

What every stage gets: resume from the last checkpoint in ``output_dir`` (running the same command again
continues an interrupted run; a finished stage is skipped), perplexity next to the validation loss, the
best checkpoint by validation loss, TensorBoard logs (Weights & Biases too when ``WANDB_PROJECT`` is set
and wandb is installed), a stop with the step named on a non-finite loss, a ``loss_curve.png`` and a
``stage_complete.json`` summary next to the saved model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments, default_data_collator, set_seed
from transformers.trainer_utils import get_last_checkpoint
from trl import DPOConfig, TrlParser

from . import MiniMindConfig, MiniMindForCausalLM, check_tokenizer_fits
from .plotting import plot_loss_curve
from .prompts import FINANCE_SYSTEM_PROMPT
from .tokenization import load_tokenizer, save_tokenizer

logger = logging.getLogger("minimind_hf.train")

STAGES = ("pretrain", "sft", "lora", "dpo")
COMPLETE_MARKER = "stage_complete.json"


@dataclass
class StageArguments:
    """What a stage trains on and from; the optimisation settings are ``TrainingArguments`` fields."""

    stage: str = field(metadata={"help": f"one of {', '.join(STAGES)}"})
    train_files: list[str] = field(default_factory=list, metadata={"help": "jsonl files or a Hub dataset name"})
    validation_files: list[str] | None = field(default=None, metadata={"help": "validation jsonl files"})
    validation_fraction: float = field(default=0.0, metadata={"help": "hold out this fraction when no validation file"})
    model_name_or_path: str | None = field(default=None, metadata={"help": "starting checkpoint (pretrain: none = from scratch)"})
    preset: str = field(default="minimind-26m", metadata={"help": "MiniMindConfig preset for a model from scratch"})
    model_config_overrides: str | None = field(default=None, metadata={"help": "JSON of MiniMindConfig fields to override"})
    attn_implementation: str = field(default="sdpa", metadata={"help": "eager, sdpa or flash_attention_2"})
    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "default: the model's, else the shipped one"})
    adapter_name_or_path: str | None = field(default=None, metadata={"help": "dpo: a LoRA adapter merged into the start model"})
    block_size: int = field(default=512, metadata={"help": "pretrain: packed sequence length"})
    seq_length: int = field(default=512, metadata={"help": "sft/lora: longest chat in tokens"})
    system_prompt: str | None = field(default=None, metadata={"help": "system turn for parallel rows ('finance' = the finance prompt)"})
    prompt_id: str = field(default="0", metadata={"help": "translation prompt for parallel rows: an index or 'mixed'"})
    skip_bad_rows: bool = field(default=False, metadata={"help": "count and skip malformed rows instead of stopping"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N training rows"})
    preprocessing_num_proc: int = field(default=1, metadata={"help": "processes for tokenisation"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (scaling = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        metadata={"help": "module names LoRA wraps"},
    )
    precision: str = field(default="auto", metadata={"help": "auto (bf16 where supported), bf16, fp16 or fp32"})
    check_finite_loss: bool = field(default=True, metadata={"help": "stop on a NaN/inf loss, naming the step"})
    skip_if_done: bool = field(default=True, metadata={"help": f"skip a stage whose output_dir has {COMPLETE_MARKER}"})

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if not self.train_files:
            raise ValueError(f"stage {self.stage}: no train_files given")
        if self.stage != "pretrain" and not self.model_name_or_path:
            raise ValueError(f"stage {self.stage}: model_name_or_path (the previous stage's output) is required")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise ValueError(f"precision must be auto, bf16, fp16 or fp32, got {self.precision!r}")


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; raised before the optimizer step applies it."""


class _StageTrainerMixin:
    """Shared by every stage's trainer: finite-loss guard and perplexity next to the validation loss."""

    check_finite_loss: bool = True

    def training_step(self, model, inputs, *args, **kwargs):
        loss = super().training_step(model, inputs, *args, **kwargs)
        if self.check_finite_loss and not torch.isfinite(loss).all():
            step = self.state.global_step + 1
            raise NonFiniteLossError(
                f"non-finite training loss ({loss.detach().float().item()}) at step {step} of {self.state.max_steps}; "
                "stopped before the update, no weights were written. Lower the learning rate, check the data, "
                f"or resume from the last checkpoint in {self.args.output_dir}"
            )
        return loss

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save with the cache on, the inference default: the Trainer turns ``use_cache`` off to train,
        and a checkpoint saved that way would give a user's plain ``model(...)`` call no KV cache."""
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
        if "eval_loss" in logs and "eval_perplexity" not in logs and not isinstance(self, _DPOBase):
            logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
        super().log(logs, *args, **kwargs)


class _DPOBase:  # marker: DPO's eval loss is not a language-model loss
    pass


class MiniMindTrainer(_StageTrainerMixin, Trainer):
    """``transformers.Trainer`` for pretraining, SFT and LoRA."""


def _dpo_trainer_class():
    from .dpo import MiniMindDPOTrainer

    class StageDPOTrainer(_StageTrainerMixin, _DPOBase, MiniMindDPOTrainer):
        """The project's DPO trainer with the shared guards."""

    return StageDPOTrainer


# ----------------------------------------------------------------------------------------- parsing


def _split_recipe(argv: list[str]) -> tuple[dict[str, Any], list[str], str | None]:
    """``(recipe mapping, argv without --config FILE, recipe path)``: the YAML is read here, once."""
    if "--config" not in argv:
        return {}, argv, None
    at = argv.index("--config")
    if at + 1 >= len(argv):
        raise ValueError("--config needs a recipe YAML file")
    path = argv[at + 1]
    with open(path, encoding="utf-8") as handle:
        recipe = yaml.safe_load(handle) or {}
    if not isinstance(recipe, dict):
        raise ValueError(f"{path}: a recipe must be a YAML mapping of argument names to values")
    return recipe, argv[:at] + argv[at + 2 :], path


def _cli_value(argv: list[str], key: str) -> str | None:
    flag = f"--{key}"
    if flag in argv and argv.index(flag) + 1 < len(argv):
        return argv[argv.index(flag) + 1]
    return None


def checkpointing_argument_name(args_class: type) -> str:
    """transformers 5.24 renamed ``gradient_checkpointing`` to ``activation_checkpointing`` (the old name
    goes in v6): the name the installed ``TrainingArguments`` takes."""
    names = {f.name for f in dataclasses.fields(args_class)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def _normalise_checkpointing(recipe: dict[str, Any], argv: list[str], args_class: type) -> list[str]:
    """Either spelling in a recipe or on the command line means the installed name; off unless asked for
    (TRL's configs would otherwise turn it on, which slows small models down for no memory they need)."""
    name = checkpointing_argument_name(args_class)
    other = "gradient_checkpointing" if name == "activation_checkpointing" else "activation_checkpointing"
    for suffix in ("", "_kwargs"):
        if other + suffix in recipe:
            recipe.setdefault(name + suffix, recipe.pop(other + suffix))
    argv = [f"--{name}{arg[len(other) + 2:]}" if arg.startswith(f"--{other}") else arg for arg in argv]
    if name not in recipe and f"--{name}" not in argv:
        recipe[name] = False
    return argv


def _device_supports_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def parse_args(argv: list[str] | None = None) -> tuple[StageArguments, TrainingArguments]:
    """Parse a recipe plus overrides into ``(StageArguments, TrainingArguments | DPOConfig)``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0].endswith((".yaml", ".yml")):
        argv = ["--config", *argv]  # `train.py recipe.yaml` works too
    recipe, argv, recipe_path = _split_recipe(argv)
    for key, value in (recipe.pop("env", None) or {}).items():  # TRL's `env:` section
        os.environ[key] = str(value)

    def value(key: str) -> Any:
        cli = _cli_value(argv, key)
        return cli if cli is not None else recipe.get(key)

    args_class = DPOConfig if value("stage") == "dpo" else TrainingArguments
    argv = _normalise_checkpointing(recipe, argv, args_class)
    precision = value("precision") or "auto"
    extra: list[str] = []
    # explicit either way: TRL's configs default to bf16=True, which a CPU cannot run
    use_bf16 = precision == "bf16" or (precision == "auto" and _device_supports_bf16())
    extra += ["--bf16", str(use_bf16).lower(), "--fp16", str(precision == "fp16").lower()]
    if not torch.cuda.is_available() and "--use_cpu" not in argv:
        extra += ["--use_cpu", "true"]  # CPU-only machine: gloo workers under a multi-process launch
    if os.environ.get("WANDB_PROJECT") and "--report_to" not in argv:
        try:
            import wandb  # noqa: F401

            report = value("report_to") or ["tensorboard"]
            report = [report] if isinstance(report, str) else list(report)
            extra += ["--report_to", *sorted(set(report) | {"wandb"})]
        except ImportError:
            logger.warning("WANDB_PROJECT is set but wandb is not installed; logging to TensorBoard only")
    parser = TrlParser((StageArguments, args_class))
    unknown = parser.set_defaults_with_config(**recipe)
    if unknown:
        raise ValueError(f"{recipe_path}: unknown recipe keys {unknown[::2]}; see `minimind train --help`")
    stage_args, training_args = parser.parse_args_into_dataclasses(args=argv + extra)
    return stage_args, training_args


# ------------------------------------------------------------------------------------------ stages


def _load_tokenizer(stage_args: StageArguments):
    if stage_args.tokenizer_name_or_path:
        return load_tokenizer(stage_args.tokenizer_name_or_path)
    model_dir = stage_args.model_name_or_path
    if model_dir and Path(model_dir, "tokenizer_config.json").exists():
        return load_tokenizer(model_dir)
    return load_tokenizer()


def _load_model(stage_args: StageArguments):
    """The stage's start model in float32 (bf16 runs use autocast, i.e. mixed precision)."""
    if stage_args.model_name_or_path is None:
        overrides = stage_args.model_config_overrides or {}
        overrides = json.loads(overrides) if isinstance(overrides, str) else dict(overrides)
        config = MiniMindConfig.from_preset(stage_args.preset, **overrides)
        model = MiniMindForCausalLM(config)
        model.config._attn_implementation = stage_args.attn_implementation
        return model
    if not Path(stage_args.model_name_or_path).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise FileNotFoundError(
            f"stage {stage_args.stage}: start model {stage_args.model_name_or_path} does not exist; "
            "run the previous stage first (make all runs them in order)"
        )
    model = AutoModelForCausalLM.from_pretrained(
        stage_args.model_name_or_path, attn_implementation=stage_args.attn_implementation, dtype=torch.float32
    )
    if stage_args.adapter_name_or_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, stage_args.adapter_name_or_path).merge_and_unload()
        # PEFT froze the base weights when it wrapped them and merge_and_unload leaves them frozen: without
        # this, every gradient is zero and a DPO loss sits at log 2 = 0.693 forever.
        model.requires_grad_(True)
    return model


def _system_prompt(stage_args: StageArguments) -> str | None:
    return FINANCE_SYSTEM_PROMPT if stage_args.system_prompt == "finance" else stage_args.system_prompt


def _prompt_id(stage_args: StageArguments) -> int | str:
    return int(stage_args.prompt_id) if stage_args.prompt_id.isdigit() else stage_args.prompt_id


def build_datasets(stage_args: StageArguments, training_args: TrainingArguments, tokenizer):
    """``(train, validation or None, collator, stats)`` for the stage."""
    from . import data

    common = dict(validation_fraction=stage_args.validation_fraction, seed=training_args.seed,
                  skip_bad_rows=stage_args.skip_bad_rows)
    with training_args.main_process_first(desc="tokenising the datasets"):
        if stage_args.stage == "pretrain":
            built = data.build_pretrain_dataset(
                tokenizer, stage_args.train_files, stage_args.validation_files, block_size=stage_args.block_size,
                num_proc=stage_args.preprocessing_num_proc, **common,
            )
            collator = default_data_collator
        elif stage_args.stage in ("sft", "lora"):
            built = data.build_sft_dataset(
                tokenizer, stage_args.train_files, stage_args.validation_files, max_length=stage_args.seq_length,
                system_prompt=_system_prompt(stage_args), prompt_id=_prompt_id(stage_args),
                num_proc=stage_args.preprocessing_num_proc, **common,
            )
            collator = data.SFTCollator(tokenizer, pad_to_multiple_of=8)
        else:
            built = data.build_dpo_dataset(
                stage_args.train_files, stage_args.validation_files, system_prompt=_system_prompt(stage_args),
                prompt_id=_prompt_id(stage_args), **common,
            )
            collator = None
    dataset, stats = built
    train = dataset["train"]
    if stage_args.max_train_samples is not None:
        train = train.select(range(min(stage_args.max_train_samples, len(train))))
    validation = dataset["validation"] if "validation" in dataset and len(dataset["validation"]) else None
    return train, validation, collator, stats


def _wrap_lora(model, stage_args: StageArguments):
    from peft import get_peft_model

    from .lora import peft_config

    config = peft_config(r=stage_args.lora_r, alpha=stage_args.lora_alpha, dropout=stage_args.lora_dropout,
                         target_modules=stage_args.lora_target_modules)
    model = get_peft_model(model, config)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA: %d trainable parameters of %d (%.2f%%)", trainable, total, 100 * trainable / total)
    return model


def run(stage_args: StageArguments, training_args: TrainingArguments) -> dict[str, Any]:
    """Train one stage; returns the summary also written to ``output_dir/stage_complete.json``."""
    output_dir = Path(training_args.output_dir)
    marker = output_dir / COMPLETE_MARKER
    if stage_args.skip_if_done and marker.exists():
        logger.info("stage %s already finished in %s; skipping (delete %s to retrain)", stage_args.stage, output_dir, marker)
        return json.loads(marker.read_text())
    if training_args.load_best_model_at_end and not (stage_args.validation_files or stage_args.validation_fraction):
        raise ValueError(f"stage {stage_args.stage}: load_best_model_at_end needs validation_files or validation_fraction")
    set_seed(training_args.seed)
    start = time.time()
    tokenizer = _load_tokenizer(stage_args)
    model = _load_model(stage_args)
    check_tokenizer_fits(model, tokenizer)
    if stage_args.stage == "lora":
        model = _wrap_lora(model, stage_args)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if trainable == 0:
        raise RuntimeError(f"stage {stage_args.stage}: the model has no trainable parameters")
    train, validation, collator, data_stats = build_datasets(stage_args, training_args, tokenizer)
    logger.info("stage %s: %d training rows, %s validation rows", stage_args.stage, len(train),
                len(validation) if validation is not None else 0)

    trainer_class = _dpo_trainer_class() if stage_args.stage == "dpo" else MiniMindTrainer
    kwargs: dict[str, Any] = dict(model=model, args=training_args, train_dataset=train, eval_dataset=validation,
                                  processing_class=tokenizer)
    if collator is not None:
        kwargs["data_collator"] = collator
    trainer = trainer_class(**kwargs)
    trainer.check_finite_loss = stage_args.check_finite_loss

    last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if last:
        logger.info("resuming stage %s from %s", stage_args.stage, last)
    result = trainer.train(resume_from_checkpoint=last)
    metrics = dict(result.metrics)
    if validation is not None:
        metrics.update(trainer.evaluate())
    trainer.save_model(str(output_dir))
    summary: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        save_tokenizer(tokenizer, output_dir)
        plot = plot_loss_curve(trainer.state.log_history, output_dir / "loss_curve.png",
                               title=f"{stage_args.stage}: {output_dir.name}")
        summary = {
            "stage": stage_args.stage,
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
        marker.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        logger.info("stage %s done in %.0fs: %s", stage_args.stage, summary["wall_time_s"], summary["metrics"])
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    stage_args, training_args = parse_args(argv)
    return run(stage_args, training_args)


if __name__ == "__main__":
    main()
