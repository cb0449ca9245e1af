"""What ``minimind train --help`` prints without a recipe: the keys a recipe may set, by group.

The project's own groups are listed with their help and defaults; the stage's training arguments
(``TrainingArguments``; for SFT / LoRA the same plus ``max_length``; TRL's ``DPOConfig`` for DPO) are too many to
list here -- ``minimind train RECIPE --help`` prints every key of that recipe's stage with its default.
"""

from __future__ import annotations

import dataclasses

from .arguments import ARGUMENT_GROUPS

__all__ = ["recipe_keys_help"]


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(field.default_factory())  # type: ignore[misc]
    return "required"


def recipe_keys_help() -> str:
    lines = [
        "usage: minimind train RECIPE.yaml [--KEY VALUE ...]   (same as python -m minimind_hf.train)",
        "",
        "A recipe is one flat YAML file; every key can also be given on the command line. Its keys:",
    ]
    for group in ARGUMENT_GROUPS:
        lines += ["", f"{group.__name__} -- {(group.__doc__ or '').strip().splitlines()[0]}"]
        for field in dataclasses.fields(group):
            lines.append(f"  {field.name:<26} {field.metadata.get('help', '')} (default: {_default(field)})")
    lines += [
        "",
        "and the stage's training arguments: transformers' TrainingArguments (pretrain); the same plus "
        "max_length (sft, lora); TRL's DPOConfig (dpo).",
        "`minimind train RECIPE.yaml --help` lists every key of that recipe's stage with its default.",
        "Recipes to start from: recipes/tiny/*.yaml (CPU), recipes/small/*.yaml, recipes/*.yaml (GPU).",
    ]
    return "\n".join(lines)
