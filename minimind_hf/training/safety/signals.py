"""SIGTERM / SIGINT: finish the current optimizer step, save a checkpoint, stop (exit status 75).

Schedulers (Slurm, Kubernetes) send SIGTERM, wait a grace period, then SIGKILL. :class:`StopOnSignal`
is a ``TrainerCallback``: its handler only records the signal; at the end of the optimizer step it asks
the ``Trainer`` to save a checkpoint and stop, the Trainer's own save path. In a multi-process run the
processes agree on the flag at every step end (one all-reduce of one number), so all of them save and
stop at the same step even when only one got the signal. Ctrl-C twice stops at once, without a
checkpoint; a repeated SIGTERM is only logged (``torchrun`` forwards the one a process group already got,
and the scheduler's SIGKILL after its grace period is the hard stop anyway).
"""

from __future__ import annotations

import logging
import signal
import threading

import torch
import torch.distributed as dist
from transformers import TrainerCallback

logger = logging.getLogger("minimind_hf.training")

HANDLED = (signal.SIGTERM, signal.SIGINT)

__all__ = ["HANDLED", "StopOnSignal"]


class StopOnSignal(TrainerCallback):
    """Records SIGTERM / SIGINT while installed; turns it into save-and-stop at the next step end."""

    def __init__(self, signals: tuple[signal.Signals, ...] = HANDLED):
        self.signals = signals
        self.received: signal.Signals | None = None
        self.stopped_at_step: int | None = None
        self._previous: dict[signal.Signals, object] = {}

    # ---- handlers
    def install(self) -> None:
        if self._previous:
            return
        if threading.current_thread() is not threading.main_thread():
            logger.warning("not in the main thread: SIGTERM/SIGINT will not save a checkpoint")
            return
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        sig = signal.Signals(signum)
        if self.received is not None:
            if sig == signal.SIGINT:
                logger.warning("second SIGINT: stopping now, without a checkpoint")
                self.uninstall()
                signal.raise_signal(signum)
            else:  # a launcher forwarding the same SIGTERM, or a scheduler repeating it: the save is under way
                logger.warning("%s again: still saving the checkpoint", sig.name)
            return
        self.received = sig
        logger.warning(
            "%s received: finishing this optimizer step, then saving a checkpoint and stopping%s",
            sig.name,
            " (Ctrl-C again stops at once)" if sig == signal.SIGINT else "",
        )

    # ---- Trainer hooks
    def _agreed(self, args) -> bool:
        flag = self.received is not None
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            tensor = torch.tensor([1.0 if flag else 0.0], device=args.device)
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
            flag = bool(tensor.item())
        return flag

    def on_train_begin(self, args, state, control, **kwargs):
        self.install()

    def on_step_end(self, args, state, control, **kwargs):
        if self.stopped_at_step is None and self._agreed(args):
            self.stopped_at_step = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control
