"""Batched English -> Traditional Chinese translation with ``model.generate``.

Each source becomes the project's translation chat (:func:`minimind_hf.prompts.translation_messages`),
rendered by the chat template with the generation prompt. Prompts are sorted by length, padded on
the LEFT (so every prompt ends right where generation starts) and generated in batches; only the
new tokens are decoded, cut at the first ``<|im_end|>``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from .prompts import translation_messages

END_OF_TURN = "<|im_end|>"


def _stop_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an answer: ``<|im_end|>`` and the tokenizer's eos, if different."""
    ids = []
    for token in (END_OF_TURN, tokenizer.eos_token):
        if token is None:
            continue
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and token_id != tokenizer.unk_token_id and token_id not in ids:
            ids.append(token_id)
    if not ids:
        raise ValueError(f"translate: the tokenizer has neither {END_OF_TURN} nor an eos token to stop on")
    return ids


def build_prompts(tokenizer: Any, sources: Sequence[str], prompt_id: int = 0, system: str | None = None) -> list[str]:
    """The chat-template text that asks the model to translate each source."""
    return [
        tokenizer.apply_chat_template(
            translation_messages(src, prompt_id=prompt_id, system=system),
            add_generation_prompt=True,
            tokenize=False,
        )
        for src in sources
    ]


@torch.inference_mode()
def translate(
    model: Any,
    tokenizer: Any,
    sources: Sequence[str],
    batch_size: int = 16,
    max_new_tokens: int = 128,
    prompt_id: int = 0,
    system: str | None = None,
    num_beams: int = 1,
    do_sample: bool = False,
    show_progress: bool = True,
    **generate_kwargs: Any,
) -> list[str]:
    """Translate ``sources``; returns one string per source, in order.

    Greedy by default (``num_beams=1, do_sample=False``), so results do not depend on the batch
    size. Extra keyword arguments go to ``model.generate`` (e.g. ``temperature``, ``top_p``).
    """
    if isinstance(sources, str):
        raise TypeError("translate: pass a list of source sentences, not a single string")
    if not sources:
        return []
    prompts = build_prompts(tokenizer, sources, prompt_id=prompt_id, system=system)
    stop_ids = _stop_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]

    generation_config = copy.deepcopy(model.generation_config)
    generation_config.max_new_tokens = max_new_tokens
    generation_config.num_beams = num_beams
    generation_config.do_sample = do_sample
    generation_config.eos_token_id = stop_ids
    generation_config.pad_token_id = pad_id
    if not do_sample:  # sampling knobs left over from a checkpoint would only raise warnings
        generation_config.temperature = None
        generation_config.top_p = None
        generation_config.top_k = None
    # generation settings among the extra arguments go into the config; the rest (e.g. a
    # logits_processor) is passed to generate as is
    other_kwargs = generation_config.update(**generate_kwargs)

    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i], reverse=True)
    device = next(model.parameters()).device
    outputs: list[str] = [""] * len(prompts)
    padding_side = tokenizer.padding_side
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    try:
        progress = tqdm(total=len(prompts), desc="translate", unit="sent", disable=not show_progress)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False).to(
                device
            )
            generated = model.generate(
                input_ids=enc["input_ids"],
                attention_mask=enc["attention_mask"],
                generation_config=generation_config,
                **other_kwargs,
            )
            new_tokens = generated[:, enc["input_ids"].shape[1] :].tolist()
            for i, ids in zip(idx, new_tokens, strict=True):
                cut = next((k for k, t in enumerate(ids) if t in stop_ids), len(ids))
                outputs[i] = tokenizer.decode(ids[:cut], skip_special_tokens=True).strip()
            progress.update(len(idx))
        progress.close()
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return outputs
