"""Run a pipeline command unless its last successful run had the same inputs: ``make``'s skip, by content.

    python scripts/fresh.py -- .venv/bin/accelerate launch ... -m minimind_hf.train recipes/tiny/pretrain.yaml
    python scripts/fresh.py -- .venv/bin/minimind eval out/sft --test data/sample/sft.test.jsonl --output out/eval/sft

The command's **inputs** are its words and every file the command names -- a word that is an existing file or
folder, and every path value of a YAML recipe it names (``train_files``, ``model_name_or_path`` ...) -- by size
and SHA-256 (a file whose size and mtime are as recorded is not hashed again). Its **output** is the folder or
file after ``--output`` / ``--output_dir`` / ``--output-dir`` (or the recipe's ``output_dir`` / ``output``); a
checkpoint's model card, which evaluations rewrite, is neither. After the command
succeeds, ``.fresh.json`` next to the output records both; the next time, when the inputs are the same and the
output is as that run left it (every file's size and mtime), the command is not started at all: one line says
so and the status is 0. Any change -- an edited recipe or data file, a retrained previous stage, other
arguments, a deleted ``stage_complete.json`` -- runs the command, which does its own checks (a stage resumes,
or refuses a changed recipe).

Standard library and PyYAML only, so a skipped step costs a fraction of a second, not a Python start with
torch and transformers. ``FRESH=0`` in the environment always runs the command.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

STAMP = ".fresh.json"
RECORDS = frozenset({"README.md", "model_card.json"})
"""A checkpoint's model card, which ``minimind eval`` rewrites with each evaluation: a record of results, neither
an input of the next step nor a change to the checkpoint."""
OUTPUT_FLAGS = ("--output", "--output_dir", "--output-dir")
OUTPUT_KEYS = ("output_dir", "output")  # the same in a YAML recipe or option file
VERSION = 1
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(path: Path, skip: Path | None) -> list[Path]:
    """``path`` itself, or every file under the folder ``path`` except hidden ones and those under ``skip``."""
    if path.is_file():
        return [path]
    found = []
    for file in sorted(path.rglob("*")):
        if not file.is_file() or any(part.startswith(".") for part in file.relative_to(path).parts):
            continue
        if file.name in RECORDS:
            continue
        if skip is not None and (file == skip or skip in file.parents):
            continue
        found.append(file)
    return found


def _state(path: Path, skip: Path | None, known: dict[str, Any], hashed: bool) -> dict[str, Any]:
    """``{file: [size, mtime_ns, sha256 or None]}`` of everything at ``path``."""
    out: dict[str, Any] = {}
    for file in _files(path, skip):
        stat = file.stat()
        before = known.get(str(file))
        digest = None
        if hashed:
            same = before and before[0] == stat.st_size and before[1] == stat.st_mtime_ns and before[2]
            digest = before[2] if same else _sha256(file)
        out[str(file)] = [stat.st_size, stat.st_mtime_ns, digest]
    return out


def _recipe_paths(path: Path) -> tuple[list[str], str | None]:
    """``(path values, output_dir)`` of a YAML recipe: every string (or list of strings) naming an existing path."""
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return [], None
    if not isinstance(recipe, dict):
        return [], None
    paths = []
    for key, value in recipe.items():
        if key in OUTPUT_KEYS:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item and os.path.exists(item):
                paths.append(item)
    output = next((recipe[key] for key in OUTPUT_KEYS if isinstance(recipe.get(key), str)), None)
    return paths, output


def inputs_and_output(command: list[str]) -> tuple[list[str], str | None]:
    """The paths a command reads and the one it writes (see the module doc)."""
    inputs: list[str] = []
    output = None
    words = iter(enumerate(command))
    for index, word in words:
        flag, _, value = word.partition("=")
        if flag in OUTPUT_FLAGS:
            output = value or (command[index + 1] if index + 1 < len(command) else None)
            if not value:
                next(words, None)
            continue
        if word.startswith("-") or not os.path.exists(word):
            continue
        inputs.append(word)
        if word.endswith((".yaml", ".yml")) and os.path.isfile(word):
            paths, recipe_output = _recipe_paths(Path(word))
            inputs += paths
            output = output or recipe_output
    return list(dict.fromkeys(inputs)), output


def stamp_path(output: str) -> Path:
    out = Path(output)
    return out / STAMP if out.is_dir() or not out.suffix else out.with_name(f".{out.name}{STAMP}")


def _inputs_state(inputs: list[str], output: Path, known: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for path in inputs:
        state.update(_state(Path(path), output, known, hashed=True))
    return state


def _without_mtimes(state: dict[str, Any]) -> dict[str, Any]:
    return {path: [size, digest] for path, (size, _, digest) in state.items()}


def is_fresh(command: list[str]) -> tuple[bool, str]:
    """``(fresh, why not)`` for a command (see the module doc)."""
    inputs, output = inputs_and_output(command)
    if output is None:
        return False, "the command names no output"
    stamp = stamp_path(output)
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, f"no {stamp}"
    if recorded.get("version") != VERSION or recorded.get("command") != command:
        return False, "the command changed"
    out = Path(output)
    if not out.exists() or _state(out, None, {}, hashed=False) != recorded.get("output"):
        return False, f"{output} changed since that run"
    current = _inputs_state(inputs, out, recorded.get("inputs", {}))
    if _without_mtimes(current) != _without_mtimes(recorded.get("inputs", {})):
        changed = sorted(
            set(current) ^ set(recorded.get("inputs", {}))
            | {
                p
                for p in set(current) & set(recorded.get("inputs", {}))
                if _without_mtimes({p: current[p]}) != _without_mtimes({p: recorded["inputs"][p]})
            }
        )
        return False, f"inputs changed: {', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}"
    return True, ""


def record(command: list[str], inputs_state: dict[str, Any]) -> Path | None:
    """Write the stamp of a successful run (``inputs_state`` taken before it started)."""
    _, output = inputs_and_output(command)
    if output is None or not Path(output).exists():
        return None
    stamp = stamp_path(output)
    state = {
        "version": VERSION,
        "command": command,
        "inputs": inputs_state,
        "output": _state(Path(output), None, {}, hashed=False),
    }
    tmp = stamp.with_name(stamp.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, stamp)
    return stamp


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        print("usage: python scripts/fresh.py -- COMMAND [ARGS ...]", file=sys.stderr)
        return 2
    inputs, output = inputs_and_output(command)
    if os.environ.get("FRESH", "1") != "0":
        fresh, _ = is_fresh(command)
        if fresh:
            print(f"up to date: {output} (inputs unchanged since it was made; FRESH=0 runs it anyway)")
            return 0
    previous = {}
    if output is not None and stamp_path(output).is_file():
        try:
            previous = json.loads(stamp_path(output).read_text(encoding="utf-8")).get("inputs", {})
        except ValueError:
            previous = {}
    before = _inputs_state(inputs, Path(output), previous) if output is not None else {}
    status = subprocess.call(command)
    if status == 0:
        record(command, before)
    return status


if __name__ == "__main__":
    sys.exit(main())
