"""Model cards: written by the stage runner, updated by ``minimind eval``, valid Hub metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from minimind_hf.data.layout import CARD_FACTS
from minimind_hf.hub.card_text import render_card
from minimind_hf.hub.model_card import card_for_push, data_licences, record_evaluation
from minimind_hf.training.runner import parse_args, run
from tests.paths import FIXTURES, ROOT

DATA = FIXTURES / "train"


def _stage(stage: str, out: Path, *extra: str) -> dict:
    argv = [
        str(ROOT / "recipes" / "tiny" / f"{stage}.yaml"),
        "--output_dir",
        str(out),
        "--train_files",
        str(DATA / f"{stage}.jsonl"),
        "--validation_files",
        str(DATA / f"{stage}.validation.jsonl"),
        "--max_steps",
        "2",
        "--eval_steps",
        "2",
        "--save_steps",
        "2",
        "--logging_steps",
        "1",
        "--per_device_train_batch_size",
        "4",
        "--per_device_eval_batch_size",
        "4",
        "--report_to",
        "none",
        "--dataloader_num_workers",
        "0",
        *extra,
    ]
    return run(*parse_args(argv))


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    root = tmp_path_factory.mktemp("cards")
    _stage("pretrain", root / "pretrain", "--preset", "tiny", "--block_size", "64")
    _stage("lora", root / "lora", "--model_name_or_path", str(root / "pretrain"), "--max_length", "128")
    return root


def _card(path: Path) -> ModelCard:
    return ModelCard.load(path / "README.md")


def test_pretrain_card_says_what_the_model_is(stages):
    card = _card(stages / "pretrain")
    data = card.data.to_dict()
    assert data["language"] == ["en", "zh"] and data["pipeline_tag"] == "text-generation"
    assert data["library_name"] == "transformers" and "pretrain" in data["tags"]
    text = card.text
    rows = sum(1 for line in (DATA / "pretrain.jsonl").read_text().splitlines() if line.strip())
    assert "preset **`tiny`**" in text and "parameters" in text
    assert f"`{DATA / 'pretrain.jsonl'}` | {rows} |" in text
    assert "| `learning_rate` |" in text and "| `block_size` | 64 |" in text
    facts = json.loads((stages / "pretrain" / CARD_FACTS).read_text())
    assert facts["training"]["validation_loss"] > 0
    assert f"| validation perplexity | {facts['training']['validation_perplexity']:.4g} |" in text
    assert "trust_remote_code=True" in text and "import minimind_hf" in text
    assert "Translate the following English text into Traditional Chinese (Taiwan)." in text
    assert "Byte-level BPE, 6,400 tokens" in text
    assert "Not evaluated yet" in text
    assert "a fine-tuned version of" not in text  # not TRL's generic card


def test_adapter_card_names_its_parent_and_peft(stages):
    card = _card(stages / "lora")
    assert card.data.to_dict()["library_name"] == "peft"
    text = card.text
    assert f"Started from `{stages / 'pretrain'}`" in text
    assert "LoRA adapter of" in text and "PeftModel.from_pretrained" in text
    assert "| `lora_r` |" in text


def test_eval_updates_the_cards_scores(stages):
    from minimind_hf.evaluation import evaluate_checkpoint

    checkpoint = stages / "pretrain"
    test_file = DATA / "sft.test.jsonl"
    evaluate_checkpoint(
        checkpoint,
        {"test": str(test_file), "validation": str(DATA / "pretrain.validation.jsonl")},
        limit=4,
        max_new_tokens=4,
        semantic=False,
        check_generation=False,
        show_progress=False,
        device="cpu",
        output_dir=stages / "eval",
    )
    card = _card(checkpoint)
    index = card.data.to_dict()["model-index"][0]["results"]
    metrics = {m["type"]: (r["dataset"], m) for r in index for m in r["metrics"]}
    assert {"chrf", "bleu", "perplexity"} <= set(metrics)
    assert metrics["chrf"][0]["name"] == "sft.test" and metrics["perplexity"][0]["name"] == "pretrain.validation"
    evaluation = json.loads((stages / "eval" / "eval.json").read_text())
    assert metrics["chrf"][1]["value"] == round(evaluation["translation"]["chrf"], 4)
    assert "| sft.test | none | 4 |" in card.text and "Not evaluated yet" not in card.text


def test_a_second_evaluation_of_the_same_set_replaces_the_first(tmp_path):
    (tmp_path / CARD_FACTS).write_text(json.dumps({"name": "m", "stage": "sft", "evaluations": []}))
    result = {
        "translation": {"file": "x/test.jsonl", "n": 3, "chrf": 1.0, "bleu": 0.5, "generation": {}},
        "created": "2026-12-02T00:00:00",
    }
    record_evaluation(tmp_path, result)
    record_evaluation(tmp_path, {**result, "translation": {**result["translation"], "chrf": 2.0}})
    evaluations = json.loads((tmp_path / CARD_FACTS).read_text())["evaluations"]
    assert [e["chrf"] for e in evaluations] == [2.0]


def test_push_card_fills_the_hub_names():
    text = render_card({"name": "sft", "stage": "sft", "parent": "out/pretrain"})
    assert "base_model" not in text.split("---")[1]  # a local parent is not a Hub id
    card = ModelCard(
        card_for_push_from(
            {"name": "sft", "stage": "sft", "parent": "out/pretrain"},
            "me/minimind-sft",
            base_model="me/minimind-pretrain",
            datasets=["me/corpus"],
        )
    )
    data = card.data.to_dict()
    assert data["base_model"] == "me/minimind-pretrain" and data["datasets"] == ["me/corpus"]
    assert 'from_pretrained("me/minimind-sft")' in card.text


def card_for_push_from(facts: dict, repo_id: str, **kwargs) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        Path(directory, CARD_FACTS).write_text(json.dumps(facts))
        return card_for_push(directory, repo_id, **kwargs)


def test_data_licences_come_from_the_data_card():
    licences = {r["source"]: r["licence"] for r in data_licences([str(ROOT / "data" / "sample" / "sft.jsonl")])}
    assert licences["libreoffice-help"] == "MPL-2.0" and licences["gnucash-ui"] == "GPL-2+"


def test_the_card_reads_the_stage_from_its_recorded_facts_not_its_name():
    """A stage the renderer has never heard of is described by the facts its row of the stage table recorded."""
    facts = {
        "name": "m",
        "stage": "newstage",
        "stage_description": "a stage added to the table later",
        "use_system_prompt": "finance",
        "parent": None,
        "kind": "model",
        "evaluations": [],
    }
    card = render_card(facts)
    assert "**newstage**: a stage added to the table later." in card
    assert "Started from randomly initialised weights." in card and 'system="finance"' in card


def test_each_stage_row_carries_what_is_recorded_about_it():
    from minimind_hf.training.stages import STAGES

    assert all(stage.description for stage in STAGES.values())
    assert STAGES["lora"].argument_groups == ("lora",) and STAGES["pretrain"].argument_groups == ()


def test_the_cards_snippet_without_the_package_loads_the_tokenizer_without_custom_code(stages):
    """The 'without this package' snippet's tokenizer call loads the saved fast tokenizer with its chat template.

    It runs where minimind_hf is not importable, with no terminal to answer a trust_remote_code prompt.
    """
    import os
    import subprocess
    import sys

    text = _card(stages / "pretrain").text
    without = text[text.index("Without the package") :]
    call = next(line for line in without.splitlines() if line.startswith("tok = "))
    assert call == 'tok = PreTrainedTokenizerFast.from_pretrained("pretrain")'  # the card names its own folder
    code = (
        "import sys; sys.modules['minimind_hf'] = None\nfrom transformers import PreTrainedTokenizerFast\n"
        f"{call}\nprint(len(tok), tok.chat_template is not None, tok.eos_token)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**env, "HF_HUB_OFFLINE": "1"},
        cwd=stages,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["6400", "True", "<|im_end|>"]
    assert "custom code" not in result.stdout + result.stderr


def test_translation_messages_resolves_a_system_prompt_name():
    from minimind_hf.prompts import FINANCE_SYSTEM_PROMPT, translation_messages

    assert translation_messages("The rate.", system="finance")[0] == {
        "role": "system",
        "content": FINANCE_SYSTEM_PROMPT,
    }
    assert translation_messages("The rate.", system="Be brief.")[0]["content"] == "Be brief."
