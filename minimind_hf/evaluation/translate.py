"""Batched English -> Traditional Chinese translation with ``model.generate``.

Each source becomes the project's translation chat (:func:`minimind_hf.prompts.translation_messages`),
rendered by the chat template with the generation prompt. Prompts are sorted by length, padded on
the LEFT (so every prompt ends right where generation starts) and generated in batches; only the
new tokens are decoded, cut at the first ``<|im_end|>``.

:func:`check_cached_generation` checks, before any figure is trusted, that cached greedy generation follows the
uncached model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from ..prompts import translation_messages
from ..tokenization import IM_END, chat_ids_batch

END_OF_TURN = IM_END


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


def build_prompts(
    tokenizer: Any, sources: Sequence[str], prompt_id: int = 0, system: str | None = None
) -> list[list[int]]:
    """The token ids of the chat that asks the model to translate each source.

    Text in a source that spells a control token stays text (:func:`minimind_hf.tokenization.chat_ids`).
    """
    return chat_ids_batch(tokenizer, [translation_messages(src, prompt_id=prompt_id, system=system) for src in sources])


def _left_padded(tokenizer: Any, rows: list[list[int]], device: Any) -> dict[str, torch.Tensor]:
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        return tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt").to(device)
    finally:
        tokenizer.padding_side = padding_side


def _generation_config(
    model: Any,
    stop_ids: list[int],
    pad_id: int,
    max_new_tokens: int,
    num_beams: int,
    do_sample: bool,
    generate_kwargs: dict[str, Any],
):
    """``(config, other kwargs)``: the checkpoint's generation config with this call's settings."""
    config = copy.deepcopy(model.generation_config)
    config.max_new_tokens = max_new_tokens
    config.num_beams = num_beams
    config.do_sample = do_sample
    config.eos_token_id = stop_ids
    config.pad_token_id = pad_id
    if not do_sample:  # sampling knobs left over from a checkpoint would only raise warnings
        config.temperature = None
        config.top_p = None
        config.top_k = None
    # generation settings among the extra arguments go into the config; the rest (e.g. a
    # logits_processor) is passed to generate as is
    other = config.update(**generate_kwargs)
    return config, other


def length_cap(source_tokens: int, ratio: float | None, max_new_tokens: int) -> int:
    """New tokens allowed for a source of ``source_tokens`` tokens.

    ``ratio`` times as many plus 8, never more than ``max_new_tokens`` (``ratio=None``: ``max_new_tokens``). A small
    model that does not stop would otherwise fill the whole budget with a loop.
    """
    if ratio is None:
        return max_new_tokens
    return max(1, min(max_new_tokens, math.ceil(ratio * source_tokens) + 8))


class _RowCaps(StoppingCriteria):
    """Per-row stop: a row is finished once it holds its own number of new tokens.

    So a short source stops at its own :func:`length_cap` whatever else shares its batch.
    """

    def __init__(self, prompt_length: int, caps: Sequence[int]):
        self.prompt_length = prompt_length
        self.caps = torch.tensor(list(caps))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return (input_ids.shape[1] - self.prompt_length) >= self.caps.to(input_ids.device)


@torch.inference_mode()
def generate_translations(
    model: Any,
    tokenizer: Any,
    sources: Sequence[str],
    batch_size: int = 16,
    max_new_tokens: int = 128,
    prompt_id: int = 0,
    system: str | None = None,
    num_beams: int = 1,
    do_sample: bool = False,
    num_return_sequences: int = 1,
    length_ratio: float | None = None,
    show_progress: bool = True,
    with_ended: bool = False,
    **generate_kwargs: Any,
) -> list[list[str]] | list[list[tuple[str, bool]]]:
    """``num_return_sequences`` translations of every source (a list per source, in order).

    With ``with_ended`` each is a ``(text, ended)`` pair, ``ended`` False where the length cap cut the answer before it
    emitted an end token.

    Prompts are sorted by length and generated in left-padded batches; with ``length_ratio`` each
    row may generate at most :func:`length_cap` of its own source (a per-row stopping criterion ends it
    there, and its tokens are cut there), so the output of a row does not depend on the batch size. Extra keyword
    arguments go to ``model.generate`` (``temperature``, ``top_p``, ``repetition_penalty``, ``no_repeat_ngram_size``,
    ...).
    """
    if isinstance(sources, str):
        raise TypeError("translate: pass a list of source sentences, not a single string")
    if not sources:
        return []
    prompts = build_prompts(tokenizer, sources, prompt_id=prompt_id, system=system)
    stop_ids = _stop_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    config, other_kwargs = _generation_config(
        model,
        stop_ids,
        pad_id,
        max_new_tokens,
        num_beams,
        do_sample,
        {**generate_kwargs, "num_return_sequences": num_return_sequences},
    )
    lengths = [len(ids) for ids in prompts]
    source_lengths = [len(ids) for ids in tokenizer(list(sources), add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i], reverse=True)
    device = next(model.parameters()).device
    outputs: list[list[str]] = [[] for _ in prompts]
    padding_side = tokenizer.padding_side
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    try:
        progress = tqdm(total=len(prompts), desc="translate", unit="sent", disable=not show_progress)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = _left_padded(tokenizer, [prompts[i] for i in idx], device)
            # one cap per generated row (each source's rows are adjacent when num_return_sequences > 1)
            caps = [
                length_cap(source_lengths[i], length_ratio, max_new_tokens)
                for i in idx
                for _ in range(num_return_sequences)
            ]
            config.max_new_tokens = max(caps)
            stopping = other_kwargs.get("stopping_criteria")
            if num_beams == 1 and min(caps) < max(caps):  # beam search keeps its rows in beams: only cut them
                stopping = StoppingCriteriaList([*(stopping or []), _RowCaps(enc["input_ids"].shape[1], caps)])
            generated = model.generate(
                input_ids=enc["input_ids"],
                attention_mask=enc["attention_mask"],
                generation_config=config,
                **{**other_kwargs, **({"stopping_criteria": stopping} if stopping is not None else {})},
            )
            new_tokens = generated[:, enc["input_ids"].shape[1] :].tolist()
            for row, ids in enumerate(new_tokens):
                ids = ids[: caps[row]]
                cut = next((k for k, t in enumerate(ids) if t in stop_ids), len(ids))
                text = tokenizer.decode(ids[:cut], skip_special_tokens=True).strip()
                outputs[idx[row // num_return_sequences]].append((text, cut < len(ids)) if with_ended else text)
            progress.update(len(idx))
        progress.close()
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return outputs


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
    length_ratio: float | None = None,
    **generate_kwargs: Any,
) -> list[str]:
    """Translate ``sources``; returns one string per source, in order.

    Greedy by default (``num_beams=1, do_sample=False``), so results do not depend on the batch
    size. ``length_ratio`` caps each translation at that multiple of its source's tokens (plus 8).
    Extra keyword arguments go to ``model.generate`` (e.g. ``temperature``, ``repetition_penalty``).
    """
    return [
        candidates[0]
        for candidates in generate_translations(
            model,
            tokenizer,
            sources,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            prompt_id=prompt_id,
            system=system,
            num_beams=num_beams,
            do_sample=do_sample,
            length_ratio=length_ratio,
            show_progress=show_progress,
            **generate_kwargs,
        )
    ]


# ------------------------------------------------------------------------------ generation check

CHECK_SOURCES = (
    "The interest rate per period.",
    "Click the button to save the document.",
    "Returns the net present value of an investment based on a series of periodic cash flows.",
    "Open the file",
)


class GenerationCheckError(RuntimeError):
    """Greedy generation with the KV cache does not follow the model's own uncached predictions."""


@torch.inference_mode()
def check_cached_generation(
    model: Any,
    tokenizer: Any,
    sources: Sequence[str] = CHECK_SOURCES,
    max_new_tokens: int = 16,
    system: str | None = None,
    tolerance: float = 1e-3,
) -> dict[str, Any]:
    """Check that generation with the KV cache gives the tokens an uncached forward pass picks.

    Generate greedily WITH the KV cache (a left-padded batch), then score the whole result in one forward pass WITHOUT a
    cache: every generated token must be the uncached argmax at its step (up to ``tolerance`` in logits, for float
    ties). A model that drops or ignores its cache fails here — the silent failure an upstream rename of the cache
    argument once caused. Raises :class:`GenerationCheckError` naming the prompt and step; returns what was checked.
    """
    prompts = build_prompts(tokenizer, sources, system=system)
    stop_ids = _stop_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    device = next(model.parameters()).device
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "left"
    model.eval()
    try:
        enc = _left_padded(tokenizer, prompts, device)
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            eos_token_id=stop_ids,
            pad_token_id=pad_id,
            temperature=None,
            top_p=None,
            top_k=None,
        )
        start = enc["input_ids"].shape[1]
        mask = torch.cat([enc["attention_mask"], torch.ones_like(out[:, start:])], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=out, attention_mask=mask, position_ids=positions, use_cache=False).logits.float()
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    checked = 0
    for row, source in enumerate(sources):
        for step, pos in enumerate(range(start, out.shape[1])):
            token = out[row, pos].item()
            scores = logits[row, pos - 1]
            gap = (scores.max() - scores[token]).item()
            if gap > tolerance:
                best = scores.argmax().item()
                raise GenerationCheckError(
                    f"cached greedy generation differs from the uncached model at step {step + 1} of the prompt "
                    f"{source!r}: generate() chose token {token} ({tokenizer.decode([token])!r}), the uncached "
                    f"forward pass prefers {best} ({tokenizer.decode([best])!r}) by {gap:.4f} logits. The KV "
                    "cache is dropped or misused: is the installed transformers newer than the model code "
                    "expects? (make test-latest reproduces it)"
                )
            checked += 1
            if token in stop_ids:
                break
    return {"prompts": len(sources), "tokens_checked": checked, "max_new_tokens": max_new_tokens, "passed": True}
