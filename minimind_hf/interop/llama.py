"""Llama <-> MiniMind.

A dense MiniMind *is* a Llama (RMSNorm, half-split rotary, GQA, SwiGLU, tied embeddings, no biases), so the
state dicts share every key and only the configs differ. :func:`to_llama` / :func:`from_llama` convert models;
:func:`export_llama` writes a checkpoint that Llama tooling (vLLM, llama.cpp's ``convert_hf_to_gguf.py``)
accepts. The tests use transformers' own ``LlamaForCausalLM`` as an oracle for MiniMind's logits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ..configuration_minimind import MiniMindConfig
from ..modeling_minimind import _TRANSFORMERS_V5, MiniMindForCausalLM


def minimind_to_llama_config(config: MiniMindConfig) -> LlamaConfig:
    """The ``LlamaConfig`` of a dense MiniMind (a MoE MiniMind has no Llama equivalent)."""
    if config.use_moe:
        raise ValueError("only a dense MiniMind converts to Llama; this config has use_moe=True")
    if getattr(config, "qk_norm", False):
        raise ValueError("a MiniMind with qk_norm (MiniMind-3) has no Llama equivalent; export it as MiniMind")
    rope: dict[str, Any] = {"rope_type": "default"}
    if config.rope_yarn:
        rope = {"rope_type": "yarn", **config.rope_yarn}
    common = dict(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        head_dim=config.head_dim,
        hidden_act=config.hidden_act,
        max_position_embeddings=config.max_position_embeddings,
        rms_norm_eps=config.rms_norm_eps,
        tie_word_embeddings=config.tie_word_embeddings,
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=config.dropout,
        initializer_range=config.initializer_range,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    if _TRANSFORMERS_V5:
        return LlamaConfig(rope_parameters={**rope, "rope_theta": config.rope_theta}, **common)
    return LlamaConfig(rope_theta=config.rope_theta, rope_scaling=rope if config.rope_yarn else None, **common)


def _llama_rope(config: LlamaConfig) -> tuple[float, dict | None]:
    params = getattr(config, "rope_parameters", None) or {}
    scaling = getattr(config, "rope_scaling", None) if not params else params
    theta = params.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    rope_type = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if rope_type in (None, "default"):
        return float(theta), None
    if rope_type != "yarn":
        raise ValueError(f"Llama rope type {rope_type!r} has no MiniMind equivalent (only default and yarn)")
    keys = ("factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "attention_factor")
    return float(theta), {k: scaling[k] for k in keys if scaling.get(k) is not None}


def llama_to_minimind_config(config: LlamaConfig) -> MiniMindConfig:
    """The ``MiniMindConfig`` of a Llama that fits MiniMind's shape (no biases, tied embeddings)."""
    problems = []
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        problems.append("it uses biases")
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head_dim * config.num_attention_heads != config.hidden_size:
        problems.append(f"head_dim {head_dim} x {config.num_attention_heads} heads != hidden_size {config.hidden_size}")
    if problems:
        raise ValueError("this Llama does not fit MiniMind: " + "; ".join(problems))
    theta, yarn = _llama_rope(config)
    return MiniMindConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads or config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        rms_norm_eps=config.rms_norm_eps,
        rope_theta=theta,
        rope_yarn=yarn,
        hidden_act=config.hidden_act,
        initializer_range=config.initializer_range,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id if config.pad_token_id is not None else 0,
    )


def to_llama(model: MiniMindForCausalLM) -> LlamaForCausalLM:
    """A ``LlamaForCausalLM`` with the same weights (and so the same logits) as a dense MiniMind."""
    llama = LlamaForCausalLM(minimind_to_llama_config(model.config))
    llama.load_state_dict(model.state_dict(), strict=True)
    llama.config._attn_implementation = model.config._attn_implementation
    return llama.to(model.dtype)


def from_llama(llama: LlamaForCausalLM) -> MiniMindForCausalLM:
    """The MiniMind of a Llama whose shape fits (see :func:`llama_to_minimind_config`)."""
    state = llama.state_dict()
    embed, head = state["model.embed_tokens.weight"], state.get("lm_head.weight")
    if head is not None and not torch.equal(embed, head):
        raise ValueError("this Llama has untied input/output embeddings; MiniMind ties them")
    model = MiniMindForCausalLM(llama_to_minimind_config(llama.config))
    state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
    model.load_state_dict(state, strict=False)
    missing = set(model.state_dict()) - set(state) - {"lm_head.weight"}
    if missing:
        raise ValueError(f"Llama state dict lacks {sorted(missing)[:5]}")
    return model.to(llama.dtype)


def export_llama(model: MiniMindForCausalLM, output_dir: str | Path, tokenizer=None) -> Path:
    """Write ``model`` as a Llama checkpoint (safetensors, config, tokenizer) into ``output_dir``.

    ``config.json`` also carries the classic ``rope_theta`` / ``rope_scaling`` keys, which converters
    such as llama.cpp's read.
    """
    output_dir = Path(output_dir)
    llama = to_llama(model)
    llama.save_pretrained(output_dir)
    if tokenizer is not None:
        from ..tokenization import save_tokenizer

        save_tokenizer(tokenizer, output_dir)
    config_path = output_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["rope_theta"] = model.config.rope_theta
    if model.config.rope_yarn:
        config["rope_scaling"] = {"rope_type": "yarn", "type": "yarn", **model.config.rope_yarn}
    config["architectures"] = ["LlamaForCausalLM"]
    config["model_type"] = "llama"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return output_dir
