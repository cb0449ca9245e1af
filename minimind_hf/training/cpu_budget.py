"""Stop a training run after a budget of CPU seconds, saving checkpoints at fixed fractions of it.

The budget is the CPU time of the training process (``time.process_time()``: user + system time of every
thread of this process), counted from the first training step on, so two single-threaded runs side by side
on a shared machine each get the same budget whatever the load. Data loading in the main process
(``dataloader_num_workers: 0``) counts; tokenising before training and evaluation after it do not.

:class:`CpuBudgetCallback` asks the Trainer to save a checkpoint when ``fraction * max_cpu_seconds`` has
been spent, for each of ``fractions``, and to stop at the whole budget (the last fraction is always 1); a run
that reaches its ``max_steps`` first is saved there too, its fraction the share of the budget it spent. What
it measured at each of them -- step, CPU seconds, wall seconds, tokens seen -- goes to ``cpu_budget.json``
in the output folder; tokens seen are counted without padding unless the run counts them otherwise
(``include_num_input_tokens_seen``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ..utils.atomic_files import atomic_write_text

BUDGET_REPORT = "cpu_budget.json"
DEFAULT_FRACTIONS = (0.25, 0.5, 1.0)


def budget_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """Sorted fractions of the budget, each in (0, 1], with 1 included."""
    values = sorted({float(f) for f in fractions} | {1.0})
    if values[0] <= 0 or values[-1] > 1:
        raise ValueError(f"budget fractions must lie in (0, 1], got {list(fractions)}")
    return tuple(values)


class CpuBudgetCallback(TrainerCallback):
    """Save at each fraction of ``max_cpu_seconds`` of process CPU time and stop at the whole of it."""

    def __init__(
        self, max_cpu_seconds: float, fractions: Sequence[float] = DEFAULT_FRACTIONS, clock=time.process_time
    ) -> None:
        if max_cpu_seconds <= 0:
            raise ValueError(f"max_cpu_seconds must be positive, got {max_cpu_seconds}")
        self.max_cpu_seconds = float(max_cpu_seconds)
        self.fractions = budget_fractions(fractions)
        self.clock = clock
        self.marks: list[dict[str, Any]] = []
        self._start_cpu: float | None = None
        self._start_wall: float | None = None
        self._done: set[float] = set()

    def spent(self) -> float:
        return 0.0 if self._start_cpu is None else self.clock() - self._start_cpu

    def on_init_end(self, args, state, control, **kwargs):
        if args.include_num_input_tokens_seen in ("no", False):  # tokens seen are part of the report
            args.include_num_input_tokens_seen = "non_padding"

    def on_train_begin(self, args, state, control, **kwargs):
        self._start_cpu, self._start_wall = self.clock(), time.perf_counter()
        self.marks, self._done = [], set()

    def on_step_end(self, args, state, control, **kwargs):
        spent = self.spent()
        reached = [f for f in self.fractions if spent >= f * self.max_cpu_seconds and f not in self._done]
        if not reached and 0 < state.max_steps <= state.global_step:  # max_steps ends the run inside the budget
            reached = [round(spent / self.max_cpu_seconds, 3)]
        if not reached:
            return control
        self._done.update(reached)
        self.marks.append(
            {
                "fraction": reached[-1],  # several fractions in one step (a slow step): one checkpoint, for the last
                "step": state.global_step,
                "cpu_s": round(spent, 2),
                "wall_s": round(time.perf_counter() - self._start_wall, 2),
                "tokens_seen": int(state.num_input_tokens_seen or 0),
                "checkpoint": f"checkpoint-{state.global_step}",
            }
        )
        control.should_save = True
        if reached[-1] >= 1.0:
            control.should_training_stop = True
        self._write(args)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self._write(args)

    def _write(self, args) -> None:
        if not args.should_save:  # the main process only
            return
        report = {
            "max_cpu_seconds": self.max_cpu_seconds,
            "fractions": list(self.fractions),
            "spent_cpu_s": round(self.spent(), 2),
            "marks": self.marks,
        }
        atomic_write_text(Path(args.output_dir) / BUDGET_REPORT, json.dumps(report, indent=2) + "\n")
