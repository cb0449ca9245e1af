"""A model card's text.

The Hub metadata (``model-index`` with the evaluations) and the Markdown body, rendered from the facts
:mod:`minimind_hf.hub.model_card` gathers in ``model_card.json``.
"""

from __future__ import annotations

from typing import Any


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
        metrics = [
            ("chrf", "chrF", ev.get("chrf")),
            ("bleu", "BLEU (zh tokenizer)", ev.get("bleu")),
            ("comet", "COMET", ev.get("comet")),
            ("perplexity", "validation perplexity", ev.get("perplexity")),
        ]
        for metric_type, metric_name, value in metrics:
            if value is None:
                continue
            split = "validation" if metric_type == "perplexity" else "test"
            dataset = ev.get("validation_name") if metric_type == "perplexity" else ev.get("test_name")
            results.append(
                EvalResult(
                    task_type="translation" if metric_type != "perplexity" else "text-generation",
                    task_name=(
                        "English to Traditional Chinese (zh-TW)"
                        if metric_type != "perplexity"
                        else "language modelling"
                    ),
                    dataset_type=ev.get("dataset_type") or "json",
                    dataset_name=dataset or name,
                    dataset_split=split,
                    dataset_config=ev.get("system"),
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=round(float(value), 4),
                )
            )
    return results


def card_metadata(facts: dict[str, Any]):
    """The ``ModelCardData`` (the YAML header) of a card."""
    from huggingface_hub import ModelCardData

    base = facts.get("hub_base_model") or (facts.get("parent") if facts.get("parent_on_hub") else None)
    datasets = facts.get("hub_datasets") or (facts.get("data") or {}).get("hub_datasets") or None
    adapter = facts.get("kind") == "peft-adapter"
    tags = ["minimind", "translation", "zh-TW", facts.get("stage") or "checkpoint"]
    tags += ["lora", "peft"] if adapter else []
    return ModelCardData(
        language=["en", "zh"],
        license="other",
        license_name="apache-2.0-code-and-mixed-data-licences",
        library_name="peft" if adapter else "transformers",
        pipeline_tag="text-generation",
        tags=tags,
        base_model=base,
        datasets=datasets,
        model_name=facts.get("hub_name") or facts.get("name"),
        eval_results=_eval_results(facts) or None,
    )


def _section_model(facts: dict[str, Any]) -> list[str]:
    arch = facts.get("architecture") or {}
    lines = ["## Model", ""]
    preset = facts.get("preset")
    lines.append(
        f"MiniMind, a small LLaMA-style decoder, preset **`{preset}`**"
        if preset
        else "MiniMind, a small LLaMA-style decoder (a custom configuration)"
    )
    if facts.get("parameters"):
        lines[-1] += f": {facts['parameters']:,} parameters"
    if facts.get("adapter_parameters"):
        lines[-1] += f", plus a LoRA adapter of {facts['adapter_parameters']:,} trainable parameters"
    lines[-1] += "."
    if arch:
        lines += [
            "",
            "| hidden | layers | heads / KV | MLP | vocabulary | context | rotary theta | MoE |",
            "|---:|---:|---|---:|---:|---:|---:|---|",
            f"| {arch.get('hidden_size')} | {arch.get('num_hidden_layers')} | "
            f"{arch.get('num_attention_heads')} / "
            f"{arch.get('num_key_value_heads')} | {arch.get('intermediate_size')} | {arch.get('vocab_size')} | "
            f"{arch.get('max_position_embeddings')} | {_number(arch.get('rope_theta'))} | "
            + (
                f"{arch.get('n_routed_experts')} routed + {arch.get('n_shared_experts')} shared, top-"
                f"{arch.get('num_experts_per_tok')}"
                if arch.get("use_moe")
                else "no"
            )
            + " |",
        ]
    return lines


def _section_stage(facts: dict[str, Any]) -> list[str]:
    stage = facts.get("stage")
    lines = ["", "## Stage", ""]
    lines.append(
        f"**{stage}**: {facts.get('stage_description') or 'a MiniMind checkpoint'}."
        if stage
        else "Not recorded (this checkpoint was not saved by the stage runner)."
    )
    if facts.get("parent"):
        lines.append(
            f"Started from `{facts['parent']}`"
            + (f", with the adapter `{facts['merged_adapter']}` merged" if facts.get("merged_adapter") else "")
            + "."
        )
    elif "stage_description" in facts:  # saved by the runner with no start model
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
        lines.append(
            f"{split}: {_number(counts.get('rows_in'))} rows read, {_number(counts.get('rows_out'))} used"
            + (f", dropped {dropped}" if dropped else ", none dropped")
            + "."
        )
    if data.get("system_prompt") or data.get("prompt_id") not in (None, "0", 0):
        lines += [
            "",
            f"Parallel rows were turned into chats with prompt id `{data.get('prompt_id')}`"
            + (f" and the `{data['system_prompt']}` system prompt" if data.get("system_prompt") else "")
            + ".",
        ]
    return lines


def _section_recipe(facts: dict[str, Any]) -> list[str]:
    recipe, training = facts.get("recipe"), facts.get("training") or {}
    lines = []
    if recipe:
        lines += ["", "## Recipe", "", "| setting | value |", "|---|---|"]
        lines += [
            f"| `{k}` | {_number(v) if not isinstance(v, list) else ', '.join(map(str, v))} |"
            for k, v in recipe.items()
            if v is not None
        ]
    measured = [
        ("steps", training.get("global_step")),
        ("wall time (s)", training.get("wall_time_s")),
        ("training loss", training.get("train_loss")),
        ("validation loss", training.get("validation_loss")),
        ("validation perplexity", training.get("validation_perplexity")),
        ("DPO reward margin", training.get("dpo_reward_margin")),
        ("DPO reward accuracy", training.get("dpo_reward_accuracy")),
        ("GRPO rewards", training.get("grpo_rewards")),
        ("GRPO reward (last logged)", training.get("grpo_reward")),
        ("GRPO groups without signal (share)", training.get("grpo_zero_signal_share")),
    ]
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
    lines += [
        "Measured with `minimind eval` (greedy decoding unless noted).",
        "",
        "| test set | system prompt | pairs | chrF | BLEU | COMET | semantic | "
        "Traditional (of Chinese outputs) | "
        "validation perplexity | date |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for ev in evaluations:
        share = ev.get("traditional_share")
        lines.append(
            f"| {ev.get('test_name') or '—'} | {ev.get('system') or 'none'} | {_number(ev.get('pairs'))} | "
            f"{_number(ev.get('chrf'))} | {_number(ev.get('bleu'))} | {_number(ev.get('comet'))} | "
            f"{_number(ev.get('semantic'))} | {f'{share:.0%}' if share is not None else '—'} | "
            f"{_number(ev.get('perplexity'))} | {ev.get('date', '—')} |"
        )
    return lines


def _section_use(facts: dict[str, Any], repo: str) -> list[str]:
    from ..prompts import FINANCE_SYSTEM_PROMPT, TRANSLATION_PROMPTS

    adapter = facts.get("kind") == "peft-adapter"
    base = facts.get("hub_base_model") or facts.get("parent") or "BASE_MODEL"
    lines = [
        "",
        "## How to use it",
        "",
        "With the `minimind_hf` package (`pip install minimind-hf`):",
        "",
        "```python",
        "import minimind_hf  # registers MiniMind with the Auto classes",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "from minimind_hf.prompts import translation_messages",
        "",
    ]
    if adapter:
        lines += [
            "from peft import PeftModel",
            "",
            f'model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{base}"), "{repo}")',
            f'tok = AutoTokenizer.from_pretrained("{base}")',
        ]
    else:
        lines += [
            f'model = AutoModelForCausalLM.from_pretrained("{repo}")',
            f'tok = AutoTokenizer.from_pretrained("{repo}")',
        ]
    system = facts.get("use_system_prompt")
    lines += [
        'ids = tok.apply_chat_template(translation_messages("The interest rate per period."'
        + (', system="finance"' if system else "")
        + "),",
        '                              add_generation_prompt=True, return_tensors="pt", return_dict=True)',
        "out = model.generate(**ids, max_new_tokens=64, do_sample=False)",
        'print(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))',
        "```",
        "",
    ]
    if not adapter:
        lines += [
            "Without the package (the checkpoint carries its model code; the tokenizer is a standard fast "
            "tokenizer and needs none):",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast",
            "",
            f'model = AutoModelForCausalLM.from_pretrained("{repo}", trust_remote_code=True)',
            f'tok = PreTrainedTokenizerFast.from_pretrained("{repo}")',
            "```",
            "",
        ]
    lines += [
        'From the command line: `minimind translate CHECKPOINT "The interest rate per period."'
        + (" --finance" if system else "")
        + "`; as an OpenAI-compatible server: `minimind serve CHECKPOINT`"
        + ("" if adapter else "; for llama.cpp / ollama: `minimind export CHECKPOINT model.gguf --to gguf`")
        + ".",
        "",
        "### The translation prompt",
        "",
        "The model was taught to translate when asked like this (a user turn of the ChatML template):",
        "",
        "```text",
        TRANSLATION_PROMPTS[0].format(en="<English text>"),
        "```",
        "",
        'The finance adapter, DPO and GRPO stages add this system turn (`system="finance"`): '
        f"*{FINANCE_SYSTEM_PROMPT}*",
    ]
    return lines


def _section_tokenizer_licence(facts: dict[str, Any]) -> list[str]:
    tok = facts.get("tokenizer") or {}
    lines = ["", "## Tokenizer", ""]
    lines.append(
        f"Byte-level BPE, {tok.get('size', 6400):,} tokens; "
        "`<|endoftext|>` = 0 (padding, document separator), "
        "`<|im_start|>` = 1, `<|im_end|>` = 2 (end of turn); ChatML chat template."
    )
    lines += [
        "",
        "## Licence",
        "",
        "The code is Apache-2.0. The weights are trained on the data below, under these "
        "licences (the Hub header says `license: other` for that reason):",
        "",
    ]
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
    body = [
        title,
        "",
        f"`{facts.get('name')}`: a MiniMind checkpoint for translating English into Traditional Chinese "
        "(Taiwan), trained end to end on the Hugging Face stack with minimind-hf.",
        "",
    ]
    warnings = facts.get("warnings") or []
    if warnings:  # first, where nobody can miss it
        body += ["> **Warning: this stage's own validation says it made the model worse.**", ">"]
        body += [f"> - {warning}" for warning in warnings] + [""]
    body += _section_model(facts) + _section_stage(facts) + _section_data(facts) + _section_recipe(facts)
    body += _section_evaluations(facts) + _section_use(facts, repo) + _section_tokenizer_licence(facts)
    body += [
        "",
        "## Limits",
        "",
        "A small model: check its scores above before relying on a translation. "
        "It was trained for EN → zh-TW only and has no safety tuning.",
    ]
    template = "---\n{{ card_data }}\n---\n\n{{ body }}\n"
    card = ModelCard.from_template(card_data=card_metadata(facts), template_str=template, body="\n".join(body))
    return str(card)
