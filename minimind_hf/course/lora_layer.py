"""The LoRA layer written out by hand: a frozen linear layer plus a low-rank update, checked against PEFT.

LoRA (Hu et al., 2021, https://arxiv.org/abs/2106.09685) freezes a linear layer ``y = W x + b`` and
learns a low-rank update next to it::

    y = W x + b + scaling * B (A dropout(x))       A: r x in,  B: out x r,  scaling = alpha / r

* ``A`` starts Kaiming-uniform (the ``nn.Linear`` default, as PEFT's ``init_lora_weights=True``) and
  ``B`` starts at zero, so a freshly wrapped model computes exactly what the base model computes.
* With rsLoRA (Kalajdzievski, 2023, https://arxiv.org/abs/2312.03732) ``scaling = alpha / sqrt(r)``,
  which keeps learning stable at large ranks, where ``alpha / r`` shrinks the update too much.
* Dropout acts on the input of the low-rank branch only; the frozen path ``W x + b`` never sees it.
* After training, ``W + scaling * B A`` can be folded into ``W`` ("merging"), so inference costs nothing
  extra; unmerging subtracts it again.

:mod:`.lora_reference` wraps a whole model with this layer, saves and merges adapters, and copies them to and
from PEFT. Its defaults are the training defaults (:mod:`minimind_hf.training.lora`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..training.lora import DEFAULT_ALPHA, DEFAULT_DROPOUT, DEFAULT_R

__all__ = ["LoRALinear"]


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``scaling * B A``.

    Args:
        base_layer: the linear layer to adapt. It is kept (not copied) as ``self.base_layer`` and its
            parameters are frozen.
        r: rank of the update; must be positive.
        alpha: numerator of the scaling factor.
        dropout: probability of dropping elements of the branch input (training mode only).
        use_rslora: scale by ``alpha / sqrt(r)`` instead of ``alpha / r``.

    Parameters ``lora_A`` (``r x in_features``) and ``lora_B`` (``out_features x r``) have the base
    weight's dtype and device. ``merged`` tells whether the update currently lives inside
    ``base_layer.weight``; while it does, ``forward`` runs the base layer alone.
    """

    def __init__(
        self,
        base_layer: nn.Linear,
        r: int = DEFAULT_R,
        alpha: float = DEFAULT_ALPHA,
        dropout: float = DEFAULT_DROPOUT,
        use_rslora: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"LoRALinear wraps nn.Linear, got {type(base_layer).__name__}")
        if not (isinstance(r, int) and r > 0):
            raise ValueError(f"LoRA rank r must be a positive integer, got {r!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1], got {dropout!r}")

        self.base_layer = base_layer
        for param in base_layer.parameters():
            param.requires_grad_(False)

        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features
        self.r = r
        self.alpha = alpha
        self.use_rslora = use_rslora
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r

        factory = {"dtype": base_layer.weight.dtype, "device": base_layer.weight.device}
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, **factory))
        self.lora_B = nn.Parameter(torch.empty(self.out_features, r, **factory))
        # Identity when p == 0, so that a dropout-free adapter consumes no random numbers.
        self.lora_dropout: nn.Module = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.reset_lora_parameters()

    @torch.no_grad()
    def reset_lora_parameters(self) -> None:
        """A: Kaiming-uniform with ``a=sqrt(5)`` (bound ``1/sqrt(in)``, as ``nn.Linear``); B: zeros."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    # Read-through to the wrapped layer, for code that inspects ``module.weight`` (dtype, device, shape).
    @property
    def weight(self) -> torch.Tensor:
        """The base layer's weight (with the update folded in while merged)."""
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        """The base layer's bias."""
        return self.base_layer.bias

    def delta_weight(self) -> torch.Tensor:
        """The update ``scaling * B @ A`` in the shape of ``base_layer.weight`` (``out x in``)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``base_layer(x) + scaling * B(A(dropout(x)))``, or ``base_layer(x)`` alone while merged."""
        result = self.base_layer(x)
        if self.merged:
            return result
        branch_input = self.lora_dropout(x.to(self.lora_A.dtype))
        update = F.linear(F.linear(branch_input, self.lora_A), self.lora_B) * self.scaling
        return (result + update).to(result.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into ``base_layer.weight``. A second call while merged does nothing."""
        if self.merged:
            return
        weight = self.base_layer.weight
        weight.add_(self.delta_weight().to(weight.dtype))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out of ``base_layer.weight``. Does nothing when not merged."""
        if not self.merged:
            return
        weight = self.base_layer.weight
        weight.sub_(self.delta_weight().to(weight.dtype))
        self.merged = False

    def extra_repr(self) -> str:
        return (
            f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:.4g}, "
            f"use_rslora={self.use_rslora}, merged={self.merged}"
        )
