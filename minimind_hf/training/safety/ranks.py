"""One decision for all processes of a run: the main process decides, every process gets the same answer.

Under ``accelerate launch`` / ``torchrun`` only the main process touches the output folder (lock, recipe,
moving a broken checkpoint aside); a refusal there must stop every process, not leave the others waiting
at a barrier for the collective timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch.distributed as dist

from .errors import RunRefused

T = TypeVar("T")

__all__ = ["is_main", "on_main_then_share", "world_size"]


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if _distributed() else 1


def is_main() -> bool:
    return not _distributed() or dist.get_rank() == 0


def on_main_then_share(fn: Callable[[], T]) -> T:
    """Run ``fn`` on the main process; its result, or its :class:`RunRefused`, reaches every process."""
    if not _distributed():
        return fn()
    outcome: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            outcome = [("ok", fn())]
        except RunRefused as err:
            outcome = [("refused", str(err))]
        except BaseException as err:  # noqa: BLE001 - the other ranks must not hang; the main re-raises below
            outcome = [("error", f"{type(err).__name__}: {err}")]
            dist.broadcast_object_list(outcome, src=0)
            raise
    dist.broadcast_object_list(outcome, src=0)
    kind, value = outcome[0]
    if kind == "refused":
        raise RunRefused(value)
    if kind == "error":
        raise RuntimeError(f"the main process failed: {value}")
    return value
