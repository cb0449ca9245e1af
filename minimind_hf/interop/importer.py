"""``minimind import``: an original MiniMind, llama2.c or original-LoRA checkpoint written as an HF checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .llama import export_llama
from .llama2c import load_llama2c
from .original import (
    _torch_load,
    config_from_original,
    detect_layout,
    import_original_lora,
    infer_minimind_config,
    load_original,
    strip_wrapper_prefixes,
)


def import_checkpoint(
    checkpoint: str | Path,
    output_dir: str | Path,
    *,
    tokenizer: str | Path | None = None,
    to: str = "minimind",
    base: str | Path | None = None,
    config: dict[str, Any] | None = None,
) -> tuple[str, Path]:
    """``minimind import``: an original checkpoint written as an HF checkpoint with its own tokenizer.

    * a llama2.c / course ``.pt`` (``model_args`` + ``model``) or a bare course-layout state dict (with
      ``config``, the ``ModelArgs`` fields);
    * a MiniMind2 or MiniMind-3 ``.pth`` (its config from ``config``, else read off the tensors);
    * an original MiniMind LoRA ``.pth`` (needs ``base``, the HF checkpoint it adapts): a PEFT adapter.

    ``tokenizer`` is a SentencePiece ``tokenizer.model`` or a tokenizer directory; it is saved next to the
    model and must fit its vocabulary. ``to="llama"`` writes a ``LlamaForCausalLM`` checkpoint instead.
    Returns ``(what was imported, output_dir)``.
    """
    from ..checkpoints import check_tokenizer_fits, load_checkpoint
    from ..tokenization import load_tokenizer, save_tokenizer

    if to not in ("minimind", "llama"):
        raise ValueError(f"--to must be minimind or llama, got {to!r}")
    output_dir = Path(output_dir)
    ck = _torch_load(checkpoint)
    state = ck["model"] if isinstance(ck.get("model"), dict) else ck
    if any(".lora.A.weight" in key for key in state):
        if base is None:
            raise ValueError(f"{checkpoint}: an original MiniMind LoRA; give --base, the checkpoint it adapts")
        if to != "minimind":
            raise ValueError("a LoRA imports as a PEFT adapter; --to llama applies to full models")
        loaded = load_checkpoint(str(base), dtype=torch.float32)
        import_original_lora(state, loaded.model, output_dir, base_name_or_path=str(base))
        save_tokenizer(loaded.tokenizer, output_dir)
        return "original MiniMind LoRA -> PEFT adapter", output_dir
    if tokenizer is None:
        raise ValueError(
            f"{checkpoint}: give --tokenizer (the tokenizer.model or tokenizer directory it was trained "
            "with); the tokenizer shipped with minimind_hf is not the original's"
        )
    if "model_args" in ck or detect_layout(strip_wrapper_prefixes(state)) == "course":
        model, what = load_llama2c(ck, config), "llama2.c / course checkpoint"
    else:
        layout = detect_layout(strip_wrapper_prefixes(state))
        model_config = config_from_original(config, layout) if config else infer_minimind_config(state, layout)
        model, what = load_original(state, model_config, layout=layout), f"{layout} checkpoint"
    tok = load_tokenizer(tokenizer)
    if str(tokenizer).endswith(".model"):
        tok.model_max_length = model.config.max_position_embeddings
    check_tokenizer_fits(model, tok)
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(tok, name)
        if value is not None:
            setattr(model.config, name, value)
    model.generation_config.bos_token_id = model.config.bos_token_id
    model.generation_config.eos_token_id = model.config.eos_token_id
    model.generation_config.pad_token_id = model.config.pad_token_id
    if to == "llama":
        export_llama(model, output_dir, tok)
        return what + " -> LlamaForCausalLM", output_dir
    model.save_pretrained(output_dir)
    save_tokenizer(tok, output_dir)
    return what + " -> MiniMindForCausalLM", output_dir
