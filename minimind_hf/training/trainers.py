"""The stages' trainers: ``transformers.Trainer`` and the project's DPO trainer, with the guards every stage shares."""

from __future__ import annotations

import math

import torch
from transformers import Trainer

from .dpo import MiniMindDPOTrainer
from .labelled_loss import labelled_positions_loss

__all__ = ["MiniMindTrainer", "NonFiniteLossError", "StageDPOTrainer"]


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; raised before the optimizer step applies it."""


class _StageTrainerMixin:
    """Shared by every stage's trainer: finite-loss guard, perplexity next to the validation loss, and
    checkpoints saved for inference.

    The guard costs no host sync per step where the optimizer is a fused Adam(W) (the Trainer's default) on
    one process: a device-side flag, set by the first non-finite loss and kept, is handed to the optimizer
    as ``found_inf`` -- the same mechanism ``torch.amp.GradScaler`` uses -- so that update and every later one
    is skipped on the device; the flag is read where the Trainer reads values anyway (each log line) and
    before any checkpoint or model is written, and the run stops there, naming the step. Elsewhere (other
    optimizers, several processes) the loss is checked on the host every step.
    """

    check_finite_loss: bool = True
    labelled_logits_only: bool = False  # training loss through labelled_positions_loss
    reports_perplexity: bool = True  # the validation loss is a language-model loss (not DPO's)
    _nonfinite: torch.Tensor | None = None  # device flag: a non-finite loss was seen
    _first_bad: tuple[torch.Tensor, torch.Tensor] | None = None  # (step, loss) of the first one

    def _skippable_optimizer(self):
        """The torch optimizer when it can skip an update on the device (fused Adam/AdamW, one process)."""
        inner = getattr(self.optimizer, "optimizer", self.optimizer)
        fused = isinstance(inner, (torch.optim.Adam, torch.optim.AdamW)) and all(
            group.get("fused") for group in inner.param_groups)
        return inner if fused and self.args.world_size == 1 else None

    def _nonfinite_error(self, step: int, loss: float, detected: str = "") -> NonFiniteLossError:
        return NonFiniteLossError(
            f"non-finite training loss ({loss}) at step {step} of {self.state.max_steps}{detected}; "
            "stopped before the update, no weights were written. Lower the learning rate, check the data, "
            f"or resume from the last checkpoint in {self.args.output_dir}"
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not (self.labelled_logits_only and model.training and not return_outputs and "labels" in inputs):
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        return labelled_positions_loss(model, inputs, num_items_in_batch, self.args.label_smoothing_factor)

    def training_step(self, model, inputs, *args, **kwargs):
        loss = super().training_step(model, inputs, *args, **kwargs)
        if not self.check_finite_loss:
            return loss
        step = self.state.global_step + 1
        bad = ~torch.isfinite(loss.detach()).all()
        optimizer = self._skippable_optimizer()
        if optimizer is None:
            if bad:  # one host sync per step
                raise self._nonfinite_error(step, loss.detach().float().item())
            return loss
        value = loss.detach().float().reshape(-1)[0]
        if self._nonfinite is None:
            self._nonfinite = bad.clone()
            self._first_bad = (torch.where(bad, step, 0), value)
        else:
            new = bad & ~self._nonfinite
            first_step, first_loss = self._first_bad
            self._first_bad = (torch.where(new, step, first_step), torch.where(new, value, first_loss))
            self._nonfinite = self._nonfinite | bad
        optimizer.found_inf = self._nonfinite.float()  # fused AdamW skips its update where this is 1
        return loss

    def _raise_if_nonfinite(self) -> None:
        """Read the device flag (one host sync) and stop if a non-finite loss was seen."""
        if self._nonfinite is not None and bool(self._nonfinite):
            step, loss = (int(self._first_bad[0]), float(self._first_bad[1]))
            raise self._nonfinite_error(step, loss, f" (seen at step {self.state.global_step}; the updates from "
                                                    f"step {step} on were skipped on the device)")

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save with the cache on, the inference default: the Trainer turns ``use_cache`` off to train,
        and a checkpoint saved that way would give a user's plain ``model(...)`` call no KV cache."""
        self._raise_if_nonfinite()
        config = getattr(self.model, "config", None)
        training_value = getattr(config, "use_cache", None)
        if config is not None:
            config.use_cache = True
        try:
            super().save_model(output_dir, _internal_call=_internal_call)
        finally:
            if config is not None:
                config.use_cache = training_value

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        self._raise_if_nonfinite()
        for prefix in ("eval", "test"):
            if self.reports_perplexity and f"{prefix}_loss" in logs and f"{prefix}_perplexity" not in logs:
                logs[f"{prefix}_perplexity"] = math.exp(min(logs[f"{prefix}_loss"], 50.0))
        super().log(logs, *args, **kwargs)


class MiniMindTrainer(_StageTrainerMixin, Trainer):
    """``transformers.Trainer`` for pretraining, SFT and LoRA."""


class StageDPOTrainer(_StageTrainerMixin, MiniMindDPOTrainer):
    """The project's DPO trainer with the shared guards."""

    reports_perplexity = False
