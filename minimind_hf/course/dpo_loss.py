"""The course's DPO loss, ``dpo_loss(ref_probs, probs, mask, beta)``, under a name that says what it takes.

The form is COMP7607B A2's and the original MiniMind's ``train_dpo.py`` (``ref_probs`` / ``probs`` are per-token
log-probabilities): the adapter for course-style code that holds per-token log-probabilities ``[2B, T]`` with the chosen
rows first and the rejected rows second, plus a completion mask. It returns the batch-mean ``"sigmoid_norm"`` loss of
:func:`minimind_hf.training.preference_loss.dpo_loss`, i.e. the original MiniMind semantics (each row's
log-probability is the *mean* over its masked tokens, not the sum). Training does not use it; the tests check it
against TRL.
"""

from __future__ import annotations

import torch

from ..training.preference_loss import dpo_loss

__all__ = ["dpo_loss_from_token_logps"]


def dpo_loss_from_token_logps(
    ref_logps: torch.Tensor,
    logps: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Course-style DPO loss from per-token log-probabilities (the original MiniMind semantics).

    This is the course's ``dpo_loss(ref_probs, probs, mask, beta)`` (COMP7607B A2): call it with the same
    four arguments in the same order.

    ``ref_logps`` and ``logps`` are ``[2B, T]`` log-probabilities of each target token under the
    reference model and the policy; rows ``0..B-1`` are the chosen sequences and rows ``B..2B-1``
    the rejected ones, in the same pair order. ``mask`` (``[2B, T]``, 0/1 or bool, aligned with the
    log-probabilities) marks the completion tokens. Each row's log-probability is the **mean** over its
    masked tokens (sum divided by the mask length), so the result equals
    ``dpo_loss(..., loss_type="sigmoid_norm").losses.mean()`` on the summed log-probabilities.

    Returns:
        The scalar batch-mean loss.

    Raises:
        TypeError / ValueError: non-tensor inputs, mismatched or non-2-D shapes, an odd row count,
            or a row whose mask selects no token (which the original code turned into NaN).
    """
    for name, value in (("ref_logps", ref_logps), ("logps", logps), ("mask", mask)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"dpo_loss_from_token_logps: {name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() != 2:
            raise ValueError(f"dpo_loss_from_token_logps: {name} must be 2-D [2B, T], got shape {tuple(value.shape)}")
    for name, value in (("ref_logps", ref_logps), ("logps", logps)):
        if not value.is_floating_point():
            raise TypeError(f"dpo_loss_from_token_logps: {name} must be floating point, got dtype {value.dtype}")
    if ref_logps.shape != logps.shape or mask.shape != logps.shape:
        raise ValueError(
            "dpo_loss_from_token_logps: ref_logps, logps and mask must share one shape, got "
            f"{tuple(ref_logps.shape)}, {tuple(logps.shape)} and {tuple(mask.shape)}"
        )
    rows = logps.shape[0]
    if rows == 0 or rows % 2:
        raise ValueError(
            f"dpo_loss_from_token_logps: expected an even, non-zero number of rows (chosen then rejected), got {rows}"
        )
    weights = mask.to(logps.dtype)
    lengths = weights.sum(dim=1)
    if bool((lengths == 0).any()):
        row = int(torch.nonzero(lengths == 0)[0, 0])
        half = rows // 2
        which = f"chosen pair {row}" if row < half else f"rejected pair {row - half}"
        raise ValueError(f"dpo_loss_from_token_logps: mask row {row} ({which}) selects no completion token")
    policy_sums = (logps * weights).sum(dim=1)
    ref_sums = (ref_logps * weights).sum(dim=1)
    policy_chosen, policy_rejected = policy_sums.chunk(2)
    ref_chosen, ref_rejected = ref_sums.chunk(2)
    chosen_lengths, rejected_lengths = lengths.chunk(2)
    losses, _, _ = dpo_loss(
        policy_chosen,
        policy_rejected,
        ref_chosen,
        ref_rejected,
        beta=beta,
        loss_type="sigmoid_norm",
        chosen_lengths=chosen_lengths,
        rejected_lengths=rejected_lengths,
    )
    return losses.mean()
