"""Is a ``checkpoint-N/`` folder complete enough to resume from? Which one to resume from?

A kill during a save (SIGKILL, OOM, a node lost) leaves the newest checkpoint half-written: a truncated
``model.safetensors``, an ``optimizer.pt`` cut short, no ``trainer_state.json``. ``transformers`` picks
the newest folder by its step number alone and then crashes inside ``safetensors`` or ``torch.load``.
:func:`select_resume_point` checks the newest first -- the trainer state parses and names its step, the
weights and optimizer state are there, every safetensors file is fully covered by its header, every
torch file is a zip archive whose members pass their CRC-32 -- and moves a bad one aside to
``output_dir/broken-checkpoints/`` (nothing is deleted), then tries the previous one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import safe_open

from .errors import RunRefused

logger = logging.getLogger("minimind_hf.training")

BROKEN_DIR = "broken-checkpoints"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = (
    "model.safetensors",
    "adapter_model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "adapter_model.bin",
)
_TORCH_SUFFIXES = (".pt", ".pth", ".bin")

__all__ = [
    "BROKEN_DIR",
    "CheckpointReport",
    "check_checkpoint",
    "list_checkpoints",
    "move_aside",
    "select_resume_point",
]


@dataclass
class CheckpointReport:
    path: Path
    defects: list[str] = field(default_factory=list)
    global_step: int | None = None
    max_steps: int | None = None
    num_train_epochs: float | None = None

    @property
    def ok(self) -> bool:
        return not self.defects


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """``checkpoint-N`` folders of ``output_dir``, newest (highest N) first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def _check_safetensors(path: Path) -> str | None:
    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        return f"{path.name} does not load ({type(err).__name__}: {err})"
    return None


def _check_torch_file(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f"{path.name} is not a complete torch file ({err}; {path.stat().st_size} bytes)"
    if bad is not None:
        return f"{path.name}: member {bad} fails its CRC check (the file is corrupt)"
    return None


def _check_json(path: Path) -> tuple[str | None, object]:
    try:
        return None, json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"{path.name} is not readable JSON ({err})", None


def check_checkpoint(path: str | os.PathLike, require_optimizer: bool = True) -> CheckpointReport:
    """Every defect found in one checkpoint folder (an empty list: it can be resumed from)."""
    path = Path(path)
    report = CheckpointReport(path)
    state_file = path / "trainer_state.json"
    if not state_file.is_file():
        report.defects.append("trainer_state.json is missing (the save did not finish)")
    else:
        defect, state = _check_json(state_file)
        if defect:
            report.defects.append(defect)
        elif not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
            report.defects.append("trainer_state.json names no global_step")
        else:
            report.global_step, report.max_steps = state["global_step"], state.get("max_steps")
            report.num_train_epochs = state.get("num_train_epochs")
    files = sorted(p for p in path.rglob("*") if p.is_file())
    names = {p.name for p in files}
    if not names & set(_WEIGHTS) and not any(n.startswith("pytorch_model_fsdp") for n in names):
        report.defects.append("no model weights (model.safetensors or adapter_model.safetensors)")
    index = path / "model.safetensors.index.json"
    if index.is_file():
        defect, data = _check_json(index)
        shards = set((data or {}).get("weight_map", {}).values()) if not defect else set()
        missing = [f"shard {s} is missing" for s in sorted(shards) if not (path / s).is_file()]
        report.defects += [defect] if defect else missing
    has_optimizer = (
        any(n in ("optimizer.pt", "optimizer.bin") or n.endswith("-optimizer.pt") for n in names)
        or any(
            p.is_dir() and (p.name.startswith("optimizer") or p.name.startswith("global_step")) for p in path.iterdir()
        )
        if path.is_dir()
        else False
    )
    if require_optimizer and not has_optimizer:
        report.defects.append("no optimizer state (optimizer.pt)")
    for file in files:
        if file.name.startswith(".") or file == state_file:
            continue
        if file.suffix == ".safetensors":
            defect = _check_safetensors(file)
        elif file.suffix in _TORCH_SUFFIXES and file.name != "training_args.bin":
            defect = _check_torch_file(file)
        elif file.suffix == ".json":
            defect = _check_json(file)[0]
        else:
            continue
        if defect:
            report.defects.append(defect)
    return report


def move_aside(path: Path, output_dir: Path) -> Path:
    """Move a broken checkpoint to ``output_dir/broken-checkpoints/`` (a timestamp added if the name is taken)."""
    target_dir = output_dir / BROKEN_DIR
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    if target.exists():
        target = target_dir / f"{path.name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
    shutil.move(str(path), str(target))
    return target


def select_resume_point(
    output_dir: str | os.PathLike, fresh_start: bool = False, require_optimizer: bool = True
) -> CheckpointReport | None:
    """The newest good checkpoint of ``output_dir`` (``None``: there is none, start from step 0).

    Bad ones newer than it are named in a warning and moved aside. When folders were found but none is
    good, nothing is moved and the run is refused -- unless ``fresh_start``, the user's word that
    starting over is right (then they are moved aside too).
    """
    output_dir = Path(output_dir)
    bad: list[CheckpointReport] = []
    good = None
    for folder in list_checkpoints(output_dir):
        report = check_checkpoint(folder, require_optimizer=require_optimizer)
        if report.ok:
            good = report
            break
        bad.append(report)
    found = [f"{r.path.name}: {'; '.join(r.defects)}" for r in bad]
    if bad and good is None and not fresh_start:
        raise RunRefused(
            f"{output_dir} holds no checkpoint that can be resumed from; found:\n  "
            + "\n  ".join(found)
            + f"\nRun again with --fresh_start true to move them to {output_dir / BROKEN_DIR} and start this "
            "stage from step 0"
        )
    for report in bad:
        moved = move_aside(report.path, output_dir)
        logger.warning("checkpoint %s is broken (%s); moved it to %s", report.path, "; ".join(report.defects), moved)
    if bad and good is not None:
        logger.warning("resuming from %s, the newest good checkpoint", good.path)
    elif bad:
        logger.warning("no good checkpoint in %s; starting from step 0 as --fresh_start asks", output_dir)
    return good
