"""Checkpoints of the original MiniMind, read into this model.

* ``model_minimind.py`` checkpoints (MiniMind2; ``.pth`` state dicts) already use these key names; the older
  course layout (``tok_embeddings``, ``attention.wq/wk/wv/wo``, ``feed_forward.w1/w2/w3``, ``output``) uses
  complex *interleaved* rotary, so the query and key rows are permuted into the half-split order, as Llama
  conversions do (llama2.c checkpoints share that layout: :mod:`minimind_hf.interop.llama2c`).
* **MiniMind-3** (the original's current ``model_minimind.py``): MiniMind2's names plus per-head
  ``q_norm`` / ``k_norm``; :func:`config_from_original` maps its config fields.
* **The original's LoRA** (``model_lora.py``: ``<layer>.lora.A.weight`` / ``.lora.B.weight`` on every
  square linear layer, no scaling): :func:`import_original_lora` writes the PEFT adapter that computes it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..configuration_minimind import (
    MiniMindConfig,
    llama2c_intermediate_size,
    minimind3_intermediate_size,
)
from ..modeling_minimind import MiniMindForCausalLM

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
    (
        r"^layers\.(\d+)\.feed_forward\.shared_experts\.w1\.weight$",
        r"model.layers.\1.mlp.shared_experts.0.gate_proj.weight",
    ),
    (
        r"^layers\.(\d+)\.feed_forward\.shared_experts\.w2\.weight$",
        r"model.layers.\1.mlp.shared_experts.0.down_proj.weight",
    ),
    (
        r"^layers\.(\d+)\.feed_forward\.shared_experts\.w3\.weight$",
        r"model.layers.\1.mlp.shared_experts.0.up_proj.weight",
    ),
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


_WRAPPER_PREFIXES = ("_orig_mod.", "module.")


def strip_wrapper_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys without the ``_orig_mod.`` (``torch.compile``) and ``module.`` (DDP) prefixes wrappers add."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def detect_layout(state_dict: dict[str, torch.Tensor]) -> str:
    """The layout of an original checkpoint: ``"course"``, ``"minimind3"`` or ``"minimind2"``.

    ``"course"``: wq/wk/wv/wo, interleaved rotary (the old MiniMind and llama2.c); ``"minimind3"``: model_minimind.py
    with q_norm / k_norm; ``"minimind2"``: model_minimind.py names.
    """
    if "tok_embeddings.weight" in state_dict:
        return "course"
    if "model.embed_tokens.weight" in state_dict:
        return "minimind3" if any(k.endswith("self_attn.q_norm.weight") for k in state_dict) else "minimind2"
    raise ValueError(
        "not a MiniMind checkpoint: no 'tok_embeddings.weight' (course layout) or "
        f"'model.embed_tokens.weight' (MiniMind2 layout); first keys: {list(state_dict)[:5]}"
    )


def convert_original_state_dict(
    state_dict: dict[str, torch.Tensor], config: MiniMindConfig, layout: str | None = None
) -> dict[str, torch.Tensor]:
    """Rename (and for the course layout, permute) an original MiniMind state dict to this model's keys."""
    state_dict = strip_wrapper_prefixes(state_dict)
    layout = layout or detect_layout(state_dict)
    if layout in ("minimind2", "minimind3"):
        return {k: v for k, v in state_dict.items() if not _IGNORED.search(k)}
    if layout != "course":
        raise ValueError(f"unknown layout {layout!r}: expected 'course', 'minimind2' or 'minimind3'")
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
    """A ``MiniMindConfig`` from the original's config fields.

    Course / llama2.c ``ModelArgs`` names (``dim``, ``n_layers``, ``multiple_of``, ...), MiniMind2's or MiniMind-3's.
    """
    if layout == "course":
        mapping = {
            "dim": "hidden_size",
            "n_layers": "num_hidden_layers",
            "n_heads": "num_attention_heads",
            "n_kv_heads": "num_key_value_heads",
            "hidden_dim": "intermediate_size",
            "norm_eps": "rms_norm_eps",
            "max_seq_len": "max_position_embeddings",
            "rope_theta": "rope_theta",
        }
        kwargs = {new: args[old] for old, new in mapping.items() if args.get(old) is not None}
        kwargs.setdefault("rope_theta", 1e4)  # the course's / llama2.c's precompute_freqs_cis default
        kwargs.setdefault("num_key_value_heads", kwargs.get("num_attention_heads", 8))  # n_kv_heads None: no GQA
        if "intermediate_size" not in kwargs and "hidden_size" in kwargs:
            # llama2.c / Llama 2: int(2 * 4 * dim / 3), times ffn_dim_multiplier, up to a multiple of multiple_of
            kwargs["intermediate_size"] = llama2c_intermediate_size(
                kwargs["hidden_size"], int(args.get("multiple_of") or 64), args.get("ffn_dim_multiplier")
            )
        for key in (
            "vocab_size",
            "use_moe",
            "n_routed_experts",
            "num_experts_per_tok",
            "norm_topk_prob",
            "aux_loss_alpha",
            "seq_aux",
            "scoring_func",
            "dropout",
        ):
            if key in args:
                kwargs[key] = args[key]
        if "n_shared_experts" in args:
            kwargs["n_shared_experts"] = 1 if args["n_shared_experts"] else 0
        return MiniMindConfig(**kwargs)
    if layout == "minimind3":
        return minimind3_config(args)
    return MiniMindConfig(**{k: v for k, v in args.items() if k not in ("flash_attn", "inference_rope_scaling")})


def minimind3_config(args: dict[str, Any]) -> MiniMindConfig:
    """A ``MiniMindConfig`` from MiniMind-3's config fields (its defaults where a field is absent).

    MiniMind-3's ``MiniMindConfig`` (jingyaogong/minimind, model/model_minimind.py, 2026-05): hidden 768,
    8 layers, 8 query / 4 KV heads, FFN ``ceil(hidden * pi / 64) * 64``, RMSNorm eps 1e-6 and per-head
    q/k norms, rotary base 1e6, MoE of ``num_experts`` routed experts (4, top-1, no shared expert, a single
    expert's weight renormalised to 1) with a balance loss weighted 5e-4.
    """
    hidden = args.get("hidden_size", 768)
    intermediate = args.get("intermediate_size") or minimind3_intermediate_size(hidden)
    moe_width = args.get("moe_intermediate_size") or intermediate
    if moe_width != intermediate:
        raise ValueError(
            f"MiniMind-3 moe_intermediate_size {moe_width} differs from intermediate_size {intermediate}; "
            "MiniMind's experts share the MLP width"
        )
    if args.get("inference_rope_scaling"):
        raise ValueError("MiniMind-3 inference_rope_scaling: load it without, then set rope_yarn on the MiniMindConfig")
    return MiniMindConfig(
        hidden_size=hidden,
        num_hidden_layers=args.get("num_hidden_layers", 8),
        num_attention_heads=args.get("num_attention_heads", 8),
        num_key_value_heads=args.get("num_key_value_heads", 4),
        intermediate_size=intermediate,
        vocab_size=args.get("vocab_size", 6400),
        max_position_embeddings=args.get("max_position_embeddings", 32768),
        rms_norm_eps=args.get("rms_norm_eps", 1e-6),
        rope_theta=args.get("rope_theta", 1e6),
        qk_norm=True,
        dropout=args.get("dropout", 0.0),
        use_moe=args.get("use_moe", False),
        n_routed_experts=args.get("num_experts", 4),
        n_shared_experts=0,
        num_experts_per_tok=args.get("num_experts_per_tok", 1),
        norm_topk_prob=args.get("norm_topk_prob", True),
        renormalize_single_expert=True,
        aux_loss_alpha=args.get("router_aux_loss_coef", 5e-4),
        seq_aux=False,
        bos_token_id=args.get("bos_token_id", 1),
        eos_token_id=args.get("eos_token_id", 2),
        tie_word_embeddings=args.get("tie_word_embeddings", True),
    )


def load_original(
    checkpoint: str | Path | dict[str, torch.Tensor],
    config: MiniMindConfig | dict[str, Any] | None = None,
    layout: str | None = None,
) -> MiniMindForCausalLM:
    """A MiniMind model from an original MiniMind ``.pth`` (or an in-memory state dict).

    ``config`` is a ``MiniMindConfig`` or the original's config fields; without it the shape is read off the
    tensors (hidden size, layers, vocabulary; heads must then be given).
    """
    state = checkpoint if isinstance(checkpoint, dict) else _torch_load(checkpoint)
    if isinstance(state.get("model"), dict) and "model_args" in state:  # a llama2.c training checkpoint
        state, config = state["model"], config if config is not None else state["model_args"]
    state = strip_wrapper_prefixes(state)
    layout = layout or detect_layout(state)
    if config is None:
        raise ValueError("load_original needs the model's config (a MiniMindConfig or the original's fields)")
    if isinstance(config, dict):
        config = config_from_original(config, layout)
    output = state.get("output.weight", state.get("lm_head.weight"))
    embed = state.get("tok_embeddings.weight", state.get("model.embed_tokens.weight"))
    if output is not None and embed is not None and not torch.equal(output, embed) and config.tie_word_embeddings:
        config.tie_word_embeddings = False  # separate output weights: keep them separate
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


def _torch_load(path: str | Path) -> dict[str, Any]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle of arbitrary objects, or not a torch file
        raise ValueError(
            f"{path}: torch.load(weights_only=True) could not read it ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); re-save it as a dict of tensors"
        ) from None
    if not isinstance(loaded, dict):
        raise ValueError(
            f"{path}: expected a state dict or a dict with 'model' and 'model_args', got {type(loaded).__name__}"
        )
    return loaded


# ---------------------------------------------------------------------------------- the original's LoRA

_ORIGINAL_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora\.(?P<part>[AB])\.weight$")


def original_lora_modules(state_dict: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``{module name: {"A": [r, in], "B": [out, r]}}`` of an original MiniMind LoRA ``.pth``."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in strip_wrapper_prefixes(state_dict).items():
        match = _ORIGINAL_LORA_KEY.match(key)
        if match is None:
            raise ValueError(f"original LoRA checkpoint: unexpected key {key!r} (expected <module>.lora.A/B.weight)")
        modules.setdefault(match["module"], {})[match["part"]] = value
    if not modules:
        raise ValueError("original LoRA checkpoint: no <module>.lora.A.weight keys")
    for name, parts in modules.items():
        if set(parts) != {"A", "B"}:
            raise ValueError(f"original LoRA checkpoint: {name} has only {sorted(parts)}")
    return modules


def import_original_lora(
    checkpoint: str | Path | dict[str, torch.Tensor],
    base: MiniMindForCausalLM,
    output_dir: str | Path,
    base_name_or_path: str | None = None,
):
    """Write the original MiniMind's LoRA (``x W + B(A(x))``, no scaling) as a PEFT adapter of ``base``.

    PEFT's ``lora_alpha = r`` gives scaling 1, the original's. Returns the ``PeftModel``.
    """
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    state = checkpoint if isinstance(checkpoint, dict) else _torch_load(checkpoint)
    modules = original_lora_modules(state)
    ranks = {parts["A"].shape[0] for parts in modules.values()}
    if len(ranks) != 1:
        raise ValueError(f"original LoRA checkpoint: the layers have different ranks {sorted(ranks)}")
    rank = ranks.pop()
    names = dict(base.named_modules())
    for name, parts in modules.items():
        layer = names.get(name)
        if not isinstance(layer, torch.nn.Linear):
            raise ValueError(f"original LoRA checkpoint: the base model has no linear layer {name!r}")
        if parts["A"].shape != (rank, layer.in_features) or parts["B"].shape != (layer.out_features, rank):
            raise ValueError(
                f"original LoRA checkpoint: {name} A{tuple(parts['A'].shape)} B{tuple(parts['B'].shape)} "
                f"do not fit a {layer.in_features}->{layer.out_features} layer at rank {rank}"
            )
    config = LoraConfig(
        r=rank, lora_alpha=rank, lora_dropout=0.0, bias="none", target_modules=sorted(modules), task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(base, config)
    adapter = {}
    for name, parts in modules.items():
        adapter[f"base_model.model.{name}.lora_A.weight"] = parts["A"]
        adapter[f"base_model.model.{name}.lora_B.weight"] = parts["B"]
    result = set_peft_model_state_dict(peft_model, adapter)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"original LoRA checkpoint: PEFT did not place {unexpected[:5]}")
    if base_name_or_path is not None:
        peft_model.peft_config["default"].base_model_name_or_path = str(base_name_or_path)
    peft_model.save_pretrained(str(output_dir))
    return peft_model


def infer_minimind_config(state_dict: dict[str, torch.Tensor], layout: str) -> MiniMindConfig:
    """The config of a MiniMind2 / MiniMind-3 state dict read off its tensors.

    Head counts come from the per-head ``q_norm`` (MiniMind-3); a MiniMind2 state dict does not record its
    head size, so its head counts are MiniMind2's 8 query heads (pass the config where they differ).
    """
    state = strip_wrapper_prefixes(state_dict)
    embed = state["model.embed_tokens.weight"]
    vocab, hidden = embed.shape
    layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"model\.layers\.(\d+)\.", k)))
    q, k = state["model.layers.0.self_attn.q_proj.weight"], state["model.layers.0.self_attn.k_proj.weight"]
    head_dim = state["model.layers.0.self_attn.q_norm.weight"].shape[0] if layout == "minimind3" else hidden // 8
    experts = {int(m.group(1)) for key in state if (m := re.match(r"model\.layers\.0\.mlp\.experts\.(\d+)\.", key))}
    width_key = "model.layers.0.mlp.experts.0.gate_proj.weight" if experts else "model.layers.0.mlp.gate_proj.weight"
    fields: dict[str, Any] = dict(
        hidden_size=hidden,
        num_hidden_layers=layers,
        vocab_size=vocab,
        num_attention_heads=q.shape[0] // head_dim,
        num_key_value_heads=k.shape[0] // head_dim,
        intermediate_size=state[width_key].shape[0],
    )
    lm_head = state.get("lm_head.weight")
    fields["tie_word_embeddings"] = lm_head is None or torch.equal(lm_head, embed)
    if layout == "minimind3":
        if experts:
            fields.update(use_moe=True, num_experts=len(experts))
        return minimind3_config(fields)
    shared_key = re.compile(r"model\.layers\.0\.mlp\.shared_experts\.(\d+)\.")
    shared = {int(m.group(1)) for key in state if (m := shared_key.match(key))}
    if experts:
        fields.update(use_moe=True, n_routed_experts=len(experts), n_shared_experts=len(shared))
    return MiniMindConfig(**fields)
