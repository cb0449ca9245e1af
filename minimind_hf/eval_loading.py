"""Loading a checkpoint for evaluation: a full model or a PEFT adapter on its local base, plus its tokenizer."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16") from None


def _load_tokenizer_for(path: Path, base: str | None) -> Any:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from .tokenization import CHAT_TEMPLATE, load_tokenizer

    for directory in [path] + ([Path(base)] if base else []):
        if any((directory / name).is_file() for name in TOKENIZER_FILES):
            try:
                return AutoTokenizer.from_pretrained(str(directory))
            except ValueError as err:
                # e.g. saved by transformers 5 ("TokenizersBackend") and read by transformers 4 (the
                # COMET environment): the tokenizer.json itself is the same, so read it directly
                logger.warning("AutoTokenizer could not load %s (%s); reading tokenizer.json directly", directory, err)
                tokenizer = PreTrainedTokenizerFast.from_pretrained(str(directory))
                if tokenizer.chat_template is None:
                    tokenizer.chat_template = CHAT_TEMPLATE
                return tokenizer

    logger.warning("no tokenizer files in %s; using the tokenizer shipped with minimind_hf", path)
    return load_tokenizer()


def _adapter_base(adapter: Path, recorded: str | None) -> str:
    """The local base-model directory a PEFT adapter was trained on (as recorded, or relative to it)."""
    if not recorded:
        raise ValueError(f"{adapter / 'adapter_config.json'}: no base_model_name_or_path recorded")
    for candidate in (Path(recorded), adapter / recorded, adapter.parent / recorded):
        if (candidate / "config.json").is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"{adapter / 'adapter_config.json'}: base model {recorded!r} is not a local model directory "
        "(the Hub is not used for evaluation); copy the base checkpoint there or fix base_model_name_or_path"
    )


def load_for_evaluation(
    path: str | os.PathLike[str],
    device: str | None = None,
    dtype: str | torch.dtype | None = "auto",
    merge_adapter: bool = True,
) -> tuple[Any, Any, str]:
    """Load ``(model, tokenizer, kind)`` from a checkpoint directory; kind is ``model`` or ``peft-adapter``.

    A directory with ``adapter_config.json`` is a PEFT adapter: its base model is loaded from the
    path the adapter records and, with ``merge_adapter``, the adapter is merged for faster generation.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint directory {path} does not exist")
    device = device or _default_device()
    torch_dtype = _resolve_dtype(dtype, device)
    adapter_config = path / "adapter_config.json"
    if adapter_config.is_file():
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        recorded = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path")
        base = _adapter_base(path, recorded)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
        model = PeftModel.from_pretrained(model, str(path))
        if merge_adapter:
            model = model.merge_and_unload()
        kind = "peft-adapter"
    else:
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} holds neither config.json (a model) nor adapter_config.json (a PEFT adapter)"
            )
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
        base, kind = None, "model"
    model.to(device).eval()
    return model, _load_tokenizer_for(path, base), kind
