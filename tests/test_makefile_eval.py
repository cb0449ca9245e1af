"""The ``make eval`` target: every stage of a comparison is evaluated with the same prompt.

``make -n`` prints the commands without running them; the commands of the ``eval`` target are read from
that dry run, so the test sees the Makefile as ``make eval`` would run it.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from tests.paths import ROOT


def _eval_commands(scale: str) -> list[list[str]]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(
        ["make", "-n", "-B", "-o", ".venv/bin/.installed", "eval", f"SCALE={scale}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commands = []
    for line in dry.replace("\\\n", " ").splitlines():  # a recipe line continued with a backslash is one command
        words = shlex.split(line)
        if "eval" in words and any(w.endswith("/minimind") for w in words):
            commands.append(words[words.index("eval") + 1 :])
    assert commands, dry
    return commands


def _checkpoints(args: list[str]) -> list[str]:
    return [a for a in args[: next((i for i, a in enumerate(args) if a.startswith("--")), len(args))]]


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_the_finance_comparison_evaluates_sft_lora_and_dpo_with_one_prompt(scale):
    commands = _eval_commands(scale)
    finance = [c for c in commands if "out/lora" in _checkpoints(c)]
    assert len(finance) == 1, commands
    (args,) = finance
    # one command, one prompt: the SFT -> LoRA -> DPO (-> GRPO and its control) gains are the stages', not a
    # prompt change
    assert _checkpoints(args) == ["out/sft", "out/lora", "out/dpo", "out/grpo", "out/grpo-control"]
    assert _option(args, "--system") == "finance" and _option(args, "--test").endswith("lora.test.jsonl")
    # any other evaluation on the finance test set is its own named row, with its own prompt recorded
    others = [c for c in commands if c is not args and (_option(c, "--test") or "").endswith("lora.test.jsonl")]
    for other in others:
        assert _option(other, "--output") != _option(args, "--output")
