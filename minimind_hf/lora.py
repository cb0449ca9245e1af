"""LoRA as training uses it: PEFT's ``LoraConfig`` with the project's defaults, and the wrapping the runner does.

The LoRA stage (``stage: lora`` in a recipe) calls :func:`wrap_with_lora`, i.e. ``peft.get_peft_model`` with
:func:`peft_config`, whose defaults (rank 8, alpha 16, dropout 0.05, every linear projection) are the project's
only ones (:mod:`minimind_hf.lora_defaults`). The same update written out by hand, which the tests check
against PEFT, is :mod:`minimind_hf.lora_reference`; its names are also importable from here, where they
used to live.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from peft import LoraConfig, TaskType

from .lora_defaults import DEFAULT_ALPHA, DEFAULT_DROPOUT, DEFAULT_R, DEFAULT_TARGET_MODULES
from .lora_reference import *  # noqa: F403 (the hand-written reference, importable from here as before)

logger = logging.getLogger(__name__)

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
    """The ``peft.LoraConfig`` that makes ``get_peft_model`` do what :func:`apply_lora` does.

    Same defaults as :func:`apply_lora`; ``task_type`` is ``CAUSAL_LM``, no bias is trained and ``A`` is
    Kaiming-initialised (``init_lora_weights=True``). Extra keyword arguments go to ``LoraConfig``
    (for example ``modules_to_save`` or ``layers_to_transform``).
    """
    if isinstance(target_modules, str):
        raise TypeError(
            f"target_modules must be a list or tuple of module names, got the string {target_modules!r}"
        )
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
