"""What every generation path needs from a model and its tokenizer: where to stop, and which ids to never emit.

* **stop ids**: the tokenizer's eos (``<|im_end|>`` ends a chat turn) and ``<|endoftext|>`` (the document
  separator a base model learned in pretraining, and so what it emits when it has nothing to add): a base
  model that greedily emits ``<|endoftext|>`` ends there instead of running on through special tokens that
  decode to nothing (:func:`stop_token_ids`);
* **undecodable ids**: a model whose embedding table is larger than its tokenizer (a 32,000-row model with a
  6,400-piece tokenizer) would sample ids the tokenizer cannot decode -- text that comes out empty. Those ids
  are suppressed in the model's generation config, with a warning naming both sizes
  (:func:`fit_generation_to_tokenizer`, applied by :func:`minimind_hf.checkpoints.load_checkpoint`).
"""

from __future__ import annotations

import logging
from typing import Any

from .tokenization import ENDOFTEXT

logger = logging.getLogger(__name__)

__all__ = ["fit_generation_to_tokenizer", "stop_token_ids", "undecodable_ids"]


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The ids generation ends at: eos, then ``<|endoftext|>`` where the vocabulary has it."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    endoftext = tokenizer.get_vocab().get(ENDOFTEXT)
    if endoftext is not None and endoftext not in ids:
        ids.append(int(endoftext))
    return ids


def undecodable_ids(model_or_config: Any, tokenizer: Any) -> list[int]:
    """Ids of the model's vocabulary the tokenizer has no piece for (empty when the sizes agree)."""
    config = getattr(model_or_config, "config", model_or_config)
    return list(range(len(tokenizer), int(config.vocab_size)))


def fit_generation_to_tokenizer(model: Any, tokenizer: Any, where: str = "the model") -> list[int]:
    """Suppress, in ``model.generation_config``, the ids the tokenizer cannot decode; returns them.

    Logs a warning naming both sizes when there are any: the rows behind them were never trained with this
    tokenizer, so sampling one would only ever produce nothing.
    """
    extra = undecodable_ids(model, tokenizer)
    if extra and getattr(model, "generation_config", None) is not None:
        logger.warning(
            "%s has %d vocabulary rows but its tokenizer only %d pieces: ids %d..%d cannot be decoded "
            "and are never generated",
            where,
            model.config.vocab_size,
            len(tokenizer),
            extra[0],
            extra[-1],
        )
        suppressed = set(model.generation_config.suppress_tokens or [])
        model.generation_config.suppress_tokens = sorted(suppressed | set(extra))
    return extra
