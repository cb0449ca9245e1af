"""Model cards: the ``README.md`` of every saved stage, with the Hub's model-card metadata.

The facts of a card live in ``model_card.json`` next to the checkpoint; ``README.md`` is rendered from
them, so each step that learns something adds it and renders again:

* the stage runner (:func:`write_stage_card`, called once a stage has saved its model): the MiniMind
  preset and parameter count, the stage and its parent checkpoint, the data files with their row
  counts, the recipe, the validation loss and perplexity, the tokenizer, the licences of the data;
* ``minimind eval`` (:func:`record_evaluation`): the translation scores and validation perplexity of each
  evaluation, which also go into the ``model-index`` metadata;
* ``minimind push`` (:func:`card_for_push`): the Hub names of the base model and the datasets, which a
  local run cannot know.

The card text is rendered by :mod:`.card_text`. A checkpoint without ``model_card.json`` (trained before cards
existed, or made outside the runner) gets one built from its config when it is evaluated or pushed.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ..data.layout import CARD_FACTS, CARD_FILE, COMPLETE_MARKER, DATA_CARDS
from .card_text import render_card

CODE_LICENSE = "apache-2.0"

_RECIPE_KEYS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_ratio",
    "warmup_steps",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "max_grad_norm",
    "seed",
    "max_length",
    "beta",
    "loss_type",
    # GRPO: how completions are sampled and rewarded (only its config has these)
    "num_generations",
    "max_completion_length",
    "temperature",
    "reward_chrf",
    "reward_semantic",
    "reward_script",
    "reward_health",
    "reference_free_reward",
    "reward_control",
)
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_id(name: str | None) -> bool:
    """``owner/name`` that is not a local path."""
    return bool(name) and bool(_HUB_ID.fullmatch(name)) and not os.path.exists(name)


# ------------------------------------------------------------------------------------------- facts


def preset_of(config) -> str | None:
    """The name of the :data:`~minimind_hf.configuration_minimind.PRESETS` entry ``config`` was built from."""
    from ..configuration_minimind import PRESETS, MiniMindConfig

    keys = (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "intermediate_size",
        "vocab_size",
        "use_moe",
        "n_routed_experts",
        "n_shared_experts",
        "num_experts_per_tok",
    )
    for name in PRESETS:
        reference = MiniMindConfig.from_preset(name)
        if all(getattr(config, k, None) == getattr(reference, k, None) for k in keys):
            return name
    return None


def architecture_facts(config) -> dict[str, Any]:
    facts = {
        k: getattr(config, k, None)
        for k in (
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "intermediate_size",
            "vocab_size",
            "max_position_embeddings",
            "rope_theta",
            "use_moe",
        )
    }
    if getattr(config, "use_moe", False):
        experts = ("n_routed_experts", "n_shared_experts", "num_experts_per_tok")
        facts.update({k: getattr(config, k, None) for k in experts})
    if getattr(config, "rope_yarn", None):
        facts["rope_yarn"] = config.rope_yarn
    return facts


def count_rows(path: str) -> int | None:
    """Non-blank lines of a local jsonl file (``None`` for a Hub dataset or a missing file)."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def data_licences(files: list[str]) -> list[dict[str, str]]:
    """``[{source, licence}]`` from the data card next to the training files (its "licence" table)."""
    seen: dict[str, str] = {}
    for directory in dict.fromkeys(str(Path(f).parent) for f in files if os.path.isfile(f)):
        for name in DATA_CARDS:
            card = Path(directory) / name
            if not card.is_file():
                continue
            header: list[str] | None = None
            for line in card.read_text(encoding="utf-8").splitlines():
                cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
                if cells is None:
                    header = None
                elif header is None:
                    header = [c.lower() for c in cells]
                elif "source" in header and "licence" in header and not set(line) <= set("|-: "):
                    row = dict(zip(header, cells, strict=False))
                    seen.setdefault(row["source"], row["licence"])
            break
    return [{"source": s, "licence": licence} for s, licence in seen.items()]


def _data_facts(stage_args, stats: dict[str, Any]) -> dict[str, Any]:
    data = stage_args.data
    files = [{"file": f, "rows": count_rows(f)} for f in data.train_files]
    validation = [{"file": f, "rows": count_rows(f)} for f in (data.validation_files or [])]
    splits = {
        split: {k: v for k, v in (stats.get(split) or {}).items() if k in ("rows_in", "rows_out", "dropped")}
        for split in ("train", "validation")
        if stats.get(split)
    }
    return {
        "train_files": files,
        "validation_files": validation,
        "splits": splits,
        "system_prompt": data.system_prompt,
        "prompt_id": data.prompt_id,
        "hub_datasets": [f for f in data.train_files if is_hub_id(f)],
        "licences": data_licences(list(data.train_files) + list(data.validation_files or [])),
    }


def _recipe_facts(stage, stage_args, training_args) -> dict[str, Any]:
    """The training settings a card records: arguments, precision and the stage's own settings.

    The training arguments the stage's class has (a pretraining run has no ``max_length``, only DPO a ``beta``), the
    precision it ran at, and the stage's own settings (:attr:`Stage.recorded`).
    """
    recipe = {k: getattr(training_args, k) for k in _RECIPE_KEYS if hasattr(training_args, k)}
    recipe = {k: (v.value if hasattr(v, "value") else v) for k, v in recipe.items()}
    ran, asked = training_args.ran_precision, training_args.precision
    precision = ran if asked == ran else f"{ran} ({asked})"  # "bf16 (auto)"
    recipe.update(precision=precision, world_size=training_args.world_size, **stage.recorded(stage_args))
    return recipe


def stage_facts(summary: dict[str, Any], stage, stage_args, training_args, model, tokenizer) -> dict[str, Any]:
    """The facts a finished stage knows (see the module doc); ``stage`` is its row of the stage table."""
    base = getattr(model, "get_base_model", lambda: model)()
    config = base.config
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in base.parameters())
    is_adapter = hasattr(model, "peft_config")
    metrics = summary.get("metrics", {})
    return {
        "name": Path(training_args.output_dir).name,
        "kind": "peft-adapter" if is_adapter else "model",
        "stage": stage_args.stage,
        "stage_description": stage.description,
        "use_system_prompt": stage.use_system_prompt,
        "parent": stage_args.model.model_name_or_path,
        "parent_on_hub": is_hub_id(stage_args.model.model_name_or_path),
        "merged_adapter": stage_args.model.adapter_name_or_path,
        "preset": preset_of(config),
        "parameters": total - (trainable if is_adapter else 0),
        "adapter_parameters": trainable if is_adapter else None,
        "architecture": architecture_facts(config),
        "data": _data_facts(stage_args, summary.get("data") or {}),
        "recipe": _recipe_facts(stage, stage_args, training_args),
        "training": {
            "global_step": summary.get("global_step"),
            "wall_time_s": summary.get("wall_time_s"),
            "train_loss": metrics.get("train_loss"),
            "validation_loss": metrics.get("eval_loss"),
            "validation_perplexity": metrics.get("eval_perplexity"),
            "dpo_reward_margin": metrics.get("eval_rewards/margins"),
            "dpo_reward_accuracy": metrics.get("eval_rewards/accuracies"),
            "grpo_rewards": (summary.get("grpo") or {}).get("rewards"),
            "grpo_reward": (summary.get("grpo") or {}).get("final_reward"),
            "grpo_zero_signal_share": (summary.get("grpo") or {}).get("zero_signal_share"),
        },
        "tokenizer": tokenizer_facts(tokenizer),
        "created": time.strftime("%Y-%m-%d"),
        "evaluations": [],
        "warnings": list(summary.get("warnings") or []),
    }


def tokenizer_facts(tokenizer) -> dict[str, Any]:
    return {
        "size": len(tokenizer),
        "type": "byte-level BPE",
        "pad": tokenizer.pad_token,
        "bos": tokenizer.bos_token,
        "eos": tokenizer.eos_token,
    }


def facts_from_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Facts of a checkpoint that has no ``model_card.json``: what its files say."""
    directory = Path(path)
    facts: dict[str, Any] = {
        "name": directory.resolve().name,
        "stage": None,
        "parent": None,
        "evaluations": [],
        "created": time.strftime("%Y-%m-%d"),
    }
    marker = directory / COMPLETE_MARKER
    if marker.is_file():
        summary = json.loads(marker.read_text())
        metrics = summary.get("metrics", {})
        facts.update(
            stage=summary.get("stage"),
            training={
                "global_step": summary.get("global_step"),
                "validation_loss": metrics.get("eval_loss"),
                "validation_perplexity": metrics.get("eval_perplexity"),
                "train_loss": metrics.get("train_loss"),
            },
        )
    adapter = directory / "adapter_config.json"
    if adapter.is_file():
        parent = json.loads(adapter.read_text()).get("base_model_name_or_path")
        facts.update(
            kind="peft-adapter",
            parent=parent,
            parent_on_hub=is_hub_id(parent)
            and not any((where / parent).exists() for where in (directory, directory.parent)),
        )
    elif (directory / "config.json").is_file():
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(directory)
        facts.update(kind="model", preset=preset_of(config), architecture=architecture_facts(config))
    return facts


def load_facts(path: str | os.PathLike[str]) -> dict[str, Any]:
    facts_file = Path(path) / CARD_FACTS
    if facts_file.is_file():
        return json.loads(facts_file.read_text(encoding="utf-8"))
    return facts_from_checkpoint(path)


# ---------------------------------------------------------------------------------------- rendering


def write_card(path: str | os.PathLike[str], facts: dict[str, Any]) -> Path:
    """Save ``facts`` as ``model_card.json`` and render ``README.md`` in ``path``; returns the README's path."""
    directory = Path(path)
    (directory / CARD_FACTS).write_text(
        json.dumps(facts, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    readme = directory / CARD_FILE
    readme.write_text(render_card(facts), encoding="utf-8")
    return readme


def write_stage_card(summary: dict[str, Any], stage, stage_args, training_args, model, tokenizer) -> Path:
    """The stage runner's hook: the card of the model a stage just saved in ``training_args.output_dir``."""
    facts = stage_facts(summary, stage, stage_args, training_args, model, tokenizer)
    return write_card(training_args.output_dir, facts)


def evaluation_facts(result: dict[str, Any]) -> dict[str, Any]:
    """One ``minimind eval`` result (``eval.json``) as a row of the card's evaluations."""
    translation, validation = result.get("translation") or {}, result.get("validation") or {}
    generation = translation.get("generation") or {}
    test = translation.get("file")
    return {
        "test_name": Path(test).name.removesuffix(".jsonl") if test and os.path.exists(test) else test,
        "dataset_type": "json" if test and os.path.exists(test) else test,
        "system": generation.get("system"),
        "pairs": translation.get("n"),
        "chrf": translation.get("chrf"),
        "bleu": translation.get("bleu"),
        "comet": translation.get("comet"),
        "semantic": (translation.get("semantic") or {}).get("score"),
        "traditional_share": translation.get("traditional_share"),
        "validation_name": Path(validation["file"]).name.removesuffix(".jsonl") if validation.get("file") else None,
        "perplexity": validation.get("perplexity"),
        "decoding": generation.get("decoding"),
        "date": (result.get("created") or time.strftime("%Y-%m-%d"))[:10],
    }


def record_evaluation(checkpoint: str | os.PathLike[str], result: dict[str, Any]) -> Path | None:
    """Add an evaluation to a local checkpoint's card and render it again.

    An earlier evaluation of the same test set, system prompt and validation file is replaced. Returns the README's
    path, ``None`` if not a directory.
    """
    directory = Path(checkpoint)
    if not directory.is_dir():
        return None
    facts = load_facts(directory)
    row = evaluation_facts(result)
    same = ("test_name", "system", "validation_name")
    facts["evaluations"] = [e for e in facts.get("evaluations", []) if any(e.get(k) != row[k] for k in same)] + [row]
    return write_card(directory, facts)


def card_for_push(
    checkpoint: str | os.PathLike[str],
    repo_id: str,
    *,
    base_model: str | None = None,
    datasets: list[str] | None = None,
) -> str:
    """The card text for ``checkpoint`` pushed as ``repo_id``: its facts with the Hub names filled in."""
    facts = load_facts(checkpoint)
    facts["hub_name"] = repo_id
    if base_model:
        facts["hub_base_model"] = base_model
    if datasets:
        facts["hub_datasets"] = list(datasets)
    return render_card(facts)
