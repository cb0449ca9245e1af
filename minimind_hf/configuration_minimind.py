"""Configuration of MiniMind, a small LLaMA-style decoder (the MiniMind2 architecture).

The defaults describe ``minimind-26m``: 512 hidden, 8 layers, 8 query heads sharing 2 key/value heads,
a 6400-token vocabulary, RMSNorm (eps 1e-5), rotary embeddings with theta 1e6, a SwiGLU MLP and tied
input/output embeddings. ``MiniMindConfig.from_preset(name)`` gives the named sizes.
"""

from __future__ import annotations

import math
from typing import Any

from transformers import PretrainedConfig


def llama2c_intermediate_size(dim: int, multiple_of: int, ffn_dim_multiplier: float | None = None) -> int:
    """llama2.c's / Llama 2's SwiGLU width.

    ``int(2 * 4 * dim / 3)`` (times ``ffn_dim_multiplier``) rounded up to a multiple of ``multiple_of``. MiniMind's own
    rule is this with ``multiple_of=64``.
    """
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def minimind3_intermediate_size(hidden_size: int) -> int:
    """MiniMind-3's SwiGLU width: ``ceil(hidden * pi / 64) * 64`` (2,432 for 768)."""
    return math.ceil(hidden_size * math.pi / 64) * 64


# MiniMind-3, the original's newest generation, as its model/model_minimind.py (jingyaogong/minimind, last changed
# 2026-05-07) defines it: MiniMindConfig(hidden_size=768, num_hidden_layers=8), 8 query / 4 KV heads, intermediate
# ceil(768 * pi / 64) * 64 = 2432, rms_norm_eps 1e-6, per-head q_norm / k_norm, rope_theta 1e6, vocab 6400; MoE:
# num_experts 4, num_experts_per_tok 1, no shared expert, norm_topk_prob, router_aux_loss_coef 5e-4.
_MINIMIND3 = dict(
    hidden_size=768,
    num_hidden_layers=8,
    num_attention_heads=8,
    num_key_value_heads=4,
    intermediate_size=minimind3_intermediate_size(768),
    rms_norm_eps=1e-6,
    qk_norm=True,
)

# Named sizes. ``tiny`` is for tests, ``mini`` (1.6M) for the CPU recipes; the others are the original MiniMind2 sizes.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "mini": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2),
    # the CPU model that translates (recipes/small): 2.8M parameters. At a fixed CPU budget it saw 1.8x the
    # tokens of the former 5.9M shape (hidden 256, 6 layers) and reached a lower validation loss
    # (benchmarks/speedrun/leaderboard.md, rows small-3m and base)
    "small": dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=6, num_key_value_heads=2),
    "minimind-26m": dict(hidden_size=512, num_hidden_layers=8),
    "minimind-104m": dict(hidden_size=768, num_hidden_layers=16),
    "minimind-moe-145m": dict(
        hidden_size=640,
        num_hidden_layers=8,
        use_moe=True,
        n_routed_experts=4,
        n_shared_experts=1,
        num_experts_per_tok=2,
    ),
    # COMP4901B HW1's "Baby LLaMA2" 42M, llama2.c's stories42M shape: dim 512, 8 layers, 8 heads (no GQA),
    # the 32,000-piece Llama 2 SentencePiece vocabulary, FFN int(2 * 4 * 512 / 3) = 1365 rounded up to a
    # multiple of 32 = 1376, rotary base 1e4, 1024 positions.
    "llama2-42m": dict(
        hidden_size=512,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=8,
        vocab_size=32000,
        intermediate_size=llama2c_intermediate_size(512, 32),
        rope_theta=1e4,
        max_position_embeddings=1024,
    ),
    "minimind-3": dict(_MINIMIND3),
    "minimind-3-moe": dict(
        _MINIMIND3,
        use_moe=True,
        n_routed_experts=4,
        n_shared_experts=0,
        num_experts_per_tok=1,
        renormalize_single_expert=True,
        aux_loss_alpha=5e-4,
        seq_aux=False,
    ),
    "tiny-moe": dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        use_moe=True,
        n_routed_experts=4,
        n_shared_experts=1,
        num_experts_per_tok=2,
    ),
}

YARN_DEFAULTS: dict[str, float] = {
    "factor": 16.0,
    "original_max_position_embeddings": 2048,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
}


def default_intermediate_size(hidden_size: int) -> int:
    """SwiGLU width used by MiniMind: 8/3 of the hidden size, rounded up to a multiple of 64."""
    return 64 * math.ceil(int(8 * hidden_size / 3) / 64)


class MiniMindConfig(PretrainedConfig):
    """Configuration for :class:`~minimind_hf.MiniMindForCausalLM`.

    Args:
        vocab_size: size of the token vocabulary (6400 for the project's tokenizer).
        hidden_size: width of the residual stream.
        intermediate_size: SwiGLU width; ``None`` gives ``64 * ceil(int(8 * hidden / 3) / 64)``.
        num_hidden_layers: number of decoder layers.
        num_attention_heads: query heads; must divide ``hidden_size``.
        num_key_value_heads: key/value heads (grouped-query attention); must divide ``num_attention_heads``.
        max_position_embeddings: longest sequence the rotary tables are sized for.
        rms_norm_eps: epsilon of RMSNorm (computed in float32).
        rope_theta: rotary base.
        rope_yarn: ``None`` for plain rotary, or a dict of YaRN parameters (``factor``,
            ``original_max_position_embeddings``, ``beta_fast``, ``beta_slow``, optional
            ``attention_factor``) to stretch the context, computed exactly as transformers' ``yarn`` rope
            so that a Llama export gives the same logits. ``True`` takes :data:`YARN_DEFAULTS`.
        hidden_act: MLP activation.
        dropout: dropout on attention probabilities (training only).
        use_moe: replace every MLP with a mixture of experts.
        n_routed_experts / n_shared_experts / num_experts_per_tok: MoE shape (top-k routing over the
            routed experts; shared experts see every token).
        scoring_func: router scoring (``softmax``).
        aux_loss_alpha: weight of the load-balancing loss added to the LM loss during training.
        seq_aux: compute the balance loss per sequence (as MiniMind) rather than per batch.
        norm_topk_prob: renormalise the top-k routing weights to sum to one (for top-k > 1, as MiniMind2).
        renormalize_single_expert: with ``norm_topk_prob``, also renormalise a single routed expert's weight
            (to 1), as MiniMind-3 does.
        qk_norm: RMSNorm each query and key head (over ``head_dim``) before the rotary, as MiniMind-3 does.
    """

    model_type = "minimind"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]

    def __init__(
        self,
        vocab_size: int = 6400,
        hidden_size: int = 512,
        intermediate_size: int | None = None,
        num_hidden_layers: int = 8,
        num_attention_heads: int = 8,
        num_key_value_heads: int = 2,
        max_position_embeddings: int = 32768,
        rms_norm_eps: float = 1e-5,
        rope_theta: float = 1e6,
        rope_yarn: dict | bool | None = None,
        hidden_act: str = "silu",
        dropout: float = 0.0,
        initializer_range: float = 0.02,
        use_cache: bool = True,
        use_moe: bool = False,
        n_routed_experts: int = 4,
        n_shared_experts: int = 1,
        num_experts_per_tok: int = 2,
        scoring_func: str = "softmax",
        aux_loss_alpha: float = 0.1,
        seq_aux: bool = True,
        norm_topk_prob: bool = True,
        renormalize_single_expert: bool = False,
        qk_norm: bool = False,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        pad_token_id: int = 0,
        tie_word_embeddings: bool = True,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size or default_intermediate_size(hidden_size)
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        kwargs.pop("head_dim", None)  # derived, never stored independently
        self.head_dim = hidden_size // num_attention_heads if num_attention_heads else 0
        self.max_position_embeddings = max_position_embeddings
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = float(rope_theta)
        if rope_yarn is True:
            rope_yarn = dict(YARN_DEFAULTS)
        self.rope_yarn = dict(rope_yarn) if rope_yarn else None
        self.hidden_act = hidden_act
        self.dropout = dropout
        self.initializer_range = initializer_range
        self.use_cache = use_cache
        self.use_moe = use_moe
        self.n_routed_experts = n_routed_experts
        self.n_shared_experts = n_shared_experts
        self.num_experts_per_tok = num_experts_per_tok
        self.scoring_func = scoring_func
        self.aux_loss_alpha = aux_loss_alpha
        self.seq_aux = seq_aux
        self.norm_topk_prob = norm_topk_prob
        self.renormalize_single_expert = renormalize_single_expert
        self.qk_norm = qk_norm
        super().__init__(
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
        self.check_sizes()

    def check_sizes(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent size."""
        problems = []
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if problems:
            raise ValueError("MiniMindConfig: " + "; ".join(problems))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"MiniMindConfig: hidden_size ({self.hidden_size}) is not divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"MiniMindConfig: num_attention_heads ({self.num_attention_heads}) is not divisible by "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(f"MiniMindConfig: head_dim ({self.head_dim}) must be even for rotary embeddings")
        if self.use_moe:
            if self.scoring_func != "softmax":
                raise ValueError(f"MiniMindConfig: unsupported MoE scoring_func {self.scoring_func!r} (use 'softmax')")
            if not 0 < self.num_experts_per_tok <= self.n_routed_experts:
                raise ValueError(
                    f"MiniMindConfig: num_experts_per_tok ({self.num_experts_per_tok}) must be in "
                    f"1..n_routed_experts ({self.n_routed_experts})"
                )
        if self.rope_yarn is not None:
            missing = {"factor", "original_max_position_embeddings"} - set(self.rope_yarn)
            if missing:
                raise ValueError(f"MiniMindConfig: rope_yarn is missing {sorted(missing)}")

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any):
        model_type = config_dict.get("model_type")
        if model_type is not None and model_type != cls.model_type:
            raise ValueError(
                f"this checkpoint holds a {model_type!r} model, not MiniMind ({cls.model_type!r}); load it with "
                "AutoModelForCausalLM, or convert a Llama with minimind_hf.interop.llama.from_llama"
            )
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> MiniMindConfig:
        """A named size.

        One of :data:`PRESETS` (``tiny``, ``mini``, ``minimind-26m``, ``minimind-104m``, ``minimind-moe-145m``,
        ``llama2-42m``, ``minimind-3``, ``minimind-3-moe``, ``tiny-moe``).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown MiniMind preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})
