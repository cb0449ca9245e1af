"""``output_dir/run_recipe.json``: what a run is, so that a resumed run is the same run.

Resuming a checkpoint with another preset, other data (other files, or the same names with other
content), another stage or other optimisation settings would silently train a mixture. The recipe
records what decides the result -- stage, model (preset and its resolved config, or the start model's
files), tokenizer files, data files with size and SHA-256, the sequence and batch settings, optimiser and
schedule, seed, world size -- and :func:`compare` lists every change. A file whose size and mtime are as
recorded is not hashed again.

Two kinds of change: :data:`EXTENDABLE` keys (``max_steps``, ``num_train_epochs``) may change on a resume
-- training longer is a normal thing to ask for -- and are reported in a warning, as is a setting only one side
records (a newer version's new field); any other change refuses the resume, unless the user asks for a fresh start.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

from ...checkpoints import file_sha256

RECIPE_NAME = "run_recipe.json"
VERSION = 1

TRAINING_KEYS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "warmup_ratio",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "optim",
    "seed",
    "data_seed",
    "bf16",
    "fp16",
    "max_length",
    "max_prompt_length",
    "beta",
    "loss_type",
    "label_smoothing",
    "precompute_ref_log_probs",
    "max_steps",
    "num_train_epochs",
    # GRPO: what is sampled and how it is rewarded
    "num_generations",
    "max_completion_length",
    "temperature",
    "top_p",
    "top_k",
    "num_iterations",
    "epsilon",
    "scale_rewards",
    "steps_per_generation",
    "generation_batch_size",
    "reward_chrf",
    "reward_semantic",
    "reward_script",
    "reward_health",
    "reference_free_reward",
    "reward_control",
    "max_prompts_per_file",
)
"""Training-argument fields recorded when the stage's arguments class has them (DPO's ``beta`` ...)."""

EXTENDABLE = frozenset({"training.max_steps", "training.num_train_epochs"})
"""Keys a resume may change (with a warning): how long to train, not what is trained."""

_DATA_NOT_RECORDED = frozenset({"train_files", "validation_files", "preprocessing_num_proc"})
"""Data arguments not recorded as values: the files are recorded by content; process counts change nothing."""

_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)

__all__ = ["EXTENDABLE", "RECIPE_NAME", "compare", "file_fingerprint", "load_recipe", "recipe_of"]


def file_fingerprint(path: str | os.PathLike, known: dict[str, dict] | None = None) -> dict[str, Any]:
    """``{path, size, mtime_ns, sha256}``; the SHA-256 is reused from ``known`` when size and mtime match."""
    path = Path(path)
    stat = path.stat()
    entry = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    before = (known or {}).get(str(path))
    if before and before.get("size") == stat.st_size and before.get("mtime_ns") == stat.st_mtime_ns:
        entry["sha256"] = before["sha256"]
    else:
        entry["sha256"] = file_sha256(path)
    return entry


def _data_files(specs: Any, known: dict[str, dict]) -> list[dict[str, Any]]:
    """Each local file behind a path, glob or folder; a Hub dataset name is recorded by name."""
    if specs is None:
        return []
    out: list[dict[str, Any]] = []
    for spec in [specs] if isinstance(specs, (str, os.PathLike)) else specs:
        spec = os.fspath(spec)
        if os.path.isfile(spec):
            out.append(file_fingerprint(spec, known))
        elif os.path.isdir(spec):
            out += [file_fingerprint(p, known) for p in sorted(Path(spec).rglob("*")) if p.is_file()]
        elif glob.has_magic(spec):
            out += [file_fingerprint(p, known) for p in sorted(glob.glob(spec)) if os.path.isfile(p)]
        else:
            out.append({"name": spec})  # a Hub dataset: its revision is the Hub's business
    return out


def _model_files(path: str | None, known: dict[str, dict]) -> list[dict[str, Any]] | str | None:
    if path is None:
        return None
    folder = Path(path)
    if not folder.is_dir():
        return str(path)
    return [file_fingerprint(folder / name, known) for name in _MODEL_FILES if (folder / name).is_file()]


def _known_files(recipe: dict | None) -> dict[str, dict]:
    """Every file entry of a recorded recipe, by path (to skip re-hashing unchanged files)."""
    found: dict[str, dict] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "sha256" in value and "path" in value:
                found[value["path"]] = value
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(recipe or {})
    return found


def recipe_of(stage_args: Any, training_args: Any, world_size: int, previous: dict | None = None) -> dict[str, Any]:
    """The recipe of a run (``stage_args``: the runner's ``StageArguments``; ``training_args``: its stage's)."""
    from ...configuration_minimind import MiniMindConfig
    from ...tokenization import DEFAULT_TOKENIZER_DIR

    known = _known_files(previous)
    model = stage_args.model
    model_part: dict[str, Any] = {
        "model_name_or_path": model.model_name_or_path,
        "adapter_name_or_path": model.adapter_name_or_path,
    }
    if model.model_name_or_path is None:
        overrides = model.model_config_overrides or {}
        overrides = json.loads(overrides) if isinstance(overrides, str) else dict(overrides)
        config = MiniMindConfig.from_preset(model.preset, **overrides).to_dict()
        for volatile in ("transformers_version", "_attn_implementation_autoset", "use_cache"):
            config.pop(volatile, None)
        model_part.update(preset=model.preset, config=config)
    else:
        model_part["start_files"] = _model_files(model.model_name_or_path, known)
        model_part["adapter_files"] = _model_files(model.adapter_name_or_path, known)
    from_scratch = model.model_name_or_path is None
    tokenizer_dir = model.tokenizer_name_or_path or (DEFAULT_TOKENIZER_DIR if from_scratch else None)
    data = stage_args.data
    recipe = {
        "version": VERSION,
        "stage": stage_args.stage,
        "model": model_part,
        "tokenizer": _model_files(os.fspath(tokenizer_dir), known) if tokenizer_dir is not None else "the model's",
        "data": {
            "train_files": _data_files(data.train_files, known),
            "validation_files": _data_files(data.validation_files, known),
            **{key: _plain(value) for key, value in vars(data).items() if key not in _DATA_NOT_RECORDED},
        },
        "training": {key: _plain(getattr(training_args, key)) for key in TRAINING_KEYS if hasattr(training_args, key)},
        "world_size": world_size,
    }
    from ..stages import STAGES

    for group in STAGES[stage_args.stage].argument_groups:  # LoRA's adapter settings
        recipe[group] = {key: _plain(value) for key, value in vars(getattr(stage_args, group)).items()}
    return recipe


def _plain(value: Any) -> Any:
    """A JSON-ready form of an argument value (enums by their value)."""
    value = getattr(value, "value", value)
    return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)


def load_recipe(output_dir: str | os.PathLike) -> dict | None:
    path = Path(output_dir) / RECIPE_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path} is not readable JSON ({err}); remove it, or start fresh") from err


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "mtime_ns":  # when a file was written, not what it holds
                continue
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        out = {f"{prefix}.count": len(value)}
        for index, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


_ABSENT = object()


def _short(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 70 else text[:67] + "..."


def compare(recorded: dict, current: dict) -> tuple[list[str], list[str]]:
    """``(changes that refuse a resume, changes that are allowed)``, each ``key: old -> new``.

    A key only one side has (a setting a newer version records, or no longer does) is allowed, with the
    warning: the old run ran with that version's behaviour. A changed value refuses, except :data:`EXTENDABLE`.
    """
    before, after = _flatten(recorded), _flatten(current)
    refused, allowed = [], []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if old == new:
            continue
        line = f"{key}: {_short(old)} -> {_short(new)}"
        one_sided = (key in before) != (key in after) and not key.endswith(".count")
        (allowed if key in EXTENDABLE or one_sided else refused).append(line)
    return refused, allowed
