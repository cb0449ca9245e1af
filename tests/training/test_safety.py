"""Training that survives real machines: broken checkpoints, signals, locks, changed recipes, preflight.

The runs are the tiny preset on CPU with a fixed seed, so "the same result" is checked as bit-identical
weights; the signals go to a real ``python -m minimind_hf.train`` subprocess.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from minimind_hf.data.layout import COMPLETE_MARKER
from minimind_hf.training.runner import parse_args, run
from minimind_hf.training.safety import (
    BROKEN_DIR,
    EXIT_REFUSED,
    EXIT_STOPPED,
    LOCK_NAME,
    RECIPE_NAME,
    SUPERSEDED_DIR,
    OutputDirLock,
    RunRefused,
    TrainingStopped,
    check_checkpoint,
    exit_status,
    select_resume_point,
)
from minimind_hf.training.safety.fingerprint import compare, recipe_of
from minimind_hf.training.safety.preflight import checkpoint_bytes
from tests.paths import FIXTURES, ROOT

DATA = FIXTURES / "train"
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONPATH": str(ROOT),
}


def _argv(out, *extra, steps=4, save=2):
    return [
        str(ROOT / "recipes" / "tiny" / "pretrain.yaml"),
        "--preset",
        "tiny",
        "--block_size",
        "64",
        "--train_files",
        str(DATA / "pretrain.jsonl"),
        "--validation_files",
        str(DATA / "pretrain.validation.jsonl"),
        "--output_dir",
        str(out),
        "--max_steps",
        str(steps),
        "--eval_steps",
        str(save),
        "--save_steps",
        str(save),
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
        "--disable_tqdm",
        "true",
        *extra,
    ]


def _run(out, *extra, **kw):
    return run(*parse_args(_argv(out, *extra, **kw)))


def _weights(out) -> dict:
    return load_file(str(Path(out) / "model.safetensors"))


def _assert_identical(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    worst = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)
    assert worst == 0.0, f"max abs difference {worst}"


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An uninterrupted 4-step run with checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("safety") / "reference"
    _run(out)
    return out


@pytest.fixture
def copy_of(finished, tmp_path):
    def make(name="run"):
        target = tmp_path / name
        shutil.copytree(finished, target)
        return target

    return make


def _unfinish(out: Path) -> None:
    """What a kill after the step-4 checkpoint but before the final save leaves behind."""
    for name in (COMPLETE_MARKER, "model.safetensors"):
        (out / name).unlink()


# ---- 1. a bad newest checkpoint is skipped -----------------------------------------------------------------


@pytest.mark.parametrize("damage", ["weights", "optimizer", "optimizer_crc", "state", "state_json"])
def test_each_defect_of_a_checkpoint_is_named(copy_of, damage):
    ckpt = copy_of() / "checkpoint-4"
    assert check_checkpoint(ckpt).ok
    if damage == "weights":
        _truncate(ckpt / "model.safetensors")
        expected = "model.safetensors does not load"
    elif damage == "optimizer":
        _truncate(ckpt / "optimizer.pt", 0.9)
        expected = "optimizer.pt is not a complete torch file"
    elif damage == "optimizer_crc":
        data = bytearray((ckpt / "optimizer.pt").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (ckpt / "optimizer.pt").write_bytes(bytes(data))
        expected = "fails its CRC check"
    elif damage == "state":
        (ckpt / "trainer_state.json").unlink()
        expected = "trainer_state.json is missing"
    else:
        _truncate(ckpt / "trainer_state.json")
        expected = "trainer_state.json is not readable JSON"
    report = check_checkpoint(ckpt)
    assert not report.ok and any(expected in d for d in report.defects), report.defects


def test_truncated_newest_checkpoint_is_moved_aside_and_the_run_ends_identical(finished, copy_of, caplog):
    """The measured failure.

    A kill during save leaves a truncated model.safetensors in the newest checkpoint; the rerun resumes from the
    previous one and ends bit-identical to an uninterrupted run.
    """
    out = copy_of()
    _unfinish(out)
    _truncate(out / "checkpoint-4" / "model.safetensors")
    summary = _run(out)
    assert summary["resumed_from"].endswith("checkpoint-2") and summary["global_step"] == 4
    assert (out / BROKEN_DIR / "checkpoint-4" / "model.safetensors").exists()  # kept, not deleted
    assert "checkpoint-4 is broken (model.safetensors does not load" in caplog.text
    _assert_identical(out, finished)


def test_no_good_checkpoint_refuses_unless_fresh_start(copy_of):
    out = copy_of()
    _unfinish(out)
    for step in (2, 4):
        _truncate(out / f"checkpoint-{step}" / "optimizer.pt")
    with pytest.raises(
        RunRefused,
        match=r"(?s)no checkpoint that can be resumed.*checkpoint-4: optimizer.pt.*"
        r"checkpoint-2: optimizer.pt.*--fresh_start true",
    ):
        select_resume_point(out)
    assert (out / "checkpoint-4").is_dir() and not (out / BROKEN_DIR).exists()  # nothing moved on a refusal
    assert select_resume_point(out, fresh_start=True) is None
    assert sorted(p.name for p in (out / BROKEN_DIR).iterdir()) == ["checkpoint-2", "checkpoint-4"]


def test_a_run_at_max_steps_is_finished_not_stepped_again(finished, copy_of):
    """A stop after the final checkpoint: the rerun must not take a fifth step (Trainer alone would)."""
    out = copy_of()
    _unfinish(out)
    summary = _run(out)
    assert summary["resumed_from"].endswith("checkpoint-4") and summary["global_step"] == 4
    assert not (out / "checkpoint-5").exists()
    _assert_identical(out, finished)


# ---- 2. signals ------------------------------------------------------------------------------------------


def _start(out, steps, save):
    cmd = [sys.executable, "-m", "minimind_hf.train", *_argv(out, steps=steps, save=save)]
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_steps(proc, n: int, log: list[str]) -> None:
    seen = 0
    for line in proc.stdout:
        log.append(line)
        seen += "'loss'" in line
        if seen >= n:
            return
    raise AssertionError(f"the run ended before step {n}:\n" + "".join(log[-30:]))


@pytest.fixture(scope="module")
def reference_12(tmp_path_factory):
    out = tmp_path_factory.mktemp("safety") / "reference-12"
    _run(out, steps=12, save=4)
    return out


@pytest.mark.slow
def test_sigterm_saves_stops_with_75_and_the_rerun_ends_identical(reference_12, tmp_path):
    out = tmp_path / "signalled"
    proc, log = _start(out, steps=12, save=4), []
    _wait_for_steps(proc, 2, log)
    proc.send_signal(signal.SIGTERM)
    log += proc.stdout.readlines()
    assert proc.wait(timeout=120) == EXIT_STOPPED, "".join(log[-30:])
    text = "".join(log)
    assert "SIGTERM received" in text and "Run the same command again" in text
    saved = [p.name for p in out.glob("checkpoint-*")]
    step = int(text.split("SIGTERM at step ")[1].split()[0])
    assert 2 <= step < 12 and f"checkpoint-{step}" in saved and not (out / COMPLETE_MARKER).exists()
    assert not (out / LOCK_NAME).exists()  # released on the way out
    summary = _run(out, steps=12, save=4)  # the same command again
    assert summary["resumed_from"].endswith(f"checkpoint-{step}") and summary["global_step"] == 12
    _assert_identical(out, reference_12)


@pytest.mark.slow
def test_sigkill_at_a_random_moment_then_rerun_ends_identical(reference_12, tmp_path):
    seed = int(time.time())
    delay = random.Random(seed).uniform(0.0, 1.5)
    out = tmp_path / "killed"
    proc, log = _start(out, steps=12, save=4), []  # the reference's cadence: the same best checkpoint
    _wait_for_steps(proc, 1, log)
    time.sleep(delay)
    proc.kill()
    proc.wait(timeout=60)
    try:
        summary = _run(out, steps=12, save=4)
    except RunRefused as err:  # killed while its only checkpoint was being written: start over, as asked
        assert "no checkpoint that can be resumed" in str(err), err
        summary = _run(out, "--fresh_start", "true", steps=12, save=4)
    assert summary["global_step"] == 12, f"seed {seed}, kill {delay:.2f}s after step 1"
    _assert_identical(out, reference_12)


@pytest.mark.slow
def test_sigterm_to_a_two_process_ddp_run_saves_on_both_and_the_rerun_finishes(tmp_path):
    """accelerate launch (2 gloo processes): the processes agree on the step, save one checkpoint, stop."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "recipes" / "accelerate" / "cpu_ddp.yaml"),
        "--num_processes",
        "2",
        "-m",
        "minimind_hf.train",
        *_argv(out, "--per_device_train_batch_size", "2", steps=40, save=10),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    log: list[str] = []
    _wait_for_steps(proc, 4, log)
    os.killpg(proc.pid, signal.SIGTERM)  # what a terminal's Ctrl-C or Slurm does: the whole process group
    log += proc.stdout.readlines()
    proc.wait(timeout=120)
    text = "".join(log)
    stops = sorted({int(part.split()[0]) for part in text.split("SIGTERM at step ")[1:]})
    assert len(stops) == 1 and text.count("SIGTERM at step ") == 2, text[-3000:]  # both processes, one step
    assert (out / f"checkpoint-{stops[0]}" / "trainer_state.json").exists()
    result = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / COMPLETE_MARKER).read_text())
    assert summary["resumed_from"].endswith(f"checkpoint-{stops[0]}") and summary["global_step"] == 40


def test_exit_statuses():
    def refuse():
        raise RunRefused("no")

    def stop():
        raise TrainingStopped("stopped", checkpoint="x")

    assert (exit_status(refuse), exit_status(stop), exit_status(lambda: {"ok": 1})) == (3, 75, 0)
    with pytest.raises(ValueError):
        exit_status(lambda: int("x"))  # any other error is a traceback, status 1


# ---- 3. one run per output folder -----------------------------------------------------------------------

_HOLD = (
    "import sys, time; from minimind_hf.training.safety import OutputDirLock; "
    "OutputDirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)"
)


def test_lock_refuses_a_second_holder_and_takes_over_a_dead_ones(tmp_path):
    out = tmp_path / "shared"
    with OutputDirLock(out):
        with pytest.raises(
            RunRefused,
            match=rf"{out} is in use by another run: pid {os.getpid()} on host "
            rf"{os.uname().nodename} \(since .* UTC: ",
        ):
            OutputDirLock(out).acquire()
    assert not (out / LOCK_NAME).exists()  # released
    (out / LOCK_NAME).write_text(json.dumps({"host": os.uname().nodename, "pid": 999999999, "started": 0}))
    with OutputDirLock(out) as lock:  # a lock file nobody holds: its process died
        assert lock.took_over["pid"] == 999999999


@pytest.mark.slow
def test_second_run_refused_while_the_first_lives_and_a_dead_ones_lock_is_taken_over(tmp_path):
    out = tmp_path / "shared"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunRefused, match=rf"in use by another run: pid {holder.pid} on host {os.uname().nodename}"):
            OutputDirLock(out).acquire()
        with pytest.raises(RunRefused, match=f"pid {holder.pid}"):  # the whole runner refuses, before any work
            _run(out)
        assert not list(out.glob("checkpoint-*")) and not (out / RECIPE_NAME).exists()
    finally:
        holder.kill()
        holder.wait()
    assert (out / LOCK_NAME).exists()  # SIGKILL left its lock file behind
    with OutputDirLock(out) as lock:
        assert lock.took_over["pid"] == holder.pid
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()


def test_minimind_train_returns_3_on_a_refusal(tmp_path, caplog):
    from minimind_hf.cli import main

    out = tmp_path / "locked"
    with OutputDirLock(out):
        assert main(["train", *_argv(out)]) == EXIT_REFUSED
    assert f"refused: {out} is in use by another run: pid {os.getpid()}" in caplog.text


@pytest.mark.slow
def test_lock_refusal_is_exit_status_3_from_the_command(tmp_path):
    out = tmp_path / "locked"
    with OutputDirLock(out):
        result = subprocess.run(
            [sys.executable, "-m", "minimind_hf.train", *_argv(out)],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == EXIT_REFUSED, result.stderr[-2000:]
    assert f"pid {os.getpid()}" in result.stderr


# ---- 4. a changed recipe ---------------------------------------------------------------------------------


def test_changed_data_content_preset_or_stage_refuses_listing_the_changes(tmp_path):
    data = tmp_path / "pretrain.jsonl"
    shutil.copy(DATA / "pretrain.jsonl", data)
    out = tmp_path / "run"

    def argv(*extra):
        args = _argv(out, *extra, steps=4, save=2)
        args[args.index(str(DATA / "pretrain.jsonl"))] = str(data)
        return args

    run(*parse_args(argv()))  # finished; a resume or a skip of it must see the same recipe
    with data.open("a", encoding="utf-8") as handle:  # same name, other content
        handle.write(json.dumps({"text": "one more document"}) + "\n")
    with pytest.raises(
        RunRefused,
        match=r"(?s)another recipe.*data\.train_files\[0\]\.sha256: .* -> .*"
        r"data\.train_files\[0\]\.size: \d+ -> \d+.*--fresh_start true",
    ):
        run(*parse_args(argv()))
    with pytest.raises(RunRefused, match=r"model\.preset: \"tiny\" -> \"mini\""):
        run(*parse_args(argv("--preset", "mini")))
    recorded = json.loads((out / RECIPE_NAME).read_text())
    sft = recipe_of(
        *parse_args(
            [
                str(ROOT / "recipes" / "tiny" / "sft.yaml"),
                "--output_dir",
                str(out),
                "--model_name_or_path",
                str(tmp_path),
            ]
        ),
        world_size=1,
    )
    assert any(line.startswith('stage: "pretrain" -> "sft"') for line in compare(recorded, sft)[0])
    assert (out / "checkpoint-4").is_dir() and (out / COMPLETE_MARKER).exists()  # a refusal moves nothing


def test_recipe_comparison_rules():
    recorded = {
        "stage": "sft",
        "training": {"max_steps": 100, "learning_rate": 1e-3},
        "data": {"train_files": [{"path": "a.jsonl", "size": 3, "mtime_ns": 1, "sha256": "x"}]},
    }
    touched = {**recorded, "data": {"train_files": [{"path": "a.jsonl", "size": 3, "mtime_ns": 2, "sha256": "x"}]}}
    assert compare(recorded, touched) == ([], [])  # rewritten with the same bytes: the same data
    newer = {
        **recorded,
        "training": {"max_steps": 200, "learning_rate": 1e-3},
        "data": {**recorded["data"], "system_prompt_fraction": 1.0},
    }
    assert compare(recorded, newer) == (
        [],
        ["data.system_prompt_fraction: (absent) -> 1.0", "training.max_steps: 100 -> 200"],
    )
    more = {**recorded, "data": {"train_files": recorded["data"]["train_files"] * 2}}
    assert compare(recorded, more)[0] == ["data.train_files.count: 1 -> 2"]


def test_unchanged_recipe_resumes_longer_max_steps_is_allowed_and_fresh_start_supersedes(copy_of, caplog):
    out = copy_of()
    _unfinish(out)
    summary = _run(out, steps=6)
    assert summary["resumed_from"].endswith("checkpoint-4") and summary["global_step"] == 6
    assert "resuming with training.max_steps: 4 -> 6" in caplog.text
    summary = _run(out, "--fresh_start", "true", "--learning_rate", "1e-4", steps=2)
    assert summary["resumed_from"] is None and summary["global_step"] == 2
    kept = next((out / SUPERSEDED_DIR).iterdir())
    assert {"checkpoint-6", COMPLETE_MARKER, RECIPE_NAME} <= {p.name for p in kept.iterdir()}
    assert json.loads((out / RECIPE_NAME).read_text())["training"]["learning_rate"] == 1e-4


# ---- 5. preflight ----------------------------------------------------------------------------------------


def test_unwritable_output_dir_fails_first(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RunRefused, match=r"output_dir .*a-file/out is not writable"):
        _run(blocker / "out")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "read-only"
        locked.mkdir(mode=0o500)
        with pytest.raises(RunRefused, match="not writable"):
            _run(locked / "out")


def test_too_little_disk_fails_before_the_first_step_with_the_numbers(tmp_path, monkeypatch):
    from minimind_hf.training.safety import preflight

    real = shutil.disk_usage
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: real(path)._replace(free=3 << 20))
    out = tmp_path / "full"
    with pytest.raises(
        RunRefused,
        match=r"3\.0 MiB free on its file system, but one checkpoint needs about 6\.8 MiB "
        r"\(weights 1\.9 MiB \+ optimizer state 3\.9 MiB",
    ):
        _run(out)
    assert not list(out.glob("checkpoint-*"))


def test_checkpoint_size_estimate_matches_a_saved_checkpoint(finished):
    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    estimate = checkpoint_bytes(MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")))
    ckpt = finished / "checkpoint-4"
    weights = (ckpt / "model.safetensors").stat().st_size
    optimizer = (ckpt / "optimizer.pt").stat().st_size
    total = sum(p.stat().st_size for p in ckpt.iterdir())
    assert estimate["weights"] == pytest.approx(weights, rel=0.01)
    assert estimate["optimizer"] == pytest.approx(optimizer, rel=0.02)
    assert total <= estimate["total"] <= 1.2 * total
