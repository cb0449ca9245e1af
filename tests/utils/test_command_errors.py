"""Routine mistakes end in one or two lines and a non-zero status, not a traceback.

--debug / MINIMIND_DEBUG=1 show the traceback.
"""

import json
import os
import subprocess
import sys

import pytest

from minimind_hf.cli import main as minimind
from minimind_hf.utils.command_errors import EXIT_ERROR, one_line_errors
from tests.paths import FIXTURES, ROOT


def _run(*argv, env=None, cwd=ROOT):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    if "MINIMIND_DEBUG" not in (env or {}):
        environment.pop("MINIMIND_DEBUG", None)
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=environment, cwd=cwd, timeout=300
    )


def test_the_decorator_gives_one_line_and_debug_gives_the_traceback(capsys, monkeypatch):
    @one_line_errors("prog")
    def main(argv=None):
        raise FileNotFoundError(2, "No such file or directory", "data/x.jsonl")

    monkeypatch.delenv("MINIMIND_DEBUG", raising=False)
    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "prog: error: No such file or directory: data/x.jsonl",
        "prog: (run with --debug or MINIMIND_DEBUG=1 for the traceback)",
    ]
    with pytest.raises(FileNotFoundError):
        main(["--debug"])
    monkeypatch.setenv("MINIMIND_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main([])


def test_a_bug_keeps_its_traceback():
    @one_line_errors("prog")
    def main(argv=None):
        raise KeyError("a bug, not an input error")

    with pytest.raises(KeyError):
        main([])


def test_minimind_on_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert minimind(["info", str(tmp_path / "nothing")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"minimind: error: checkpoint {tmp_path / 'nothing'} does not exist" in err


def test_minimind_train_with_a_missing_recipe_or_an_unknown_key(tmp_path, capsys):
    assert minimind(["train", str(tmp_path / "missing.yaml")]) == EXIT_ERROR
    assert "missing.yaml" in capsys.readouterr().err
    recipe = tmp_path / "typo.yaml"
    recipe.write_text((ROOT / "recipes" / "tiny" / "pretrain.yaml").read_text() + "learning_rat: 0.1\n")
    assert minimind(["train", str(recipe)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unknown recipe keys ['learning_rat']" in err


def test_a_broken_jsonl_line_is_one_line_naming_file_and_line(tmp_path, saved_tiny, capsys):
    data = tmp_path / "test.jsonl"
    data.write_text(json.dumps({"en": "a", "zh": "b"}) + "\n" + '{"en": "unterminated\n', encoding="utf-8")
    assert minimind(["eval", str(saved_tiny), "--test", str(data), "--output", str(tmp_path / "eval")]) != 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("minimind")]
    assert 1 <= len(lines) <= 2 and f"{data}:2: not valid JSON (Invalid control character at column 21)" in lines[0]


def test_the_web_pipeline_fails_before_reading_when_its_output_cannot_be_written(tmp_path, capsys):
    from data_tools.web.__main__ import main as web

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    warc = FIXTURES / "warc" / "iana-subset.warc.gz"
    assert web(["--warc", str(warc), "--output", str(blocker / "out.jsonl"), "--no-progress"]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert "records processed" not in captured.out
    assert captured.err.startswith("python -m data_tools.web: error: ") and str(blocker) in captured.err


def test_topic_dedup_runs_without_a_runtime_warning(tmp_path):
    """The package no longer imports the module that ``python -m data_tools.web.dedup`` runs."""
    topics = tmp_path / "topics.json"
    topics.write_text(json.dumps({"data": [{"text": "a b c"}, {"text": "a b c"}]}))
    result = _run("-W", "error::RuntimeWarning", "-m", "data_tools.web.dedup", str(topics))
    assert result.returncode == 0, result.stderr
    assert "found in sys.modules" not in result.stderr and "after dedup 1" in result.stderr


def test_minimind_train_help_lists_the_recipe_keys(capsys):
    assert minimind(["train", "--help"]) == 0
    out = capsys.readouterr().out
    for key in ("train_files", "model_name_or_path", "lora_r", "fresh_start", "max_length", "DPOConfig"):
        assert key in out
    assert minimind(["train"]) == 2 and "train_files" in capsys.readouterr().out


def test_the_stage_runner_module_ends_a_missing_recipe_in_one_line(tmp_path):
    result = _run("-m", "minimind_hf.train", str(tmp_path / "missing.yaml"))
    assert result.returncode == EXIT_ERROR and "Traceback" not in result.stderr
    missing = tmp_path / "missing.yaml"
    assert f"python -m minimind_hf.train: error: No such file or directory: {missing}" in result.stderr
