"""Checks before the first step: a run that cannot save its checkpoints should fail now, not hours later.

* the output folder can be created and written (a probe file is written and removed);
* its file system has room for one checkpoint: the saved weights (all parameters, or only the trainable
  ones for a PEFT adapter) at their dtype, plus the optimizer state (AdamW keeps two float32 moments per
  trainable parameter; SGD, Adafactor and Lion are counted as one), plus 1 MiB for the small files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import RunRefused

MiB = 1 << 20
SMALL_FILES = MiB

__all__ = ["check_free_space", "check_writable", "checkpoint_bytes"]


def check_writable(output_dir: str | os.PathLike) -> None:
    folder = Path(output_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise RunRefused(
            f"output_dir {folder} is not writable ({err.strerror or err}); "
            "choose another output_dir or fix its permissions"
        ) from err


def checkpoint_bytes(model, optim: str = "adamw_torch") -> dict[str, int]:
    """Estimated bytes of one checkpoint: ``{"weights", "optimizer", "other", "total"}``."""
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    saved = trainable if getattr(model, "peft_config", None) else params
    weights = sum(p.numel() * p.element_size() for p in saved)
    name = str(getattr(optim, "value", optim)).lower()
    moments = 1 if any(kind in name for kind in ("sgd", "adafactor", "lion")) else 2  # AdamW & co.: two
    optimizer = moments * 4 * sum(p.numel() for p in trainable)
    sizes = {"weights": weights, "optimizer": optimizer, "other": SMALL_FILES}
    sizes["total"] = sum(sizes.values())
    return sizes


def check_free_space(output_dir: str | os.PathLike, model, optim: str = "adamw_torch") -> dict[str, int]:
    """Refuse when the file system of ``output_dir`` has less free space than one checkpoint needs."""
    need = checkpoint_bytes(model, optim)
    free = shutil.disk_usage(output_dir).free
    if free < need["total"]:
        raise RunRefused(
            f"output_dir {output_dir}: {free / MiB:.1f} MiB free on its file system, but one checkpoint needs "
            f"about {need['total'] / MiB:.1f} MiB (weights {need['weights'] / MiB:.1f} MiB + optimizer state "
            f"{need['optimizer'] / MiB:.1f} MiB + {need['other'] / MiB:.0f} MiB of small files); free some space "
            "or choose another output_dir"
        )
    return {**need, "free": free}
