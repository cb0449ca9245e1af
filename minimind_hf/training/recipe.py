"""Reading a stage recipe: one flat YAML file plus command-line overrides, in TRL's ``TrlParser`` conventions.

The YAML is read once, here, and its values go to the argument classes as written, which own their defaults and
settle ``precision`` themselves (:mod:`.arguments`). Only what the installed library spells differently is
translated: gradient checkpointing (transformers 5.24 calls it ``activation_checkpointing``; off unless asked
for) and length-grouped sampling (``train_sampling_strategy`` since 5.24). An explicit ``--num_train_epochs`` on
the command line replaces a recipe's ``max_steps`` (``--max_steps`` on the command line beats both).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from trl import TrlParser

logger = logging.getLogger("minimind_hf.training")


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
    """transformers 5.24 renamed ``gradient_checkpointing`` to ``activation_checkpointing`` (the old name goes in v6).

    The name the installed ``TrainingArguments`` takes.
    """
    names = {f.name for f in dataclasses.fields(args_class)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def _normalise_checkpointing(recipe: dict[str, Any], argv: list[str], args_class: type) -> list[str]:
    """Either spelling in a recipe or on the command line means the installed name.

    Off unless asked for (TRL's configs would otherwise turn it on, which slows small models down for no memory they
    need).
    """
    name = checkpointing_argument_name(args_class)
    other = "gradient_checkpointing" if name == "activation_checkpointing" else "activation_checkpointing"
    for suffix in ("", "_kwargs"):
        if other + suffix in recipe:
            recipe.setdefault(name + suffix, recipe.pop(other + suffix))
    argv = [f"--{name}{arg[len(other) + 2 :]}" if arg.startswith(f"--{other}") else arg for arg in argv]
    if name not in recipe and f"--{name}" not in argv:
        recipe[name] = False
    return argv


def _normalise_sampling(recipe: dict[str, Any], argv: list[str], args_class: type) -> list[str]:
    """transformers 5.24 replaced ``group_by_length: true`` with ``train_sampling_strategy: group_by_length``.

    A recipe may say either, and the installed ``TrainingArguments`` gets its own spelling.
    """
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
            raise ValueError(
                f"train_sampling_strategy {strategy!r} needs transformers >= 5.24 (this one takes "
                "random or group_by_length)"
            )
        recipe["group_by_length"] = strategy == "group_by_length"
    return argv


def _drop_flag(argv: list[str], key: str) -> list[str]:
    """``argv`` without ``--key value``."""
    flag = f"--{key}"
    if flag not in argv:
        return argv
    at = argv.index(flag)
    return argv[:at] + argv[at + 2 :]


def _settle_training_length(recipe: dict[str, Any], argv: list[str], where: str) -> None:
    """An explicit ``--num_train_epochs`` beats a recipe's ``max_steps``.

    Transformers would otherwise let ``max_steps`` win in silence; ``--max_steps`` on the command line still beats both.
    """
    epochs_on_cli = any(arg == "--num_train_epochs" or arg.startswith("--num_train_epochs=") for arg in argv)
    steps_on_cli = any(arg == "--max_steps" or arg.startswith("--max_steps=") for arg in argv)
    if epochs_on_cli and steps_on_cli:
        logger.warning("both --num_train_epochs and --max_steps given: max_steps decides the length of training")
    elif epochs_on_cli and recipe.get("max_steps", -1) not in (-1, None):
        logger.warning(
            "%s: --num_train_epochs on the command line replaces the recipe's max_steps %s", where, recipe["max_steps"]
        )
        recipe.pop("max_steps")


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
    argv = _normalise_checkpointing(recipe, argv, args_class)
    argv = _normalise_sampling(recipe, argv, args_class)
    _settle_training_length(recipe, argv, recipe_path or "the command line")
    parser = TrlParser((*groups, args_class))
    unknown = parser.set_defaults_with_config(**recipe)
    if unknown:
        keys = [key.lstrip("-") for key in unknown[::2]]
        raise ValueError(f"{recipe_path}: unknown recipe keys {keys}; `minimind train --help` lists the keys")
    return list(parser.parse_args_into_dataclasses(args=argv))
