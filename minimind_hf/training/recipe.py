"""Reading a stage recipe: one flat YAML file plus command-line overrides, in TRL's ``TrlParser`` conventions.

The YAML is read once, here. Before the values reach the argument dataclasses a few names are settled: the
installed name of gradient checkpointing (transformers 5.24 calls it ``activation_checkpointing``), the
project's deprecated keys (:data:`DEPRECATED_KEYS`, each with a ``FutureWarning`` naming its new key), the
length of training (an explicit ``--num_train_epochs`` replaces a recipe's ``max_steps``; ``--max_steps`` on
the command line beats both), and the precision flags (``bf16`` / ``fp16`` set explicitly either way — ``auto`` is bf16 on a bf16 GPU or
a CPU with native bf16, else fp32 — and ``use_cpu`` on a machine without CUDA).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
import yaml
from trl import TrlParser

logger = logging.getLogger("minimind_hf.training")

DEPRECATED_KEYS = {"seq_length": "max_length"}
"""Recipe keys the project renamed: old name -> new name (the chat sequence length took TRL's name)."""


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


def _normalise_sampling(recipe: dict[str, Any], argv: list[str], args_class: type) -> list[str]:
    """transformers 5.24 replaced ``group_by_length: true`` with ``train_sampling_strategy: group_by_length``:
    a recipe may say either, and the installed ``TrainingArguments`` gets its own spelling."""
    names = {f.name for f in dataclasses.fields(args_class)}
    new_api = "train_sampling_strategy" in names
    cli_strategy, cli_group = _cli_value(argv, "train_sampling_strategy"), _cli_value(argv, "group_by_length")
    strategy = cli_strategy or recipe.get("train_sampling_strategy")
    grouped = cli_group if cli_group is not None else recipe.get("group_by_length")
    if new_api and grouped is not None:
        recipe.pop("group_by_length", None)
        argv = _drop_flag(argv, "group_by_length")
        if str(grouped).lower() in ("true", "1", "yes") and strategy is None:
            recipe["train_sampling_strategy"] = "group_by_length"
    elif not new_api and strategy is not None:
        recipe.pop("train_sampling_strategy", None)
        argv = _drop_flag(argv, "train_sampling_strategy")
        if strategy not in ("random", "group_by_length"):
            raise ValueError(f"train_sampling_strategy {strategy!r} needs transformers >= 5.24 (this one takes "
                             "random or group_by_length)")
        recipe["group_by_length"] = strategy == "group_by_length"
    return argv


def _drop_flag(argv: list[str], key: str) -> list[str]:
    """``argv`` without ``--key value``."""
    flag = f"--{key}"
    if flag not in argv:
        return argv
    at = argv.index(flag)
    return argv[:at] + argv[at + 2 :]


def _rename_deprecated(recipe: dict[str, Any], argv: list[str], where: str) -> list[str]:
    """Old keys of :data:`DEPRECATED_KEYS` mean their new names (a value given under the new name wins),
    with a warning that says which key to write instead."""
    for old, new in DEPRECATED_KEYS.items():
        flag = f"--{old}"
        on_cli = [arg for arg in argv if arg == flag or arg.startswith(flag + "=")]
        if old not in recipe and not on_cli:
            continue
        warnings.warn(f"{where}: `{old}` is deprecated, write `{new}` instead", FutureWarning, stacklevel=4)
        if old in recipe:
            recipe.setdefault(new, recipe.pop(old))
        argv = [f"--{new}{arg[len(flag):]}" if arg in on_cli else arg for arg in argv]
    return argv


def _settle_training_length(recipe: dict[str, Any], argv: list[str], where: str) -> None:
    """An explicit ``--num_train_epochs`` beats a recipe's ``max_steps`` (which transformers would otherwise
    let win in silence); ``--max_steps`` on the command line still beats both."""
    epochs_on_cli = any(arg == "--num_train_epochs" or arg.startswith("--num_train_epochs=") for arg in argv)
    steps_on_cli = any(arg == "--max_steps" or arg.startswith("--max_steps=") for arg in argv)
    if epochs_on_cli and steps_on_cli:
        logger.warning("both --num_train_epochs and --max_steps given: max_steps decides the length of training")
    elif epochs_on_cli and recipe.get("max_steps", -1) not in (-1, None):
        logger.warning("%s: --num_train_epochs on the command line replaces the recipe's max_steps %s",
                       where, recipe["max_steps"])
        recipe.pop("max_steps")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX); elsewhere bf16 autocast is emulated
    and slower than fp32."""
    return any(getattr(torch.cpu, name, lambda: False)()
               for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def _device_supports_bf16() -> bool:
    """``precision: auto`` means bf16 here: a bf16 GPU, or without CUDA a CPU with native bf16 (its loss curve
    agrees with fp32's: benchmarks/loss_agreement.py)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def parse_recipe(
    argv: Sequence[str],
    groups: Sequence[type],
    training_arguments: Callable[[str | None], type],
) -> list[Any]:
    """One dataclass per class of ``groups``, then the training arguments, from ``[recipe.yaml] [--key value ...]``.

    ``training_arguments(stage)`` is the training-arguments class of the stage the recipe names.
    """
    argv = list(argv)
    if argv and not argv[0].startswith("-") and argv[0].endswith((".yaml", ".yml")):
        argv = ["--config", *argv]  # `train.py recipe.yaml` works too
    recipe, argv, recipe_path = _split_recipe(argv)
    for key, value in (recipe.pop("env", None) or {}).items():  # TRL's `env:` section
        os.environ[key] = str(value)

    def value(key: str) -> Any:
        cli = _cli_value(argv, key)
        return cli if cli is not None else recipe.get(key)

    args_class = training_arguments(value("stage"))
    argv = _rename_deprecated(recipe, argv, recipe_path or "the command line")
    argv = _normalise_checkpointing(recipe, argv, args_class)
    argv = _normalise_sampling(recipe, argv, args_class)
    if "logging_nan_inf_filter" not in recipe and "--logging_nan_inf_filter" not in argv:
        # the runner's finite-loss guard stops on a NaN/inf loss; the Trainer's filter, which would average one
        # away in the logged loss, costs two host syncs per step
        recipe["logging_nan_inf_filter"] = False
    _settle_training_length(recipe, argv, recipe_path or "the command line")
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
    parser = TrlParser((*groups, args_class))
    unknown = parser.set_defaults_with_config(**recipe)
    if unknown:
        raise ValueError(f"{recipe_path}: unknown recipe keys {unknown[::2]}; see `minimind train --help`")
    return list(parser.parse_args_into_dataclasses(args=argv + extra))
