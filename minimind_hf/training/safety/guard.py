""":class:`RunGuard`: everything the stage runner does to survive real machines, behind one object.

with RunGuard(stage_args, training_args, finished_marker=COMPLETE_MARKER) as guard:
    ...                                   # writable folder, lock held, recipe checked and recorded
    guard.check_free_space(model)         # before the first step
    last = guard.resume_checkpoint()      # the newest good checkpoint (bad ones moved aside)
    trainer.add_callback(guard.signals)   # SIGTERM / SIGINT: save and stop
    ...
    guard.raise_if_stopped(trainer)       # TrainingStopped -> exit status 75
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ...utils.atomic_files import atomic_write_text
from .errors import RunRefused, TrainingStopped
from .fingerprint import RECIPE_NAME, compare, load_recipe, recipe_of
from .lock import OutputDirLock
from .preflight import check_free_space, check_writable
from .ranks import is_main, on_main_then_share, world_size
from .resume_point import CheckpointReport, list_checkpoints, select_resume_point
from .signals import StopOnSignal

logger = logging.getLogger("minimind_hf.training")

SUPERSEDED_DIR = "superseded"

__all__ = ["SUPERSEDED_DIR", "RunGuard", "load_finished"]


class RunGuard:
    """Lock, preflight, recipe check, checkpoint choice and signal handling of one stage run."""

    def __init__(self, stage_args: Any, training_args: Any, finished_marker: str):
        self.stage_args, self.training_args = stage_args, training_args
        self.output_dir = Path(training_args.output_dir)
        self.fresh_start = bool(getattr(stage_args.run, "fresh_start", False))
        self.finished_marker = finished_marker
        self.signals = StopOnSignal()
        self.resume: CheckpointReport | None = None
        self._lock: OutputDirLock | None = None
        _ = training_args.world_size  # the process group is up before any rank decides it is the main one

    # ---- entering: folder writable, lock, recipe
    def __enter__(self) -> RunGuard:
        self._folder_was_there = self.output_dir.exists()
        self._recipe_was_there = (self.output_dir / RECIPE_NAME).exists()
        on_main_then_share(lambda: check_writable(self.output_dir))
        if is_main():
            self._lock = OutputDirLock(self.output_dir)
        try:
            on_main_then_share(self._acquire_lock)
            on_main_then_share(self._check_recipe)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _acquire_lock(self) -> None:
        self._lock.acquire()

    def __exit__(self, exc_type=None, *exc) -> None:
        self.signals.uninstall()
        if self._lock is not None:
            self._lock.release()
        if exc_type is not None and is_main():
            self._undo_failed_start()

    def _undo_failed_start(self) -> None:
        """A run that failed before leaving any state (no checkpoint, not finished) leaves nothing behind.

        Not the recipe it recorded, nor the folder it created (when that holds nothing else).
        """
        if self._has_state():
            return
        if not self._recipe_was_there:
            (self.output_dir / RECIPE_NAME).unlink(missing_ok=True)
        if not self._folder_was_there:
            with contextlib.suppress(OSError):  # not empty: something else was written there; keep it
                self.output_dir.rmdir()

    def _has_state(self) -> bool:
        return bool(list_checkpoints(self.output_dir)) or (self.output_dir / self.finished_marker).exists()

    def _check_recipe(self) -> None:
        previous = load_recipe(self.output_dir)
        current = recipe_of(self.stage_args, self.training_args, world_size(), previous)
        has_state = self._has_state()
        if has_state and previous is not None and not self.fresh_start:
            refused, allowed = compare(previous, current)
            if refused:
                raise RunRefused(
                    f"{self.output_dir} holds a run of another recipe; changed since its {RECIPE_NAME} was "
                    "written:\n  " + "\n  ".join(refused) + "\nRun with --fresh_start true to start this stage "
                    f"over (its checkpoints are kept in {self.output_dir / SUPERSEDED_DIR}), or use another output_dir"
                )
            if allowed:
                logger.warning("%s: resuming with %s", self.output_dir, "; ".join(allowed))
        elif has_state and previous is None and not self.fresh_start:
            logger.warning(
                "%s has checkpoints but no %s (written by an older version): the recipe cannot be "
                "checked; recording the current one",
                self.output_dir,
                RECIPE_NAME,
            )
        if has_state and self.fresh_start:
            self._supersede()
        atomic_write_text(self.output_dir / RECIPE_NAME, _dumps(current))

    def _supersede(self) -> None:
        """Move the old run's checkpoints, marker and recipe to ``superseded/<UTC time>/`` (nothing is deleted)."""
        target = self.output_dir / SUPERSEDED_DIR / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target.mkdir(parents=True, exist_ok=True)
        moved = [
            *list_checkpoints(self.output_dir),
            self.output_dir / self.finished_marker,
            self.output_dir / RECIPE_NAME,
        ]
        for path in moved:
            if path.exists():
                shutil.move(str(path), str(target / path.name))
        logger.warning(
            "--fresh_start: the previous run of %s is kept in %s; starting from step 0", self.output_dir, target
        )

    # ---- before training
    def check_free_space(self, model) -> dict[str, int]:
        return on_main_then_share(lambda: check_free_space(self.output_dir, model, self.training_args.optim))

    def resume_checkpoint(self) -> str | None:
        """The newest good checkpoint to resume from, or ``None`` (see :func:`select_resume_point`)."""
        require_optimizer = not self.training_args.save_only_model
        self.resume = on_main_then_share(
            lambda: select_resume_point(self.output_dir, self.fresh_start, require_optimizer=require_optimizer)
        )
        return str(self.resume.path) if self.resume is not None else None

    def resume_is_finished(self) -> bool:
        """The checkpoint to resume from is already at the run's last step (a stop after the final save).

        ``Trainer`` would take one more step from it; the runner loads it instead (:func:`load_finished`).
        """
        if self.resume is None or self.resume.global_step is None:
            return False
        target = self.training_args.max_steps if self.training_args.max_steps > 0 else None
        if target is None and self.resume.num_train_epochs == self.training_args.num_train_epochs:
            target = self.resume.max_steps
        return target is not None and self.resume.global_step >= target

    # ---- after training
    def raise_if_stopped(self, trainer) -> None:
        step = self.signals.stopped_at_step
        if step is None or trainer.state.global_step >= trainer.state.max_steps:
            return  # no signal, or it came with the last step: the run finishes normally
        checkpoint = self.output_dir / f"checkpoint-{step}"
        name = self.signals.received.name if self.signals.received is not None else "a signal (on another process)"
        raise TrainingStopped(
            f"stage {self.stage_args.stage}: {name} at step {step} of {trainer.state.max_steps}; saved {checkpoint}. "
            "Run the same command again to continue from it",
            checkpoint=str(checkpoint),
            signal_name=name,
        )


def load_finished(trainer, checkpoint: str) -> None:
    """Put ``trainer`` where its training loop would have left it after the step ``checkpoint`` was saved at.

    Its weights and state, then the best checkpoint's weights when ``load_best_model_at_end``.
    """
    from transformers.trainer_callback import TrainerState

    trainer._load_from_checkpoint(checkpoint)
    trainer.state = TrainerState.load_from_json(os.path.join(checkpoint, "trainer_state.json"))
    best = trainer.state.best_model_checkpoint
    if trainer.args.load_best_model_at_end and best and os.path.isdir(best):
        trainer._load_best_model()


def _dumps(recipe: dict) -> str:
    import json

    return json.dumps(recipe, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
