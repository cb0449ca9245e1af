"""MiniMind: a small LLaMA-style decoder-only language model.

Reads top to bottom like transformers' ``modeling_llama.py``: RMSNorm, rotary embeddings (optionally
YaRN-scaled), grouped-query attention through transformers' attention-function interface (eager / sdpa /
flash_attention_2), the SwiGLU MLP and its mixture-of-experts variant, the decoder layer, the model and
the causal-LM head. No training code lives here.

This file only imports torch, transformers and its sibling configuration file, so a checkpoint saved with
``save_pretrained`` carries it and loads with ``trust_remote_code=True`` where this package is missing.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, MoeCausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_minimind import MiniMindConfig

try:  # transformers >= 5: initialisers that respect already-loaded weights
    from transformers import initialization as _init
except ImportError:  # transformers 4.x
    _init = nn.init

_TRANSFORMERS_V5 = hasattr(ALL_ATTENTION_FUNCTIONS, "get_interface")
_MASK_PARAMETERS = inspect.signature(create_causal_mask).parameters
_MASK_TAKES_CACHE_POSITION = "cache_position" in _MASK_PARAMETERS
_MASK_EMBEDS_ARG = "inputs_embeds" if "inputs_embeds" in _MASK_PARAMETERS else "input_embeds"
# The KV cache is called ``cache`` (argument and output field) from transformers 5.24 on, ``past_key_values``
# before. The model takes it under either name and hands it back under the installed library's name.
CACHE_NAME = "cache" if "cache" in {f.name for f in dataclasses.fields(BaseModelOutputWithPast)} else "past_key_values"
_MASK_CACHE_ARG = "cache" if "cache" in _MASK_PARAMETERS else "past_key_values"


def resolve_cache(cache: Cache | None, past_key_values: Cache | None) -> Cache | None:
    """The one KV cache of a call that may name it ``cache`` (new API) or ``past_key_values`` (old)."""
    if cache is not None and past_key_values is not None and cache is not past_key_values:
        raise ValueError("MiniMind: got both `cache` and `past_key_values`; pass the KV cache once, as `cache`")
    return cache if cache is not None else past_key_values


# --------------------------------------------------------------------------------------------- norm
class MiniMindRMSNorm(nn.Module):
    """Root-mean-square layer norm, computed in float32 and cast back to the input dtype."""

    def __init__(self, hidden_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}"


# ------------------------------------------------------------------------------------------- rotary
def rope_inverse_frequencies(config: MiniMindConfig, device: torch.device | None = None) -> tuple[torch.Tensor, float]:
    """Inverse frequencies of the rotary embedding and the cos/sin scale (1.0 unless YaRN).

    Plain RoPE: ``theta ** (-2i / d)``. With ``config.rope_yarn``, YaRN: frequencies whose wavelength is
    short compared with the original context keep their value, long ones are divided by ``factor``, with
    a linear ramp between (bounds from ``beta_fast`` / ``beta_slow``), and cos/sin are scaled by
    ``0.1 * ln(factor) + 1`` unless ``attention_factor`` is given — the same numbers as transformers'
    ``yarn`` rope type, so a Llama export reproduces MiniMind exactly.
    """
    dim, base = config.head_dim, config.rope_theta
    exponents = torch.arange(0, dim, 2, dtype=torch.int64, device=device).to(torch.float32) / dim
    inv_freq = 1.0 / (base**exponents)
    yarn = config.rope_yarn
    if not yarn:
        return inv_freq, 1.0
    factor = float(yarn["factor"])
    original = yarn["original_max_position_embeddings"]
    beta_fast, beta_slow = float(yarn.get("beta_fast") or 32), float(yarn.get("beta_slow") or 1)
    attention_factor = yarn.get("attention_factor")
    if attention_factor is None:
        attention_factor = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0

    def correction_dim(rotations: float) -> float:
        return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(base))

    low = max(math.floor(correction_dim(beta_fast)), 0)
    high = min(math.ceil(correction_dim(beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32, device=device) - low) / (high - low), 0, 1)
    extrapolation_weight = 1 - ramp
    inv_freq = (inv_freq / factor) * (1 - extrapolation_weight) + inv_freq * extrapolation_weight
    return inv_freq, float(attention_factor)


class MiniMindRotaryEmbedding(nn.Module):
    """cos/sin tables for the given positions.

    The inverse frequencies are not a buffer: they are derived from the config on first use on each
    device and kept in float32. Nothing is lost when transformers builds the model on the meta device,
    and ``model.to(torch.bfloat16)`` cannot round them.
    """

    def __init__(self, config: MiniMindConfig) -> None:
        super().__init__()
        self.config = config
        self._inv_freq: torch.Tensor | None = None
        self.attention_scaling = 1.0

    def inv_freq(self, device: torch.device) -> torch.Tensor:
        if self._inv_freq is None or self._inv_freq.device != device:
            self._inv_freq, self.attention_scaling = rope_inverse_frequencies(self.config, device=device)
        return self._inv_freq

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = self.inv_freq(x.device)
        freqs = position_ids[..., None].to(torch.float32) * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(x.dtype), sin.to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) over the two halves of the last dimension (the half-split rotary layout)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim: int = 1):
    """Rotate queries and keys ``[batch, heads, seq, head_dim]`` by the position angles."""
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


# ---------------------------------------------------------------------------------------- attention
def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Repeat each key/value head ``n_rep`` times: ``[b, kv, s, d] -> [b, kv * n_rep, s, d]``."""
    batch, kv_heads, seq_len, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None].expand(batch, kv_heads, n_rep, seq_len, head_dim)
    return hidden_states.reshape(batch, kv_heads * n_rep, seq_len, head_dim)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention; ``attention_mask`` is additive (0 or a large negative number)."""
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : key.shape[-2]]
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs = F.dropout(probs, p=dropout, training=module.training)
    output = torch.matmul(probs, value).transpose(1, 2).contiguous()
    return output, probs


def attention_function(implementation: str | None) -> Callable:
    """The attention kernel registered under ``implementation`` (eager is this file's own)."""
    if implementation in (None, "eager"):
        return eager_attention_forward
    if _TRANSFORMERS_V5:
        return ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
    return ALL_ATTENTION_FUNCTIONS[implementation]


class MiniMindAttention(nn.Module):
    """Grouped-query attention: ``num_attention_heads`` query heads share ``num_key_value_heads`` K/V heads."""

    def __init__(self, config: MiniMindConfig, layer_idx: int) -> None:
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.dropout
        self.is_causal = True
        self.q_proj = nn.Linear(config.hidden_size, config.num_attention_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(config.num_attention_heads * self.head_dim, config.hidden_size, bias=False)
        if getattr(config, "qk_norm", False):  # MiniMind-3: per-head RMSNorm of queries and keys
            self.q_norm = MiniMindRMSNorm(self.head_dim, eps=config.rms_norm_eps)
            self.k_norm = MiniMindRMSNorm(self.head_dim, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        cache_position: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape)
        key = self.k_proj(hidden_states).view(hidden_shape)
        if getattr(self.config, "qk_norm", False):
            query, key = self.q_norm(query), self.k_norm(key)
        query, key = query.transpose(1, 2), key.transpose(1, 2)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        cos, sin = position_embeddings
        query, key = apply_rotary_pos_emb(query, key, cos, sin)

        if cache is not None:  # cache_position is read by transformers 4.x's static cache only
            cache_kwargs = {"sin": sin, "cos": cos, "cache_position": cache_position}
            key, value = cache.update(key, value, self.layer_idx, cache_kwargs)

        output, weights = attention_function(self.config._attn_implementation)(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        output = self.o_proj(output.reshape(*input_shape, -1).contiguous())
        return output, weights


# ---------------------------------------------------------------------------------------------- MLP
class MiniMindMLP(nn.Module):
    """SwiGLU feed-forward: ``down(act(gate(x)) * up(x))``."""

    def __init__(self, config: MiniMindConfig, intermediate_size: int | None = None) -> None:
        super().__init__()
        width = intermediate_size or config.intermediate_size
        self.gate_proj = nn.Linear(config.hidden_size, width, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, width, bias=False)
        self.down_proj = nn.Linear(width, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class MiniMindMoEGate(nn.Module):
    """Top-k softmax router with MiniMind's load-balancing auxiliary loss."""

    def __init__(self, config: MiniMindConfig) -> None:
        super().__init__()
        self.config = config
        self.top_k = config.num_experts_per_tok
        self.n_routed_experts = config.n_routed_experts
        self.weight = nn.Parameter(torch.empty(config.n_routed_experts, config.hidden_size))

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, seq_len, hidden = hidden_states.shape
        logits = F.linear(hidden_states.reshape(-1, hidden), self.weight)
        scores = logits.softmax(dim=-1, dtype=torch.float32)
        topk_weight, topk_idx = torch.topk(scores, k=self.top_k, dim=-1, sorted=False)
        single = self.top_k == 1 and not getattr(self.config, "renormalize_single_expert", False)
        if self.config.norm_topk_prob and not single:
            topk_weight = topk_weight / (topk_weight.sum(dim=-1, keepdim=True) + 1e-20)

        aux_loss = scores.new_zeros(())
        if self.training and self.config.aux_loss_alpha > 0:
            if self.config.seq_aux:
                # per sequence: fraction of routed slots per expert (scaled so uniform = 1) x mean router prob
                idx = topk_idx.view(batch, -1)
                load = torch.zeros(batch, self.n_routed_experts, device=hidden_states.device)
                load.scatter_add_(1, idx, torch.ones_like(idx, dtype=load.dtype))
                load = load / (seq_len * self.top_k / self.n_routed_experts)
                aux_loss = (load * scores.view(batch, seq_len, -1).mean(dim=1)).sum(dim=1).mean()
            else:
                load = F.one_hot(topk_idx.view(-1), self.n_routed_experts).float().mean(0)
                aux_loss = (scores.mean(0) * load * self.n_routed_experts).sum()
            aux_loss = aux_loss * self.config.aux_loss_alpha
        return topk_idx, topk_weight.to(hidden_states.dtype), aux_loss


class MiniMindMoE(nn.Module):
    """Mixture of SwiGLU experts: top-k routed experts plus shared experts that see every token.

    The latest balance loss is kept in ``self.aux_loss`` for the causal-LM head to add.
    """

    def __init__(self, config: MiniMindConfig) -> None:
        super().__init__()
        self.config = config
        self.gate = MiniMindMoEGate(config)
        self.experts = nn.ModuleList([MiniMindMLP(config) for _ in range(config.n_routed_experts)])
        self.shared_experts = nn.ModuleList([MiniMindMLP(config) for _ in range(config.n_shared_experts)])
        self.aux_loss: torch.Tensor | None = None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        shape = hidden_states.shape
        topk_idx, topk_weight, self.aux_loss = self.gate(hidden_states)
        flat = hidden_states.reshape(-1, shape[-1])
        routed = torch.zeros_like(flat)
        for expert_id, expert in enumerate(self.experts):
            token_idx, slot = torch.where(topk_idx == expert_id)
            if token_idx.numel() == 0:
                if self.training:  # keep every expert in the graph so DDP sees a gradient for it
                    routed = routed + 0.0 * sum(p.sum() for p in expert.parameters())
                continue
            out = expert(flat[token_idx]) * topk_weight[token_idx, slot, None]
            routed = routed.index_add(0, token_idx, out.to(routed.dtype))
        output = routed.view(shape)
        for expert in self.shared_experts:
            output = output + expert(hidden_states)
        return output


# ------------------------------------------------------------------------------------ decoder layer
class MiniMindDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(self, config: MiniMindConfig, layer_idx: int) -> None:
        super().__init__()
        self.self_attn = MiniMindAttention(config, layer_idx)
        self.mlp = MiniMindMoE(config) if config.use_moe else MiniMindMLP(config)
        self.input_layernorm = MiniMindRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = MiniMindRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        cache_position: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        residual = hidden_states
        hidden_states, weights = self.self_attn(
            self.input_layernorm(hidden_states),
            position_embeddings=position_embeddings,
            attention_mask=attention_mask,
            cache=cache,
            cache_position=cache_position,
            **kwargs,
        )
        hidden_states = residual + hidden_states
        hidden_states = hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))
        return hidden_states, weights


# ---------------------------------------------------------------------------------------- the model
class MiniMindPreTrainedModel(PreTrainedModel):
    config_class = MiniMindConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MiniMindDecoderLayer"]
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flash_attn_2 = True
    _supports_attention_backend = True

    if hasattr(PreTrainedModel, "is_activation_checkpointing"):  # transformers >= 5.24

        @property
        def is_gradient_checkpointing(self) -> bool:
            """Whether activation checkpointing is on, under its pre-5.24 name, answered through the new API.

            transformers 5.24 renamed the property ``is_activation_checkpointing`` and made the old name warn;
            PEFT's ``get_peft_model`` still reads the old one on the model it wraps (to decide whether the
            inputs must carry gradients). A MiniMind answers it without going through the deprecated alias.
            """
            return self.is_activation_checkpointing

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            _init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                _init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            _init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, MiniMindRMSNorm):
            _init.ones_(module.weight)
        elif isinstance(module, MiniMindMoEGate):
            _init.normal_(module.weight, mean=0.0, std=std)


class MiniMindModel(MiniMindPreTrainedModel):
    """Embeddings, the decoder stack and the final norm; returns hidden states and the KV cache."""

    def __init__(self, config: MiniMindConfig) -> None:
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(MiniMindDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = MiniMindRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = MiniMindRotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        """``cache`` is the KV cache (``past_key_values`` is accepted as its older name).

        The output holds it under the installed transformers' field name (:data:`CACHE_NAME`).
        """
        cache = resolve_cache(cache, past_key_values)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("MiniMindModel: pass exactly one of input_ids or inputs_embeds")
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if self.gradient_checkpointing and self.training:
            use_cache = False
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if not use_cache:
            cache = None
        elif cache is None:
            try:
                cache = DynamicCache(config=self.config)
            except TypeError:  # older cache API
                cache = DynamicCache()

        past_seen = cache.get_seq_length() if cache is not None else 0
        cache_position = kwargs.pop("cache_position", None)  # given by transformers 4.x generate
        if cache_position is None:
            cache_position = torch.arange(past_seen, past_seen + inputs_embeds.shape[1], device=inputs_embeds.device)
        given_position_ids = position_ids  # only positions a caller gives can mark packed sequences
        if position_ids is None:
            position_ids = cache_position.unsqueeze(0)

        mask_kwargs = {
            "config": self.config,
            _MASK_EMBEDS_ARG: inputs_embeds,
            "attention_mask": attention_mask,
            _MASK_CACHE_ARG: cache,
            # derived positions say nothing about packing; handing them over would make the mask builder read
            # them back from the device (a GPU sync) on every call
            "position_ids": given_position_ids,
        }
        if _MASK_TAKES_CACHE_POSITION:
            mask_kwargs["cache_position"] = cache_position
        causal_mask = create_causal_mask(**mask_kwargs)

        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids)
        all_hidden = [] if output_hidden_states else None
        all_attn = [] if output_attentions else None
        for layer in self.layers:
            if all_hidden is not None:
                all_hidden.append(hidden_states)
            hidden_states, weights = layer(
                hidden_states,
                attention_mask=causal_mask,
                position_embeddings=position_embeddings,
                cache=cache,
                cache_position=cache_position,
                **kwargs,
            )
            if all_attn is not None:
                all_attn.append(weights)
        hidden_states = self.norm(hidden_states)
        if all_hidden is not None:
            all_hidden.append(hidden_states)
        return BaseModelOutputWithPast(
            last_hidden_state=hidden_states,
            **{CACHE_NAME: cache},
            hidden_states=tuple(all_hidden) if all_hidden is not None else None,
            attentions=tuple(all_attn) if all_attn is not None else None,
        )


class MiniMindForCausalLM(MiniMindPreTrainedModel, GenerationMixin):
    """MiniMind with a language-modelling head tied to the input embeddings."""

    # transformers 5 maps each tied weight to its source; 4.x lists the tied weights
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"} if _TRANSFORMERS_V5 else ["lm_head.weight"]

    def __init__(self, config: MiniMindConfig) -> None:
        super().__init__(config)
        self.model = MiniMindModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values: Cache | None = None,
        **kwargs: Any,
    ) -> MoeCausalLMOutputWithPast:
        """Logits for every position (or the last ``logits_to_keep``).

        With ``labels`` (-100 ignored) the next-token cross-entropy, plus the MoE balance loss while training. ``cache``
        is the KV cache (``past_key_values``, its older name, is accepted too).
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=resolve_cache(cache, past_key_values),
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, keep, :])

        aux_loss = None
        if self.config.use_moe:
            losses = [layer.mlp.aux_loss for layer in self.model.layers if layer.mlp.aux_loss is not None]
            aux_loss = torch.stack(losses).sum() if losses else logits.new_zeros(())
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
            if aux_loss is not None and self.training:
                loss = loss + aux_loss.to(loss.device)
        return MoeCausalLMOutputWithPast(
            loss=loss,
            aux_loss=aux_loss,
            logits=logits,
            **{CACHE_NAME: getattr(outputs, CACHE_NAME)},
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = ["MiniMindPreTrainedModel", "MiniMindModel", "MiniMindForCausalLM"]


def moe_balance_loss(model: torch.nn.Module) -> torch.Tensor | None:
    """Sum of the load-balancing losses MiniMind's MoE blocks keep in ``aux_loss`` after a forward.

    For trainers whose forward skips the causal-LM head that adds this loss in training (TRL's fused LM head
    in DPO, GRPO's log-probability forwards): they add it themselves. Only a module's own ``aux_loss``
    tensor attribute that carries a gradient is read (not one forwarded by a wrapper, not one from a
    forward without gradients). ``None`` for a dense model.
    """
    losses = [
        value
        for module in model.modules()
        if isinstance(value := module.__dict__.get("aux_loss"), torch.Tensor) and value.requires_grad
    ]
    return torch.stack([loss.reshape(()) for loss in losses]).sum() if losses else None
