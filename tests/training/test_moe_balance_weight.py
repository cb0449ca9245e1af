"""The MoE balance loss keeps its weight (``aux_loss_alpha``) whatever the accumulation and process count.

The Trainer treats a model loss that takes ``num_items_in_batch`` as already normalised over the whole
accumulated, all-process batch: it does not divide it by the accumulation steps and multiplies it by the
process count (``average_tokens_across_devices``). That is right for the cross-entropy, a token sum over that
count; the balance loss MiniMind adds is a per-batch mean, so without a correction it is summed over the
micro-batches and multiplied by the processes. The balance gradient is isolated as the difference between
the same step with ``aux_loss_alpha`` on and off (the forward pass is the same; only the loss differs).
"""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback, TrainingArguments

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.training.trainers import MiniMindTrainer

ROUTER = "model.layers.0.mlp.gate.weight"


class _Grads(TrainerCallback):
    """The accumulated gradients at the optimizer step (before the update clears them)."""

    def __init__(self):
        self.grads = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _model(alpha: float) -> MiniMindForCausalLM:
    torch.manual_seed(0)
    return MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe", aux_loss_alpha=alpha))


def _rows() -> Dataset:
    torch.manual_seed(1)
    ids = torch.randint(10, 500, (24,)).tolist()
    return Dataset.from_list([{"input_ids": ids, "labels": ids}] * 2)  # two equal rows: one batch of 2 = 2 of 1


def _step_grads(tmp_path, alpha: float, accumulation: int) -> dict[str, torch.Tensor]:
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2 // accumulation,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        learning_rate=1e-3,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    recorder = _Grads()
    trainer = MiniMindTrainer(model=_model(alpha), args=args, train_dataset=_rows(), callbacks=[recorder])
    trainer.train()
    return recorder.grads


def test_balance_gradient_does_not_depend_on_gradient_accumulation(tmp_path):
    one, two = _step_grads(tmp_path, 0.1, 1), _step_grads(tmp_path, 0.1, 2)
    one_ce, two_ce = _step_grads(tmp_path, 0.0, 1), _step_grads(tmp_path, 0.0, 2)
    torch.testing.assert_close(two_ce[ROUTER], one_ce[ROUTER])  # the cross-entropy part agrees already
    balance_one, balance_two = one[ROUTER] - one_ce[ROUTER], two[ROUTER] - two_ce[ROUTER]
    assert balance_one.abs().max() > 1e-6  # the balance loss has a gradient to compare
    ratio = (balance_two.norm() / balance_one.norm()).item()
    assert ratio == pytest.approx(1.0, rel=1e-3), f"GA 2 weights the balance loss {ratio:.3f}x"
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-3, atol=1e-5, msg=name)  # summation order differs


def test_balance_loss_is_not_multiplied_by_the_process_count(tmp_path, monkeypatch):
    """Two processes simulated.

    The Trainer multiplies the loss by ``num_processes`` (DDP then averages the gradients); the balance term of one
    process must stay what it is on one process.
    """
    from accelerate import Accelerator

    rows = _rows()
    batch = {"input_ids": torch.tensor(rows["input_ids"]), "labels": torch.tensor(rows["labels"])}
    items = torch.tensor(int((batch["labels"][:, 1:] != -100).sum()))

    def balance_term(processes: int) -> float:
        losses = []
        for alpha in (0.1, 0.0):
            args = TrainingArguments(
                output_dir=str(tmp_path), report_to="none", use_cpu=True, average_tokens_across_devices=True
            )
            trainer = MiniMindTrainer(model=_model(alpha).train(), args=args)
            with monkeypatch.context() as patch:
                patch.setattr(Accelerator, "num_processes", property(lambda self: processes))
                losses.append(trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=items * processes))
        return (losses[0] - losses[1]).item()

    single, double = balance_term(1), balance_term(2)
    assert single > 0
    assert double == pytest.approx(single, rel=1e-4), f"2 processes weight the balance loss {double / single:.3f}x"
