"""llama2.c ("minllama") checkpoints.

The ``.pt`` of COMP4901B HW1, a dict of ``model_args`` and ``model`` in the course layout, their FFN width from
``multiple_of``; ``_orig_mod.`` (``torch.compile``) and ``module.`` (DDP) prefixes are removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..modeling_minimind import MiniMindForCausalLM
from .original import _torch_load, load_original


def load_llama2c(
    checkpoint: str | Path | dict[str, Any], model_args: dict[str, Any] | None = None
) -> MiniMindForCausalLM:
    """A MiniMind from a llama2.c / course ``.pt``.

    ``{"model_args": {dim, n_layers, n_heads, n_kv_heads, vocab_size, multiple_of, norm_eps, max_seq_len, ...}, "model":
    state dict}`` (or a bare state dict plus ``model_args``).
    """
    ck = checkpoint if isinstance(checkpoint, dict) else _torch_load(checkpoint)
    if "model" in ck and isinstance(ck["model"], dict):
        state, model_args = ck["model"], model_args or ck.get("model_args")
    else:
        state = ck
    if model_args is None:
        raise ValueError("a llama2.c checkpoint needs its model_args (dim, n_layers, n_heads, ...): none were found")
    if hasattr(model_args, "__dict__") and not isinstance(model_args, dict):
        model_args = vars(model_args)
    return load_original(state, dict(model_args), layout="course")
