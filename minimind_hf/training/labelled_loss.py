"""The next-token loss with the output layer computed only where a label is.

In a translation chat most tokens (system turn, instruction, English source) carry no label: they need
hidden states, so that the reply can attend to them, but not logits. A causal LM head computes a
``vocab_size``-wide row of logits for every position anyway; :func:`labelled_positions_loss` runs the
decoder stack as usual, then applies the head only to the positions whose next token is labelled. The loss
equals the model's own (the same shifted cross-entropy, normalised the same way): only the work differs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def _causal_lm(model: Any) -> Any:
    """The ``...ForCausalLM`` inside a PEFT wrapper (its LoRA layers stay in place), or the model itself."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def labelled_positions_loss(
    model: Any, inputs: dict[str, torch.Tensor], num_items_in_batch: Any = None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Shifted next-token cross-entropy over the labelled positions of ``inputs["labels"]`` (-100: none).

    The sum is divided by ``num_items_in_batch`` when given (the Trainer's count over the accumulated batch,
    as the model's own loss does), else by the number of labelled positions in this batch.
    """
    labels = inputs["labels"]
    causal_lm = _causal_lm(model)
    decoder = causal_lm.get_decoder() if hasattr(causal_lm, "get_decoder") else causal_lm.model
    hidden = decoder(
        input_ids=inputs["input_ids"],
        attention_mask=inputs.get("attention_mask"),
        position_ids=inputs.get("position_ids"),
        use_cache=False,
    ).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
    loss = F.cross_entropy(logits, targets[keep], reduction="sum", label_smoothing=label_smoothing)
    if num_items_in_batch is None:
        return loss / keep.sum().clamp(min=1)
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch
