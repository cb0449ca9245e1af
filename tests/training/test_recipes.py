"""Every committed recipe starts: two optimizer steps on the CPU on the shipped sample, stage after stage.

Each scale's recipes run in pipeline order (pretrain -> SFT -> LoRA -> DPO), each stage starting from the one
before, as written -- model preset, sequence length, precision, schedule, data workers -- except for the length
of training, the batch sizes, where the data and outputs are, and what is left of evaluation. So a recipe that
cannot start (an unknown key, a preset that does not fit the tokenizer, a schedule the installed library
refuses, a DPO config TRL rejects) fails here, before anyone has a GPU in hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from data_tools import babylm
from minimind_hf.data.layout import COMPLETE_MARKER, RUN_DIR, STAGE_NAMES, split_file
from minimind_hf.training.runner import parse_args, run
from tests.paths import ROOT

SAMPLE = ROOT / "data" / "sample"
SCALES = ("tiny", "small", "full")
SHORT = [
    "--max_steps",
    "2",
    "--eval_steps",
    "2",
    "--save_steps",
    "2",
    "--logging_steps",
    "1",
    "--per_device_train_batch_size",
    "2",
    "--per_device_eval_batch_size",
    "2",
    "--gradient_accumulation_steps",
    "1",
    "--max_eval_samples",
    "4",
    "--report_to",
    "none",
]


def committed_recipes() -> list[Path]:
    """Every stage recipe (the per-scale pairs.yaml and eval.yaml hold other commands' settings)."""
    return sorted(p for p in (ROOT / "recipes").glob("*/*.yaml") if "stage" in (yaml.safe_load(p.read_text()) or {}))


def test_every_committed_recipe_is_run_below():
    covered = {ROOT / "recipes" / scale / f"{stage}.yaml" for scale in SCALES for stage in STAGE_NAMES}
    covered.add(ROOT / "recipes" / "babylm" / "pretrain.yaml")
    assert set(committed_recipes()) <= covered, "a new recipe needs a run in tests/training/test_recipes.py"


def _on_the_sample(path: str, stage: str) -> str:
    """A data path of a recipe, on the shipped sample.

    ``data/X`` -> ``data/sample/X``; generated DPO pairs -> the sample's shipped pairs.
    """
    if path.startswith(f"{RUN_DIR}/pairs/"):
        return str(SAMPLE / split_file(stage))
    name = Path(path).name
    assert (SAMPLE / name).is_file(), f"{path}: no file of that name in the shipped sample"
    return str(SAMPLE / name)


def _run_recipe(recipe: Path, out: Path, runs: Path, on_the_sample: bool = True) -> dict:
    written = yaml.safe_load(recipe.read_text())
    stage = written["stage"]
    argv = [str(recipe), "--output_dir", str(out / stage), *SHORT, "--cache_dir", str(runs / "cache")]
    if stage == "grpo":  # groups of two short completions fit the batches of two
        argv += ["--num_generations", "2", "--max_completion_length", "8", "--reward_semantic", "0"]
    for key in ("train_files", "validation_files"):
        if key in written and on_the_sample:
            argv += [f"--{key}", *(_on_the_sample(path, stage) for path in written[key])]
    for key in ("model_name_or_path", "adapter_name_or_path"):
        if written.get(key, "").startswith(f"{RUN_DIR}/"):  # the previous stage of this scale
            argv += [f"--{key}", str(out / Path(written[key]).name)]
    summary = run(*parse_args(argv))
    assert summary["stage"] == stage and summary["global_step"] == 2, recipe
    assert json.loads((out / stage / COMPLETE_MARKER).read_text())["global_step"] == 2
    return summary


def _run_scale(scale: str, tmp_path: Path) -> None:
    out = tmp_path / scale
    for stage in STAGE_NAMES:
        summary = _run_recipe(ROOT / "recipes" / scale / f"{stage}.yaml", out, tmp_path)
        if stage != "grpo":  # GRPO's validation loss does not rank checkpoints: it keeps the last one
            assert summary["best_checkpoint"] is not None, f"{scale}/{stage}: validation data, so the best checkpoint"


def test_tiny_recipes_run(tmp_path):
    _run_scale("tiny", tmp_path)


@pytest.mark.slow
def test_small_recipes_run(tmp_path):
    _run_scale("small", tmp_path)


@pytest.mark.slow
def test_full_recipes_run(tmp_path):
    _run_scale("full", tmp_path)


@pytest.mark.slow
def test_babylm_recipe_runs(tmp_path, monkeypatch):
    data = tmp_path / "data" / "babylm"
    assert (
        babylm.main(
            [str(SAMPLE / "pretrain.jsonl"), str(data), "--validation", str(SAMPLE / "pretrain.validation.jsonl")]
        )
        == 0
    )
    monkeypatch.chdir(tmp_path)  # the recipe's data/babylm/... paths
    summary = _run_recipe(
        ROOT / "recipes" / "babylm" / "pretrain.yaml", tmp_path / "out", tmp_path, on_the_sample=False
    )
    assert "test_loss" in summary["metrics"]
