"""What `make` runs: a dry run (`make -n`) of the training launch."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _launch_line(*variables: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}  # nproc would follow OMP_NUM_THREADS
    out = subprocess.run(["make", "-n", "--no-print-directory", "pretrain", *variables], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
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


@pytest.mark.parametrize("scale", ["tiny", "small", "full"])
def test_dpo_trains_and_validates_on_generated_pairs_from_disjoint_rows(scale):
    """make pairs holds source rows out for validation pairs; make dpo validates on them, not on other data."""
    out = subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/bin/.installed", "-o", "lora", "dpo",
                          f"SCALE={scale}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    command = out.replace("\\\n", " ")
    pairs = next(line for line in command.splitlines() if "data_tools.preferences" in line).split()
    assert pairs[pairs.index("--output") + 1] == "out/pairs/dpo.jsonl" and int(pairs[pairs.index("--validation-rows") + 1]) > 0
    launch = next(line for line in command.splitlines() if "accelerate launch" in line).split()
    assert launch[launch.index("--train_files") + 1] == "out/pairs/dpo.jsonl"
    assert launch[launch.index("--validation_files") + 1] == "out/pairs/dpo.validation.jsonl"
