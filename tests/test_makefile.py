"""What `make` runs: a dry run (`make -n`) of the training launch."""

import os
import shutil
import subprocess

import pytest

from data_tools.preferences.__main__ import validation_path
from tests.paths import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _launch_line(*variables: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}  # nproc would follow OMP_NUM_THREADS
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "pretrain", *variables],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line for line in out.splitlines() if "accelerate launch" in line)


def _threads(line: str) -> int:
    words = line.split()
    return int(words[words.index("--num_cpu_threads_per_process") + 1])


def test_training_uses_every_core_not_accelerates_single_thread():
    """accelerate launch alone sets OMP_NUM_THREADS=1 for a config without use_cpu; make passes the cores."""
    cores = len(os.sched_getaffinity(0))
    assert _threads(_launch_line()) == cores
    assert _threads(_launch_line("NPROC=4")) == max(1, cores // 4)  # shared among the DDP processes
    assert _threads(_launch_line("THREADS=1")) == 1  # a machine shared with other jobs


def _dry_run(*targets_and_variables: str) -> list[str]:
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "-o", ".venv/bin/.installed", *targets_and_variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.replace("\\\n", " ").splitlines()  # one line per command


@pytest.mark.parametrize("scale", ["tiny", "small", "full"])
def test_each_scale_reads_its_settings_from_its_recipes_folder(scale):
    """Pairs, DPO and evaluation settings of a scale are files in recipes/<scale>/.

    The DPO recipe trains on the file that pairs.yaml writes (DPO_PAIRS=shipped: the data folder's pairs instead).
    """
    import yaml

    lines = _dry_run("dpo", "eval", f"SCALE={scale}")
    assert any(f"data_tools.preferences --config recipes/{scale}/pairs.yaml" in line for line in lines)
    dpo = next(line for line in lines if f"recipes/{scale}/dpo.yaml" in line)
    assert "--train_files" not in dpo
    pairs = yaml.safe_load((ROOT / "recipes" / scale / "pairs.yaml").read_text())
    recipe = yaml.safe_load((ROOT / "recipes" / scale / "dpo.yaml").read_text())
    assert recipe["train_files"] == [pairs["output"]]
    # DPO validates on pairs made the same way (same model, system turn, scorer) from held-out source rows
    assert pairs["validation_rows"] > 0 and recipe["validation_files"] == [str(validation_path(pairs["output"]))]
    evals = [line for line in lines if "minimind eval" in line]
    assert len(evals) == 5 and all(f"--config recipes/{scale}/eval.yaml" in line for line in evals)
    # GRPO and its control: the scale's recipe, the control in its own folder, both evaluated on finance and general
    grpo = [line for line in lines if f"recipes/{scale}/grpo.yaml" in line]
    assert len(grpo) == 2 and "--reward_control shuffled --output_dir out/grpo-control" in grpo[1]
    assert sum("out/grpo out/grpo-control" in line for line in evals) == 2
    shipped = next(line for line in _dry_run("dpo", f"SCALE={scale}", "DPO_PAIRS=shipped") if "dpo.yaml" in line)
    assert "--train_files data/" in shipped and "preferences" not in " ".join(_dry_run("dpo", "DPO_PAIRS=shipped"))
    assert "--validation_files data/" in shipped  # the shipped pairs validate on their own kind


def test_a_stage_launch_leaves_the_error_to_the_stage():
    """accelerate's --quiet: a failing stage's one-line error is not followed by accelerate's own traceback."""
    line = _launch_line()
    assert " launch --quiet " in line and " scripts/fresh.py -- " in line
