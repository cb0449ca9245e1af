"""Conversions between MiniMind and other layouts.

* **Llama.** A dense MiniMind *is* a Llama (RMSNorm, half-split rotary, GQA, SwiGLU, tied embeddings,
  no biases), so the state dicts share every key and only the configs differ. ``to_llama`` /
  ``from_llama`` convert models; ``export_llama`` writes a checkpoint that Llama tooling (vLLM,
  llama.cpp's ``convert_hf_to_gguf.py``) accepts. The tests use transformers' own ``LlamaForCausalLM``
  as an oracle for MiniMind's logits.
* **The original MiniMind.** ``model_minimind.py`` checkpoints (MiniMind2; ``.pth`` state dicts) already
  use these key names; the older course layout (``tok_embeddings``, ``attention.wq/wk/wv/wo``,
  ``feed_forward.w1/w2/w3``, ``output``) uses complex *interleaved* rotary, so the query and key rows are
  permuted into the half-split order, as Llama conversions do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from .configuration_minimind import MiniMindConfig
from .modeling_minimind import _TRANSFORMERS_V5, MiniMindForCausalLM

# ------------------------------------------------------------------------------------------ Llama


def minimind_to_llama_config(config: MiniMindConfig) -> LlamaConfig:
    """The ``LlamaConfig`` of a dense MiniMind (a MoE MiniMind has no Llama equivalent)."""
    if config.use_moe:
        raise ValueError("only a dense MiniMind converts to Llama; this config has use_moe=True")
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
        tie_word_embeddings=True,
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
        from .tokenization import save_tokenizer

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


# ------------------------------------------------------------------------- the original MiniMind

_COURSE_RENAMES = [
    (r"^tok_embeddings\.weight$", "model.embed_tokens.weight"),
    (r"^output\.weight$", "lm_head.weight"),
    (r"^norm\.weight$", "model.norm.weight"),
    (r"^layers\.(\d+)\.attention\.wq\.weight$", r"model.layers.\1.self_attn.q_proj.weight"),
    (r"^layers\.(\d+)\.attention\.wk\.weight$", r"model.layers.\1.self_attn.k_proj.weight"),
    (r"^layers\.(\d+)\.attention\.wv\.weight$", r"model.layers.\1.self_attn.v_proj.weight"),
    (r"^layers\.(\d+)\.attention\.wo\.weight$", r"model.layers.\1.self_attn.o_proj.weight"),
    (r"^layers\.(\d+)\.attention_norm\.weight$", r"model.layers.\1.input_layernorm.weight"),
    (r"^layers\.(\d+)\.ffn_norm\.weight$", r"model.layers.\1.post_attention_layernorm.weight"),
    (r"^layers\.(\d+)\.feed_forward\.gate\.weight$", r"model.layers.\1.mlp.gate.weight"),
    (r"^layers\.(\d+)\.feed_forward\.shared_experts\.w1\.weight$", r"model.layers.\1.mlp.shared_experts.0.gate_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.shared_experts\.w2\.weight$", r"model.layers.\1.mlp.shared_experts.0.down_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.shared_experts\.w3\.weight$", r"model.layers.\1.mlp.shared_experts.0.up_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.experts\.(\d+)\.w1\.weight$", r"model.layers.\1.mlp.experts.\2.gate_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.experts\.(\d+)\.w2\.weight$", r"model.layers.\1.mlp.experts.\2.down_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.experts\.(\d+)\.w3\.weight$", r"model.layers.\1.mlp.experts.\2.up_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.w1\.weight$", r"model.layers.\1.mlp.gate_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.w2\.weight$", r"model.layers.\1.mlp.down_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.w3\.weight$", r"model.layers.\1.mlp.up_proj.weight"),
]
_IGNORED = re.compile(r"(^|\.)(pos_cis|freqs_cos|freqs_sin|mask|inv_freq)$")


def interleaved_to_half_split(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Permute q/k projection rows from interleaved rotary pairs (x0,x1),(x2,x3).. to the half-split order.

    Within each head, output rows ``[0, 1, 2, 3, ..]`` become ``[0, 2, 4, .., 1, 3, 5, ..]``, so that
    ``rotate_half`` pairs dimension ``i`` with ``i + d/2`` exactly where the complex rotary paired
    ``2i`` with ``2i + 1``.
    """
    rows, cols = weight.shape
    return weight.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def detect_layout(state_dict: dict[str, torch.Tensor]) -> str:
    """``"course"`` (wq/wk/wv/wo, interleaved rotary) or ``"minimind2"`` (model_minimind.py names)."""
    if "tok_embeddings.weight" in state_dict:
        return "course"
    if "model.embed_tokens.weight" in state_dict:
        return "minimind2"
    raise ValueError(
        "not a MiniMind checkpoint: no 'tok_embeddings.weight' (course layout) or "
        f"'model.embed_tokens.weight' (MiniMind2 layout); first keys: {list(state_dict)[:5]}"
    )


def convert_original_state_dict(
    state_dict: dict[str, torch.Tensor], config: MiniMindConfig, layout: str | None = None
) -> dict[str, torch.Tensor]:
    """Rename (and for the course layout, permute) an original MiniMind state dict to this model's keys."""
    layout = layout or detect_layout(state_dict)
    if layout == "minimind2":
        return {k: v for k, v in state_dict.items() if not _IGNORED.search(k)}
    if layout != "course":
        raise ValueError(f"unknown layout {layout!r}: expected 'course' or 'minimind2'")
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if _IGNORED.search(key):
            continue
        for pattern, target in _COURSE_RENAMES:
            if re.match(pattern, key):
                new_key = re.sub(pattern, target, key)
                break
        else:
            raise ValueError(f"course-layout checkpoint: unexpected key {key!r}")
        if new_key.endswith("q_proj.weight"):
            value = interleaved_to_half_split(value, config.num_attention_heads)
        elif new_key.endswith("k_proj.weight"):
            value = interleaved_to_half_split(value, config.num_key_value_heads)
        converted[new_key] = value
    return converted


def config_from_original(args: dict[str, Any], layout: str) -> MiniMindConfig:
    """A ``MiniMindConfig`` from the original's config fields (course ``LMConfig`` names or MiniMind2's)."""
    if layout == "course":
        mapping = {"dim": "hidden_size", "n_layers": "num_hidden_layers", "n_heads": "num_attention_heads",
                   "n_kv_heads": "num_key_value_heads", "hidden_dim": "intermediate_size", "norm_eps": "rms_norm_eps",
                   "max_seq_len": "max_position_embeddings", "rope_theta": "rope_theta"}
        kwargs = {new: args[old] for old, new in mapping.items() if args.get(old) is not None}
        kwargs.setdefault("rope_theta", 1e4)  # the course's precompute_pos_cis default
        for key in ("vocab_size", "use_moe", "n_routed_experts", "num_experts_per_tok", "norm_topk_prob",
                    "aux_loss_alpha", "seq_aux", "scoring_func", "dropout"):
            if key in args:
                kwargs[key] = args[key]
        if "n_shared_experts" in args:
            kwargs["n_shared_experts"] = 1 if args["n_shared_experts"] else 0
        return MiniMindConfig(**kwargs)
    return MiniMindConfig(**{k: v for k, v in args.items() if k not in ("flash_attn", "inference_rope_scaling")})


def load_original(
    checkpoint: str | Path | dict[str, torch.Tensor], config: MiniMindConfig | dict[str, Any] | None = None,
    layout: str | None = None,
) -> MiniMindForCausalLM:
    """A MiniMind model from an original MiniMind ``.pth`` (or an in-memory state dict).

    ``config`` is a ``MiniMindConfig`` or the original's config fields; without it the shape is read off the
    tensors (hidden size, layers, vocabulary; heads must then be given).
    """
    state = checkpoint if isinstance(checkpoint, dict) else torch.load(checkpoint, map_location="cpu", weights_only=True)
    layout = layout or detect_layout(state)
    if config is None:
        raise ValueError("load_original needs the model's config (a MiniMindConfig or the original's fields)")
    if isinstance(config, dict):
        config = config_from_original(config, layout)
    converted = convert_original_state_dict(state, config, layout)
    model = MiniMindForCausalLM(config)
    result = model.load_state_dict(converted, strict=False)
    missing = [k for k in result.missing_keys if k != "lm_head.weight"]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"checkpoint does not match the config: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    model.tie_weights()
    return model
