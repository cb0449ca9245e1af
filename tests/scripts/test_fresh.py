"""scripts/fresh.py: a pipeline step whose inputs did not change since its last successful run is not started."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

_spec = importlib.util.spec_from_file_location("fresh", ROOT / "scripts" / "fresh.py")
fresh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fresh)

# a "stage": reads the recipe's train file, writes its output folder, counts its runs
STEP = """
import os, sys, yaml, pathlib
recipe = yaml.safe_load(open(sys.argv[1]))
out = pathlib.Path(recipe["output_dir"]); out.mkdir(parents=True, exist_ok=True)
(out / "model.txt").write_text(open(recipe["train_files"][0]).read().upper())
runs = pathlib.Path(os.environ["RUNS"]); runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
"""


@pytest.fixture
def stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FRESH", raising=False)
    (tmp_path / "step.py").write_text(STEP)
    (tmp_path / "data.jsonl").write_text("one\n")
    (tmp_path / "recipe.yaml").write_text("train_files: [data.jsonl]\noutput_dir: out/stage\nlearning_rate: 0.1\n")
    monkeypatch.setenv("RUNS", str(tmp_path / "runs.txt"))  # counted outside the command's own files
    command = [sys.executable, "step.py", "recipe.yaml"]
    return tmp_path, command


def _runs(root: Path) -> int:
    return len((root / "runs.txt").read_text()) if (root / "runs.txt").exists() else 0


def test_a_finished_step_is_not_started_again(stage, capsys):
    root, command = stage
    assert fresh.main(["--", *command]) == 0 and _runs(root) == 1
    assert (root / "out" / "stage" / fresh.STAMP).is_file()
    assert fresh.main(["--", *command]) == 0 and _runs(root) == 1
    assert "up to date: out/stage" in capsys.readouterr().out


@pytest.mark.parametrize("change", ["data", "recipe", "arguments", "output", "forced"])
def test_any_change_runs_it(stage, change, monkeypatch):
    root, command = stage
    assert fresh.main(["--", *command]) == 0
    if change == "data":
        (root / "data.jsonl").write_text("two\n")
    elif change == "recipe":
        (root / "recipe.yaml").write_text((root / "recipe.yaml").read_text().replace("0.1", "0.2"))
    elif change == "arguments":
        command = [*command, "--max_steps", "5"]
    elif change == "output":
        (root / "out" / "stage" / "model.txt").unlink()  # e.g. a deleted stage_complete.json: retrain
    else:
        monkeypatch.setenv("FRESH", "0")
    assert fresh.main(["--", *command]) == 0 and _runs(root) == 2


def test_a_touched_but_identical_input_is_still_fresh(stage):
    root, command = stage
    assert fresh.main(["--", *command]) == 0
    (root / "data.jsonl").write_text("one\n")  # same bytes, new mtime: hashed again, same content
    assert fresh.main(["--", *command]) == 0 and _runs(root) == 1


def test_a_failed_run_records_nothing(stage):
    root, _ = stage
    failing = [
        sys.executable,
        "-c",
        "import sys, os; os.makedirs('out/x', exist_ok=True); sys.exit(3)",
        "--output",
        "out/x",
    ]
    assert fresh.main(["--", *failing]) == 3
    assert not (root / "out" / "x" / fresh.STAMP).exists()


def test_inputs_and_output_of_the_make_commands(stage):
    root, _ = stage
    (root / "out" / "sft").mkdir(parents=True)
    (root / "out" / "sft" / "config.json").write_text("{}")
    inputs, output = fresh.inputs_and_output(
        ["minimind", "eval", "out/sft", "--test", "data.jsonl", "--output", "out/eval/sft"]
    )
    assert inputs == ["out/sft", "data.jsonl"] and output == "out/eval/sft"
    assert fresh.stamp_path("out/pairs/dpo.jsonl") == Path("out/pairs/.dpo.jsonl.fresh.json")


def test_make_all_ends_with_the_stage_warnings(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("stage_warnings", ROOT / "scripts" / "stage_warnings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "stage_complete.json").write_text('{"warnings": []}')
    assert module.main([str(tmp_path)]) == 0 and capsys.readouterr().out == ""
    (tmp_path / "dpo").mkdir()
    warning = "dpo: validation reward margin -0.8 is negative"
    (tmp_path / "dpo" / "stage_complete.json").write_text(json.dumps({"warnings": [warning]}))
    assert module.main([str(tmp_path)]) == 0
    assert (
        "WARNING: a stage's own validation says it made the model worse:\n  - dpo: validation reward margin -0.8"
        in capsys.readouterr().out
    )
    for run in ("grpo", "grpo-control"):  # the fifth stage and its control run warn too
        (tmp_path / run).mkdir()
        (tmp_path / run / "stage_complete.json").write_text(json.dumps({"warnings": [f"{run}: reward fell"]}))
    printed = module.main([str(tmp_path)]) == 0 and capsys.readouterr().out
    assert "  - grpo: reward fell" in printed and "  - grpo-control: reward fell" in printed


def test_an_option_file_names_inputs_and_output(stage):
    root, _ = stage
    (root / "out" / "sft").mkdir(parents=True)
    (root / "pairs.yaml").write_text("model: out/sft\ninput: data.jsonl\noutput: out/pairs/dpo.jsonl\nlimit: 64\n")
    inputs, output = fresh.inputs_and_output(["python", "-m", "data_tools.preferences", "--config", "pairs.yaml"])
    assert inputs == ["pairs.yaml", "out/sft", "data.jsonl"] and output == "out/pairs/dpo.jsonl"
