"""The stages' trainers.

``transformers.Trainer`` and the project's DPO and GRPO trainers, with the guards every stage shares.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from transformers import Trainer

from ..checkpoints import ADAPTER_CONFIG, record_adapter_base
from .dpo import MiniMindDPOTrainer
from .grpo import MiniMindGRPOTrainer
from .labelled_loss import labelled_positions_loss

__all__ = ["MiniMindTrainer", "NonFiniteLossError", "StageDPOTrainer", "StageGRPOTrainer"]


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; raised before the optimizer step applies it."""


class _StageTrainerMixin:
    """Shared by every stage's trainer.

    Finite-loss guard, perplexity next to the validation loss, and checkpoints saved for inference.

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
            group.get("fused") for group in inner.param_groups
        )
        return inner if fused and self.args.world_size == 1 else None

    def _nonfinite_error(self, step: int, loss: float, detected: str = "") -> NonFiniteLossError:
        return NonFiniteLossError(
            f"non-finite training loss ({loss}) at step {step} of {self.state.max_steps}{detected}; "
            "stopped before the update, no weights were written. Lower the learning rate, check the data, "
            f"or resume from the last checkpoint in {self.args.output_dir}"
        )

    def _uses_labelled_loss(self, model, inputs, return_outputs: bool) -> bool:
        return bool(self.labelled_logits_only and model.training and not return_outputs and "labels" in inputs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self._uses_labelled_loss(model, inputs, return_outputs):
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
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
            raise self._nonfinite_error(
                step,
                loss,
                f" (seen at step {self.state.global_step}; the updates from step {step} on were skipped on the device)",
            )

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save with the cache on, the inference default.

        The Trainer turns ``use_cache`` off to train, and a checkpoint saved that way would give a user's plain
        ``model(...)`` call no KV cache.
        """
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
        self._record_adapter_base(Path(output_dir or self.args.output_dir))

    def _record_adapter_base(self, output_dir: Path) -> None:
        """Save beside an adapter the fingerprint of the base it was trained on (``adapter_base.json``).

        So loading it on another model of the same shape is refused (:mod:`minimind_hf.checkpoints`).
        """
        if not self.args.should_save or not (output_dir / ADAPTER_CONFIG).is_file():
            return
        recorded = json.loads((output_dir / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
        base = Path(recorded) if recorded and (Path(recorded) / "config.json").is_file() else None
        record_adapter_base(output_dir, base=base)  # base None: found from the adapter as the loader finds it

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        self._raise_if_nonfinite()
        for prefix in ("eval", "test"):
            if self.reports_perplexity and f"{prefix}_loss" in logs and f"{prefix}_perplexity" not in logs:
                logs[f"{prefix}_perplexity"] = math.exp(min(logs[f"{prefix}_loss"], 50.0))
        super().log(logs, *args, **kwargs)


class MiniMindTrainer(_StageTrainerMixin, Trainer):
    """``transformers.Trainer`` for pretraining, SFT and LoRA, with the MoE balance loss weighted as configured.

    MiniMind's forward adds the MoE balance loss (a per-batch mean, weighted by ``aux_loss_alpha``) to the
    cross-entropy, as transformers' Mixtral and Qwen-MoE add theirs. Its ``**kwargs`` take ``num_items_in_batch``,
    so the Trainer treats the whole loss as normalised over the accumulated, all-process batch: it does not
    divide it by the gradient accumulation steps and, with ``average_tokens_across_devices``, multiplies it by the
    process count. Right for the cross-entropy (a token sum over that count), that would weight the balance loss
    by accumulation steps x processes. :meth:`compute_loss` corrects the balance term alone, so that after
    accumulation and DDP's gradient average it counts once per optimizer step, as on one process without
    accumulation.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self._uses_labelled_loss(model, inputs, return_outputs):  # a dense model (the runner refuses MoE here)
            return labelled_positions_loss(model, inputs, num_items_in_batch, self.args.label_smoothing_factor)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        aux = outputs.get("aux_loss") if isinstance(outputs, dict) else None
        if (
            aux is not None
            and model.training
            and aux.requires_grad
            and outputs.get("loss") is not None
            and self.label_smoother is None
            and self.compute_loss_func is None
        ):  # the model's loss holds aux
            applied, wanted = self._balance_loss_weights(num_items_in_batch)
            if applied != wanted:
                loss = loss + (wanted - applied) * aux.to(loss.device)
        return (loss, outputs) if return_outputs else loss

    def _balance_loss_weights(self, num_items_in_batch) -> tuple[float, float]:
        """``(applied, wanted)``: the factor on the model's loss, and the one the balance loss needs.

        ``applied`` is the factor the Trainer puts on the model's loss in :meth:`compute_loss`; ``wanted`` is ``1 /
        accumulation steps`` where ``training_step`` will not divide the loss by them, else 1.
        """
        by_items = self.model_accepts_loss_kwargs and num_items_in_batch is not None
        applied = 1.0
        if self.args.average_tokens_across_devices and by_items:  # as Trainer.compute_loss scales it
            tp_size = self.get_tp_size() if hasattr(self, "get_tp_size") else 1
            applied = float(self.accelerator.num_processes // tp_size if self.args.n_gpu <= 1 else self.args.n_gpu)
        scaled_for_ga = getattr(self, "loss_is_scaled_for_ga", None)
        if scaled_for_ga is None:  # as Trainer.training_step decides it
            scaled_for_ga = by_items
        steps = getattr(self, "current_gradient_accumulation_steps", None) or self.args.gradient_accumulation_steps
        return applied, (1.0 / steps if scaled_for_ga else 1.0)


class StageDPOTrainer(_StageTrainerMixin, MiniMindDPOTrainer):
    """The project's DPO trainer with the shared guards."""

    reports_perplexity = False


class StageGRPOTrainer(_StageTrainerMixin, MiniMindGRPOTrainer):
    """The project's GRPO trainer (rewards from the recipe) with the shared guards."""

    reports_perplexity = False
