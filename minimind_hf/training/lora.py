"""LoRA as training uses it: PEFT's ``LoraConfig`` with the project's defaults, and the wrapping the runner does.

The LoRA stage (``stage: lora`` in a recipe) calls :func:`wrap_with_lora`, i.e. ``peft.get_peft_model`` with
:func:`peft_config`, whose defaults (rank 8, alpha 16, dropout 0.05, every linear projection) are the project's
only ones: the runner's ``LoraArguments``, :func:`peft_config` and the hand-written reference
(:mod:`minimind_hf.course.lora_reference`, the same update written out by hand and checked against PEFT by the
tests) all take theirs from here.

Which layers get an adapter: :data:`DEFAULT_TARGET_MODULES` lists every linear projection of attention
and MLP (``q/k/v/o_proj``, ``gate/up/down_proj``), as is usual for LLaMA-style models. The original
MiniMind ``model_lora.py`` wrapped only *square* linear layers (``in == out``); with grouped-query
attention and a SwiGLU MLP that leaves just ``q_proj`` and ``o_proj``, and it had no ``alpha / r``
scaling and initialised ``A`` from N(0, 0.02). Pass ``target_modules=("q_proj", "o_proj")`` to get
that coverage back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from peft import LoraConfig, TaskType

logger = logging.getLogger(__name__)

#: Every linear projection of a LLaMA-style decoder layer (attention, then MLP).
DEFAULT_TARGET_MODULES: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
#: Default rank of the update ``B A``.
DEFAULT_R = 8
#: Default ``alpha``; the update is scaled by ``alpha / r`` (or ``alpha / sqrt(r)`` with rsLoRA).
DEFAULT_ALPHA = 16
#: Default dropout probability on the LoRA branch input (TRL's ``ModelConfig`` default too).
DEFAULT_DROPOUT = 0.05

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_DROPOUT",
    "DEFAULT_R",
    "DEFAULT_TARGET_MODULES",
    "peft_config",
    "wrap_with_lora",
]


def peft_config(
    r: int = DEFAULT_R,
    alpha: float = DEFAULT_ALPHA,
    dropout: float = DEFAULT_DROPOUT,
    target_modules: Iterable[str] = DEFAULT_TARGET_MODULES,
    use_rslora: bool = False,
    **kwargs,
) -> LoraConfig:
    """The ``peft.LoraConfig`` of the project's LoRA.

    What :func:`minimind_hf.course.lora_reference.apply_lora` computes by hand.

    ``task_type`` is ``CAUSAL_LM``, no bias is trained and ``A`` is
    Kaiming-initialised (``init_lora_weights=True``). Extra keyword arguments go to ``LoraConfig``
    (for example ``modules_to_save`` or ``layers_to_transform``).
    """
    if isinstance(target_modules, str):
        raise TypeError(f"target_modules must be a list or tuple of module names, got the string {target_modules!r}")
    options = dict(
        task_type=TaskType.CAUSAL_LM,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        use_rslora=use_rslora,
        bias="none",
        init_lora_weights=True,
    )
    options.update(kwargs)
    return LoraConfig(**options)


def wrap_with_lora(model: Any, **options: Any) -> Any:
    """``peft.get_peft_model(model, peft_config(**options))``, with the trainable share logged."""
    from peft import get_peft_model

    model = get_peft_model(model, peft_config(**options))
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA: %d trainable parameters of %d (%.2f%%)", trainable, total, 100 * trainable / total)
    return model
