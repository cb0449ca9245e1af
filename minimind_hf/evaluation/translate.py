"""Batched English -> Traditional Chinese translation with ``model.generate``.

Each source becomes the project's translation chat (:func:`minimind_hf.prompts.translation_messages`),
rendered by the chat template with the generation prompt. Prompts are sorted by length, padded on
the LEFT (so every prompt ends right where generation starts) and generated in batches; only the
new tokens are decoded, cut at the first ``<|im_end|>``.

:func:`load_test_pairs` reads the ``{"en", "zh"}`` pairs to translate; :func:`check_cached_generation`
checks, before any figure is trusted, that cached greedy generation follows the uncached model.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ..jsonl import read_jsonl
from ..prompts import translation_messages
from ..tokenization import IM_END

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


def load_test_pairs(
    path: str | os.PathLike[str], limit: int | None = None
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The first ``limit`` usable ``{"en", "zh"}`` rows of a test jsonl, and dropped rows by reason.

    Each pair keeps an ``id`` (the row's own ``id``, else ``file:line``) and its ``source`` if any.
    """
    pairs: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for line_no, row in read_jsonl(path):
        if limit is not None and len(pairs) >= limit:
            break
        where = f"{path}:{line_no}"
        if "en" not in row or "zh" not in row:
            raise ValueError(f"{where}: a test row needs 'en' and 'zh' fields (keys: {sorted(row)})")
        en, zh = row["en"], row["zh"]
        if not isinstance(en, str) or not isinstance(zh, str):
            raise ValueError(f"{where}: 'en' and 'zh' must be strings")
        if not en.strip() or not zh.strip():
            dropped["empty_en_or_zh"] += 1
            continue
        pair = {"id": str(row.get("id", where)), "en": en.strip(), "zh": zh.strip()}
        if "source" in row:
            pair["source"] = row["source"]
        pairs.append(pair)
    return pairs, dropped


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
    """Generate greedily WITH the KV cache (a left-padded batch), then score the whole result in one
    forward pass WITHOUT a cache: every generated token must be the uncached argmax at its step (up to
    ``tolerance`` in logits, for float ties). A model that drops or ignores its cache fails here — the
    silent failure an upstream rename of the cache argument once caused. Raises
    :class:`GenerationCheckError` naming the prompt and step; returns what was checked."""
    prompts = build_prompts(tokenizer, sources, system=system)
    stop_ids = _stop_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    device = next(model.parameters()).device
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "left"
    model.eval()
    try:
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, use_cache=True,
                             eos_token_id=stop_ids, pad_token_id=pad_id, temperature=None, top_p=None, top_k=None)
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
