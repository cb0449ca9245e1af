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

A checkpoint without ``model_card.json`` (trained before cards existed, or made outside the runner) gets
one built from its config when it is evaluated or pushed.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ..data.layout import CARD_FACTS, CARD_FILE, COMPLETE_MARKER, DATA_CARDS

CODE_LICENSE = "apache-2.0"

_STAGE_WORDS = {
    "pretrain": "pretrained from scratch (next-token prediction on packed documents)",
    "sft": "supervised fine-tuning on translation chats (loss on the assistant replies only)",
    "lora": "a LoRA adapter for finance-domain translation (PEFT)",
    "dpo": "direct preference optimisation of the SFT model with its LoRA adapter merged",
}
_RECIPE_KEYS = (
    "learning_rate", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "num_train_epochs", "max_steps",
    "per_device_train_batch_size", "gradient_accumulation_steps", "weight_decay", "max_grad_norm", "seed",
    "max_length", "beta", "loss_type",
)
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_id(name: str | None) -> bool:
    """``owner/name`` that is not a local path."""
    return bool(name) and bool(_HUB_ID.fullmatch(name)) and not os.path.exists(name)


# ------------------------------------------------------------------------------------------- facts


def preset_of(config) -> str | None:
    """The name of the :data:`~minimind_hf.configuration_minimind.PRESETS` entry ``config`` was built from."""
    from ..configuration_minimind import PRESETS, MiniMindConfig

    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
            "vocab_size", "use_moe", "n_routed_experts", "n_shared_experts", "num_experts_per_tok")
    for name in PRESETS:
        reference = MiniMindConfig.from_preset(name)
        if all(getattr(config, k, None) == getattr(reference, k, None) for k in keys):
            return name
    return None


def architecture_facts(config) -> dict[str, Any]:
    facts = {k: getattr(config, k, None) for k in (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
        "vocab_size", "max_position_embeddings", "rope_theta", "use_moe")}
    if getattr(config, "use_moe", False):
        facts.update({k: getattr(config, k, None) for k in ("n_routed_experts", "n_shared_experts", "num_experts_per_tok")})
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
    splits = {split: {k: v for k, v in (stats.get(split) or {}).items() if k in ("rows_in", "rows_out", "dropped")}
              for split in ("train", "validation") if stats.get(split)}
    return {"train_files": files, "validation_files": validation, "splits": splits,
            "system_prompt": data.system_prompt, "prompt_id": data.prompt_id,
            "hub_datasets": [f for f in data.train_files if is_hub_id(f)],
            "licences": data_licences(list(data.train_files) + list(data.validation_files or []))}


def _recipe_facts(stage_args, training_args) -> dict[str, Any]:
    recipe = {k: getattr(training_args, k) for k in _RECIPE_KEYS if hasattr(training_args, k)}
    recipe = {k: (v.value if hasattr(v, "value") else v) for k, v in recipe.items()}
    ran = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
    precision = ran if stage_args.run.precision == ran else f"{ran} ({stage_args.run.precision})"  # "bf16 (auto)"
    recipe.update(precision=precision, world_size=training_args.world_size)
    if stage_args.stage == "pretrain":
        recipe["block_size"] = stage_args.data.block_size
        recipe.pop("max_length", None)
    if stage_args.stage == "lora":
        lora = stage_args.lora
        recipe.update(lora_r=lora.lora_r, lora_alpha=lora.lora_alpha, lora_dropout=lora.lora_dropout,
                      lora_target_modules=list(lora.lora_target_modules))
    if stage_args.stage != "dpo":
        recipe.pop("beta", None)
        recipe.pop("loss_type", None)
    return recipe


def stage_facts(summary: dict[str, Any], stage_args, training_args, model, tokenizer) -> dict[str, Any]:
    """The facts a finished stage knows (see the module doc)."""
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
        "parent": stage_args.model.model_name_or_path,
        "parent_on_hub": is_hub_id(stage_args.model.model_name_or_path),
        "merged_adapter": stage_args.model.adapter_name_or_path,
        "preset": preset_of(config),
        "parameters": total - (trainable if is_adapter else 0),
        "adapter_parameters": trainable if is_adapter else None,
        "architecture": architecture_facts(config),
        "data": _data_facts(stage_args, summary.get("data") or {}),
        "recipe": _recipe_facts(stage_args, training_args),
        "training": {"global_step": summary.get("global_step"), "wall_time_s": summary.get("wall_time_s"),
                     "train_loss": metrics.get("train_loss"), "validation_loss": metrics.get("eval_loss"),
                     "validation_perplexity": metrics.get("eval_perplexity"),
                     "dpo_reward_margin": metrics.get("eval_rewards/margins"),
                     "dpo_reward_accuracy": metrics.get("eval_rewards/accuracies")},
        "tokenizer": tokenizer_facts(tokenizer),
        "created": time.strftime("%Y-%m-%d"),
        "evaluations": [],
    }


def tokenizer_facts(tokenizer) -> dict[str, Any]:
    return {"size": len(tokenizer), "type": "byte-level BPE", "pad": tokenizer.pad_token, "bos": tokenizer.bos_token,
            "eos": tokenizer.eos_token}


def facts_from_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Facts of a checkpoint that has no ``model_card.json``: what its files say."""
    directory = Path(path)
    facts: dict[str, Any] = {"name": directory.resolve().name, "stage": None, "parent": None, "evaluations": [],
                             "created": time.strftime("%Y-%m-%d")}
    marker = directory / COMPLETE_MARKER
    if marker.is_file():
        summary = json.loads(marker.read_text())
        metrics = summary.get("metrics", {})
        facts.update(stage=summary.get("stage"), training={
            "global_step": summary.get("global_step"), "validation_loss": metrics.get("eval_loss"),
            "validation_perplexity": metrics.get("eval_perplexity"), "train_loss": metrics.get("train_loss")})
    adapter = directory / "adapter_config.json"
    if adapter.is_file():
        parent = json.loads(adapter.read_text()).get("base_model_name_or_path")
        facts.update(kind="peft-adapter", parent=parent, parent_on_hub=is_hub_id(parent) and not any(
            (where / parent).exists() for where in (directory, directory.parent)))
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


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _eval_results(facts: dict[str, Any]):
    from huggingface_hub import EvalResult

    results = []
    for ev in facts.get("evaluations", []):
        name = ev.get("test_name") or ev.get("validation_name")
        metrics = [("chrf", "chrF++", ev.get("chrf++")), ("bleu", "BLEU (zh tokenizer)", ev.get("bleu")),
                   ("comet", "COMET", ev.get("comet")), ("perplexity", "validation perplexity", ev.get("perplexity"))]
        for metric_type, metric_name, value in metrics:
            if value is None:
                continue
            split = "validation" if metric_type == "perplexity" else "test"
            dataset = ev.get("validation_name") if metric_type == "perplexity" else ev.get("test_name")
            results.append(EvalResult(
                task_type="translation" if metric_type != "perplexity" else "text-generation",
                task_name="English to Traditional Chinese (zh-TW)" if metric_type != "perplexity" else "language modelling",
                dataset_type=ev.get("dataset_type") or "json", dataset_name=dataset or name, dataset_split=split,
                dataset_config=ev.get("system"), metric_type=metric_type, metric_name=metric_name,
                metric_value=round(float(value), 4)))
    return results


def card_metadata(facts: dict[str, Any]):
    """The ``ModelCardData`` (the YAML header) of a card."""
    from huggingface_hub import ModelCardData

    base = facts.get("hub_base_model") or (facts.get("parent") if facts.get("parent_on_hub") else None)
    datasets = facts.get("hub_datasets") or (facts.get("data") or {}).get("hub_datasets") or None
    adapter = facts.get("kind") == "peft-adapter"
    tags = ["minimind", "translation", "zh-TW", facts.get("stage") or "checkpoint"] + (["lora", "peft"] if adapter else [])
    return ModelCardData(
        language=["en", "zh"], license="other", license_name="apache-2.0-code-and-mixed-data-licences",
        library_name="peft" if adapter else "transformers", pipeline_tag="text-generation", tags=tags,
        base_model=base, datasets=datasets, model_name=facts.get("hub_name") or facts.get("name"),
        eval_results=_eval_results(facts) or None,
    )


def _section_model(facts: dict[str, Any]) -> list[str]:
    arch = facts.get("architecture") or {}
    lines = ["## Model", ""]
    preset = facts.get("preset")
    lines.append(f"MiniMind, a small LLaMA-style decoder, preset **`{preset}`**" if preset else
                 "MiniMind, a small LLaMA-style decoder (a custom configuration)")
    if facts.get("parameters"):
        lines[-1] += f": {facts['parameters']:,} parameters"
    if facts.get("adapter_parameters"):
        lines[-1] += f", plus a LoRA adapter of {facts['adapter_parameters']:,} trainable parameters"
    lines[-1] += "."
    if arch:
        lines += ["", "| hidden | layers | heads / KV | MLP | vocabulary | context | rotary theta | MoE |",
                  "|---:|---:|---|---:|---:|---:|---:|---|",
                  f"| {arch.get('hidden_size')} | {arch.get('num_hidden_layers')} | {arch.get('num_attention_heads')} / "
                  f"{arch.get('num_key_value_heads')} | {arch.get('intermediate_size')} | {arch.get('vocab_size')} | "
                  f"{arch.get('max_position_embeddings')} | {_number(arch.get('rope_theta'))} | "
                  + (f"{arch.get('n_routed_experts')} routed + {arch.get('n_shared_experts')} shared, top-"
                     f"{arch.get('num_experts_per_tok')}" if arch.get("use_moe") else "no") + " |"]
    return lines


def _section_stage(facts: dict[str, Any]) -> list[str]:
    stage = facts.get("stage")
    lines = ["", "## Stage", ""]
    lines.append(f"**{stage}**: {_STAGE_WORDS.get(stage, 'a MiniMind checkpoint')}." if stage else
                 "Not recorded (this checkpoint was not saved by the stage runner).")
    if facts.get("parent"):
        lines.append(f"Started from `{facts['parent']}`" + (f", with the adapter `{facts['merged_adapter']}` merged"
                                                            if facts.get("merged_adapter") else "") + ".")
    elif stage == "pretrain":
        lines.append("Started from randomly initialised weights.")
    return lines


def _section_data(facts: dict[str, Any]) -> list[str]:
    data = facts.get("data")
    if not data:
        return []
    lines = ["", "## Training data", "", "| split | file | rows |", "|---|---|---:|"]
    lines += [f"| train | `{f['file']}` | {_number(f['rows'])} |" for f in data.get("train_files", [])]
    lines += [f"| validation | `{f['file']}` | {_number(f['rows'])} |" for f in data.get("validation_files", [])]
    for split, counts in (data.get("splits") or {}).items():
        dropped = counts.get("dropped") or {}
        lines.append("")
        lines.append(f"{split}: {_number(counts.get('rows_in'))} rows read, {_number(counts.get('rows_out'))} used"
                     + (f", dropped {dropped}" if dropped else ", none dropped") + ".")
    if data.get("system_prompt") or data.get("prompt_id") not in (None, "0", 0):
        lines += ["", f"Parallel rows were turned into chats with prompt id `{data.get('prompt_id')}`"
                  + (f" and the `{data['system_prompt']}` system prompt" if data.get("system_prompt") else "") + "."]
    return lines


def _section_recipe(facts: dict[str, Any]) -> list[str]:
    recipe, training = facts.get("recipe"), facts.get("training") or {}
    lines = []
    if recipe:
        lines += ["", "## Recipe", "", "| setting | value |", "|---|---|"]
        lines += [f"| `{k}` | {_number(v) if not isinstance(v, list) else ', '.join(map(str, v))} |"
                  for k, v in recipe.items() if v is not None]
    measured = [("steps", training.get("global_step")), ("wall time (s)", training.get("wall_time_s")),
                ("training loss", training.get("train_loss")), ("validation loss", training.get("validation_loss")),
                ("validation perplexity", training.get("validation_perplexity")),
                ("DPO reward margin", training.get("dpo_reward_margin")),
                ("DPO reward accuracy", training.get("dpo_reward_accuracy"))]
    measured = [(k, v) for k, v in measured if v is not None]
    if measured:
        lines += ["", "## Training results (measured)", "", "| measure | value |", "|---|---:|"]
        lines += [f"| {k} | {_number(v)} |" for k, v in measured]
    return lines


def _section_evaluations(facts: dict[str, Any]) -> list[str]:
    evaluations = facts.get("evaluations") or []
    lines = ["", "## Evaluation", ""]
    if not evaluations:
        return lines + ["Not evaluated yet: `minimind eval` on this checkpoint adds its scores here."]
    lines += ["Measured with `minimind eval` (greedy decoding unless noted).", "",
              "| test set | system prompt | pairs | chrF++ | BLEU | COMET | semantic | Traditional script | "
              "validation perplexity | date |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for ev in evaluations:
        share = ev.get("traditional_share")
        lines.append(
            f"| {ev.get('test_name') or '—'} | {ev.get('system') or 'none'} | {_number(ev.get('pairs'))} | "
            f"{_number(ev.get('chrf++'))} | {_number(ev.get('bleu'))} | {_number(ev.get('comet'))} | "
            f"{_number(ev.get('semantic'))} | {f'{share:.0%}' if share is not None else '—'} | "
            f"{_number(ev.get('perplexity'))} | {ev.get('date', '—')} |")
    return lines


def _section_use(facts: dict[str, Any], repo: str) -> list[str]:
    from ..prompts import FINANCE_SYSTEM_PROMPT, TRANSLATION_PROMPTS

    adapter = facts.get("kind") == "peft-adapter"
    base = facts.get("hub_base_model") or facts.get("parent") or "BASE_MODEL"
    lines = ["", "## How to use it", "", "With the `minimind_hf` package (`pip install minimind-hf`):", "", "```python",
             "import minimind_hf  # registers MiniMind with the Auto classes",
             "from transformers import AutoModelForCausalLM, AutoTokenizer",
             "from minimind_hf.prompts import translation_messages", ""]
    if adapter:
        lines += ["from peft import PeftModel", "",
                  f'model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{base}"), "{repo}")',
                  f'tok = AutoTokenizer.from_pretrained("{base}")']
    else:
        lines += [f'model = AutoModelForCausalLM.from_pretrained("{repo}")', f'tok = AutoTokenizer.from_pretrained("{repo}")']
    system = ', system="finance"' if facts.get("stage") in ("lora", "dpo") else ""
    lines += ['ids = tok.apply_chat_template(translation_messages("The interest rate per period."'
              + (", system=minimind_hf.prompts.FINANCE_SYSTEM_PROMPT" if system else "") + "),",
              '                              add_generation_prompt=True, return_tensors="pt", return_dict=True)',
              "out = model.generate(**ids, max_new_tokens=64, do_sample=False)",
              'print(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))', "```", ""]
    if not adapter:
        lines += ["Without the package (the checkpoint carries its model code):", "", "```python",
                  "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                  f'model = AutoModelForCausalLM.from_pretrained("{repo}", trust_remote_code=True)',
                  f'tok = AutoTokenizer.from_pretrained("{repo}")', "```", ""]
    lines += ["From the command line: `minimind translate CHECKPOINT \"The interest rate per period.\""
              + (" --finance" if system else "") + "`; as an OpenAI-compatible server: `minimind serve CHECKPOINT`"
              + ("" if adapter else "; for llama.cpp / ollama: `minimind export CHECKPOINT model.gguf --to gguf`") + ".",
              "", "### The translation prompt", "",
              "The model was taught to translate when asked like this (a user turn of the ChatML template):", "",
              "```text", TRANSLATION_PROMPTS[0].format(en="<English text>"), "```", "",
              f"The finance adapter and DPO stages add this system turn (`system=\"finance\"`): *{FINANCE_SYSTEM_PROMPT}*"]
    return lines


def _section_tokenizer_licence(facts: dict[str, Any]) -> list[str]:
    tok = facts.get("tokenizer") or {}
    lines = ["", "## Tokenizer", ""]
    lines.append(f"Byte-level BPE, {tok.get('size', 6400):,} tokens; `<|endoftext|>` = 0 (padding, document separator), "
                 "`<|im_start|>` = 1, `<|im_end|>` = 2 (end of turn); ChatML chat template.")
    lines += ["", "## Licence", "", "The code is Apache-2.0. The weights are trained on the data below, under these "
              "licences (the Hub header says `license: other` for that reason):", ""]
    licences = (facts.get("data") or {}).get("licences") or []
    if licences:
        lines += ["| source | licence |", "|---|---|"] + [f"| {r['source']} | {r['licence']} |" for r in licences]
    else:
        lines.append("Not recorded: see the data card of the training files.")
    return lines


def render_card(facts: dict[str, Any]) -> str:
    """The card text (YAML header and body) of ``facts``."""
    from huggingface_hub import ModelCard

    repo = facts.get("hub_name") or facts.get("name") or "CHECKPOINT"
    stage = facts.get("stage")
    title = f"# MiniMind {stage} — English → Traditional Chinese (zh-TW)" if stage else "# MiniMind — English → zh-TW"
    body = [title, "", f"`{facts.get('name')}`: a MiniMind checkpoint for translating English into Traditional Chinese "
            "(Taiwan), trained end to end on the Hugging Face stack with minimind-hf.", ""]
    body += _section_model(facts) + _section_stage(facts) + _section_data(facts) + _section_recipe(facts)
    body += _section_evaluations(facts) + _section_use(facts, repo) + _section_tokenizer_licence(facts)
    body += ["", "## Limits", "", "A small model: check its scores above before relying on a translation. It was trained "
             "for EN → zh-TW only and has no safety tuning."]
    card = ModelCard.from_template(card_data=card_metadata(facts), template_str="---\n{{ card_data }}\n---\n\n{{ body }}\n",
                                   body="\n".join(body))
    return str(card)


def write_card(path: str | os.PathLike[str], facts: dict[str, Any]) -> Path:
    """Save ``facts`` as ``model_card.json`` and render ``README.md`` in ``path``; returns the README's path."""
    directory = Path(path)
    (directory / CARD_FACTS).write_text(json.dumps(facts, ensure_ascii=False, indent=2, default=str) + "\n",
                                        encoding="utf-8")
    readme = directory / CARD_FILE
    readme.write_text(render_card(facts), encoding="utf-8")
    return readme


def write_stage_card(summary: dict[str, Any], stage_args, training_args, model, tokenizer) -> Path:
    """The stage runner's hook: the card of the model a stage just saved in ``training_args.output_dir``."""
    return write_card(training_args.output_dir, stage_facts(summary, stage_args, training_args, model, tokenizer))


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
        "chrf++": translation.get("chrf++"), "bleu": translation.get("bleu"), "comet": translation.get("comet"),
        "semantic": (translation.get("semantic") or {}).get("score"),
        "traditional_share": translation.get("traditional_share"),
        "validation_name": Path(validation["file"]).name.removesuffix(".jsonl") if validation.get("file") else None,
        "perplexity": validation.get("perplexity"),
        "decoding": generation.get("decoding"),
        "date": (result.get("created") or time.strftime("%Y-%m-%d"))[:10],
    }


def record_evaluation(checkpoint: str | os.PathLike[str], result: dict[str, Any]) -> Path | None:
    """Add an evaluation to a local checkpoint's card (replacing an earlier one of the same test set, system
    prompt and validation file) and render it again; returns the README's path, ``None`` if not a directory."""
    directory = Path(checkpoint)
    if not directory.is_dir():
        return None
    facts = load_facts(directory)
    row = evaluation_facts(result)
    same = ("test_name", "system", "validation_name")
    facts["evaluations"] = [e for e in facts.get("evaluations", []) if any(e.get(k) != row[k] for k in same)] + [row]
    return write_card(directory, facts)


def card_for_push(checkpoint: str | os.PathLike[str], repo_id: str, *, base_model: str | None = None,
                  datasets: list[str] | None = None) -> str:
    """The card text for ``checkpoint`` pushed as ``repo_id``: its facts with the Hub names filled in."""
    facts = load_facts(checkpoint)
    facts["hub_name"] = repo_id
    if base_model:
        facts["hub_base_model"] = base_model
    if datasets:
        facts["hub_datasets"] = list(datasets)
    return render_card(facts)
