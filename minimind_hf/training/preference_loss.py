r"""The project's DPO loss on per-sequence log-probabilities (what :class:`MiniMindDPOTrainer` optimises).

With the log-ratios
``c = log pi(y_w|x) - log pi_ref(y_w|x)`` (chosen) and ``r = log pi(y_l|x) - log pi_ref(y_l|x)``
(rejected) it offers

- ``"sigmoid"``: DPO, ``-log sigmoid(beta * (c - r))`` on log-probabilities summed over the
  completion tokens. ``label_smoothing = eps > 0`` gives conservative DPO (cDPO), which assumes each
  preference label is flipped with probability ``eps``:
  ``-(1 - eps) log sigmoid(beta (c - r)) - eps log sigmoid(-beta (c - r))``.
- ``"sigmoid_norm"``: the same on length-normalised log-ratios, ``c / |y_w|`` and ``r / |y_l|`` with
  ``|y|`` the number of completion tokens (clamped to at least 1). This is TRL's ``sigmoid_norm`` and
  what the original MiniMind course code computed: it averaged each row's token log-probabilities
  over its completion mask before taking the DPO logit.
- ``"ipo"``: IPO's squared loss ``(c / |y_w| - r / |y_l| - 1 / (2 beta))^2`` on length-normalised
  log-ratios (``beta`` plays the role of the paper's tau), as TRL implements it.

It returns per-pair losses and the implicit rewards ``beta * c`` and ``beta * r`` (detached, on the
summed log-ratios for every loss type), which is what TRL logs as ``rewards/chosen`` and
``rewards/rejected``.

Why the original MiniMind's DPO loss sat at 0.693
------------------------------------------------
At step 0 the policy *is* the reference, so ``c = r = 0`` and every DPO loss starts at exactly
``log 2 = 0.6931``; it only leaves that value as fast as the policy moves away from the reference.
The original recipe moved it very little: its ``train_dpo.py`` defaulted to a learning rate of
``1e-8`` (later ``4e-8``, with a note to stay at or below ``5e-8`` to avoid forgetting), with
``beta`` 0.1-0.15, and its earlier versions also averaged the log-probabilities over the completion
length, which divides ``c - r`` by tens to hundreds of tokens. With AdamW each weight moves by about
the learning rate per step, so after a one-epoch run ``beta * (c - r)`` stays near zero and
``-log sigmoid(z) ~ log 2 - z / 2`` stays at 0.693: the model is not broken, it has barely been
trained. The project's tests train the same tiny model on the same pairs at the original 4e-8
(the loss stays within 1e-3 of log 2) and at a learning rate suited to the model (the loss falls
well below it while the reward margin grows). Length normalisation slows the loss down on its own:
in the slow test (32 pairs, 40 steps, learning rate 1e-3, beta 0.1) ``"sigmoid"`` fell from 0.693 to
0.05 while ``"sigmoid_norm"`` only reached 0.50 with a *larger* summed reward margin, because its
logit is roughly that margin divided by the completion length.
Use a learning rate that moves the policy (TRL's default is 1e-6; tiny models need more), watch
``rewards/margins`` and ``rewards/accuracies`` rather than the loss alone, and prefer ``"sigmoid"``
(summed log-ratios) unless long answers really must not dominate -- or raise ``beta`` with
``"sigmoid_norm"``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["LOSS_TYPES", "dpo_loss"]

#: Loss types understood by :func:`dpo_loss` (and so by :class:`MiniMindDPOTrainer`).
LOSS_TYPES: tuple[str, ...] = ("sigmoid", "sigmoid_norm", "ipo")


def _check_logps(name: str, value: Any, shape: torch.Size | None) -> torch.Size:
    """Validate one per-sequence log-probability tensor and return its shape."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"dpo_loss: {name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"dpo_loss: {name} must be a floating-point tensor, got dtype {value.dtype}")
    if value.dim() != 1:
        raise ValueError(
            f"dpo_loss: {name} must be 1-D (one summed log-probability per sequence), got shape {tuple(value.shape)}"
        )
    if shape is not None and value.shape != shape:
        raise ValueError(
            f"dpo_loss: {name} has shape {tuple(value.shape)} but policy_chosen_logps has shape {tuple(shape)}"
        )
    return value.shape


def _check_lengths(name: str, value: Any, shape: torch.Size) -> torch.Tensor:
    """Validate completion lengths; returns them clamped to >= 1 (as TRL does)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"dpo_loss: {name} must be a torch.Tensor of token counts, got {type(value).__name__}")
    if value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"dpo_loss: {name} must hold integer or float token counts, got dtype {value.dtype}")
    if value.shape != shape:
        raise ValueError(
            f"dpo_loss: {name} has shape {tuple(value.shape)} but the log-probabilities have shape {tuple(shape)}"
        )
    if bool((value < 0).any()):
        bad = int(torch.nonzero(value < 0)[0, 0])
        raise ValueError(f"dpo_loss: {name}[{bad}] = {value[bad].item()} is negative")
    return value.clamp(min=1)


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss for a batch of preference pairs.

    Args:
        policy_chosen_logps: ``[B]`` log-probabilities of the chosen completions under the policy,
            summed over the completion tokens.
        policy_rejected_logps: ``[B]`` the same for the rejected completions.
        ref_chosen_logps: ``[B]`` chosen log-probabilities under the reference model.
        ref_rejected_logps: ``[B]`` rejected log-probabilities under the reference model.
        beta: strength of the KL regulariser (> 0); for ``"ipo"`` it is the paper's tau.
        loss_type: one of :data:`LOSS_TYPES` -- ``"sigmoid"``, ``"sigmoid_norm"`` or ``"ipo"``.
        label_smoothing: cDPO's probability ``eps`` in ``[0, 0.5)`` that a label is flipped
            (``"sigmoid"`` and ``"sigmoid_norm"`` only).
        chosen_lengths: ``[B]`` completion-token counts of the chosen sequences; required by
            ``"sigmoid_norm"`` and ``"ipo"`` (clamped to >= 1), ignored by ``"sigmoid"``.
        rejected_lengths: ``[B]`` the same for the rejected sequences.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``[B]``: the per-pair loss (take
        ``.mean()`` for the batch loss) and the detached implicit rewards
        ``beta * (policy - ref)`` on the summed log-probabilities.

    Raises:
        TypeError: an input is not a floating tensor, or the lengths are not numeric tensors.
        ValueError: shapes disagree, ``loss_type`` is unknown, ``beta`` or ``label_smoothing`` is out
            of range, or lengths are missing where the loss type needs them.
    """
    shape = _check_logps("policy_chosen_logps", policy_chosen_logps, None)
    _check_logps("policy_rejected_logps", policy_rejected_logps, shape)
    _check_logps("ref_chosen_logps", ref_chosen_logps, shape)
    _check_logps("ref_rejected_logps", ref_rejected_logps, shape)
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"dpo_loss: unknown loss_type {loss_type!r}; expected one of {list(LOSS_TYPES)}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"dpo_loss: beta must be a finite number > 0, got {beta!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise ValueError(f"dpo_loss: label_smoothing must be a number, got {label_smoothing!r}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"dpo_loss: label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    if loss_type == "ipo" and label_smoothing != 0.0:
        raise ValueError("dpo_loss: label_smoothing is not defined for loss_type='ipo'; leave it at 0.0")

    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps

    if loss_type == "sigmoid":
        # Lengths are optional here; still refuse malformed ones rather than ignore a bug.
        if chosen_lengths is not None:
            _check_lengths("chosen_lengths", chosen_lengths, shape)
        if rejected_lengths is not None:
            _check_lengths("rejected_lengths", rejected_lengths, shape)
        chosen_scores, rejected_scores = chosen_logratios, rejected_logratios
    else:
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError(
                f"dpo_loss: loss_type={loss_type!r} normalises by completion length; "
                "pass both chosen_lengths and rejected_lengths"
            )
        chosen_len = _check_lengths("chosen_lengths", chosen_lengths, shape).to(chosen_logratios)
        rejected_len = _check_lengths("rejected_lengths", rejected_lengths, shape).to(rejected_logratios)
        chosen_scores = chosen_logratios / chosen_len
        rejected_scores = rejected_logratios / rejected_len

    delta = chosen_scores - rejected_scores
    if loss_type == "ipo":
        losses = (delta - 1.0 / (2.0 * beta)) ** 2
    else:
        losses = -F.logsigmoid(beta * delta)
        if label_smoothing > 0.0:
            losses = (1.0 - label_smoothing) * losses - label_smoothing * F.logsigmoid(-beta * delta)

    chosen_rewards = beta * chosen_logratios.detach()
    rejected_rewards = beta * rejected_logratios.detach()
    return losses, chosen_rewards, rejected_rewards
