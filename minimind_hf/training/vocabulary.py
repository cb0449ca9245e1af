"""A model trained from scratch gets the vocabulary of its tokenizer.

A preset names a vocabulary size (``llama2-42m``: the course's 32,000-piece SentencePiece model; the
MiniMind presets: the shipped 6,400-piece tokenizer). Trained with another tokenizer, the rows beyond the
tokenizer are never trained and the model later samples ids nothing can decode. So the vocabulary follows
the tokenizer that is actually used; a ``vocab_size`` given explicitly must equal it, or the run refuses,
naming both sizes.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("minimind_hf.training")

__all__ = ["vocabulary_overrides"]


def vocabulary_overrides(preset: str, overrides: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """``overrides`` with ``vocab_size`` set to the tokenizer's size.

    Raises ``ValueError`` naming both sizes when the overrides give another one.
    """
    from ..configuration_minimind import MiniMindConfig

    size = len(tokenizer)
    if "vocab_size" in overrides:
        if int(overrides["vocab_size"]) != size:
            raise ValueError(
                f"model_config_overrides gives vocab_size {overrides['vocab_size']} but the tokenizer has {size} "
                f"pieces: the vocabulary must match the tokenizer (drop vocab_size, or use a tokenizer of that size)"
            )
        return overrides
    preset_size = MiniMindConfig.from_preset(preset).vocab_size
    if preset_size != size:
        logger.info(
            "vocab_size %d follows the tokenizer (%d pieces); preset %s says %d", size, size, preset, preset_size
        )
    return {**overrides, "vocab_size": size}
