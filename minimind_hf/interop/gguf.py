"""GGUF files for llama.cpp and ollama, and the check that llama.cpp generates what transformers does.

    minimind export out/dpo out/dpo.gguf --to gguf [--gguf-dtype f16]

A dense MiniMind is a Llama (see :mod:`minimind_hf.interop.llama`), so the file is written with llama.cpp's
own ``gguf`` package under llama.cpp's ``llama`` architecture: its hyper-parameters, the byte-level BPE
tokenizer (``gpt2`` model, ``gpt-2`` pre-tokenizer: vocabulary, merges, the three control tokens, the ChatML
template) and the weights under llama.cpp's tensor names. Two things differ from the transformers
layout, as in llama.cpp's ``convert_hf_to_gguf.py``:

* llama.cpp rotates adjacent pairs of a head's dimensions, transformers (and MiniMind) the two halves, so
  the query and key rows of every head are permuted back to the interleaved order;
* the output head is tied to the embedding, so no ``output.weight`` is written: llama.cpp then uses
  ``token_embd.weight`` for both, as it does for every tied model.

``f32`` keeps the weights exact; ``f16`` halves the file (norms stay float32). A MoE MiniMind (its
routed + shared experts have no llama.cpp architecture) and a YaRN-scaled one are refused with the reason.

:func:`compare_with_llama_cpp` loads a file with ``llama-cpp-python`` (which builds llama.cpp from source)
and compares its greedy tokens with transformers' on the same token ids (``benchmarks/gguf_roundtrip.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

GGUF_DTYPES = ("f32", "f16")


class GGUFExportError(ValueError):
    """The model cannot be written as a GGUF file that llama.cpp runs the same way."""


def _check_exportable(config) -> None:
    if getattr(config, "use_moe", False):
        raise GGUFExportError(
            "GGUF export covers the dense MiniMind presets only: a MoE MiniMind (routed + shared experts, "
            "softmax top-k gating) has no llama.cpp architecture that computes the same function. Export a dense "
            "checkpoint, or serve the MoE model with `minimind serve`"
        )
    if getattr(config, "rope_yarn", None):
        raise GGUFExportError(
            "GGUF export of a YaRN-scaled MiniMind is not supported: llama.cpp's YaRN parameters are not checked "
            "against MiniMind's; export the model without rope_yarn"
        )


def interleave_rotary_rows(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Reorder a query/key projection's rows from the half-split rotary layout to llama.cpp's interleaved one."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)


def half_split_rotary_rows(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """The inverse of :func:`interleave_rotary_rows`."""
    rows = weight.shape[0]
    return weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)


_LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_tensors(model) -> dict[str, torch.Tensor]:
    """The model's weights under llama.cpp's names, queries and keys in the interleaved rotary order."""
    config = model.config
    state = model.state_dict()
    tensors = {
        "token_embd.weight": state["model.embed_tokens.weight"],
        "output_norm.weight": state["model.norm.weight"],
    }
    for layer in range(config.num_hidden_layers):
        for ours, theirs in _LAYER_TENSORS.items():
            weight = state[f"model.layers.{layer}.{ours}"]
            if ours.startswith("self_attn.q_proj"):
                weight = interleave_rotary_rows(weight, config.num_attention_heads)
            elif ours.startswith("self_attn.k_proj"):
                weight = interleave_rotary_rows(weight, config.num_key_value_heads)
            tensors[f"blk.{layer}.{theirs}"] = weight
    head = state.get("lm_head.weight")
    if head is not None and not torch.equal(head, tensors["token_embd.weight"]):
        raise GGUFExportError("the output head is not tied to the embedding; MiniMind checkpoints tie them")
    return tensors


def _tokenizer_vocab(tokenizer) -> tuple[list[str], list[int], list[str]]:
    """``(tokens, token types, merges)`` of a byte-level BPE tokenizer, as llama.cpp's ``gpt2`` model reads them."""
    import gguf

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE":
        raise GGUFExportError(f"GGUF export needs a byte-level BPE tokenizer, this one is {spec['model']['type']}")
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True):
        raise GGUFExportError(f"GGUF export needs the GPT-2 byte-level pre-tokenizer, this one is {pre}")
    vocab: dict[str, int] = dict(spec["model"]["vocab"])
    special = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    vocab.update(special)
    by_id = {i: t for t, i in vocab.items()}
    if sorted(by_id) != list(range(len(by_id))):
        raise GGUFExportError("the tokenizer's ids are not contiguous from 0")
    tokens = [by_id[i] for i in range(len(by_id))]
    types = [int(gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL) for t in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    return tokens, types, merges


def export_gguf(model, tokenizer, path: str | os.PathLike[str], *, dtype: str = "f32", name: str | None = None) -> Path:
    """Write ``model`` (a dense MiniMind) and ``tokenizer`` as one GGUF file at ``path``; returns the path."""
    import gguf

    if dtype not in GGUF_DTYPES:
        raise GGUFExportError(f"unknown GGUF dtype {dtype!r}: use one of {GGUF_DTYPES}")
    config = model.config
    _check_exportable(config)
    tensors = gguf_tensors(model)
    tokens, types, merges = _tokenizer_vocab(tokenizer)
    if len(tokens) > config.vocab_size:
        raise GGUFExportError(
            f"the tokenizer has {len(tokens)} tokens but the model's vocab_size is {config.vocab_size}"
        )
    # llama.cpp wants one token string per embedding row; rows the tokenizer never emits get placeholders
    for i in range(len(tokens), config.vocab_size):
        tokens.append(f"[PAD{i}]")
        types.append(int(gguf.TokenType.UNUSED))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head_dim = config.hidden_size // config.num_attention_heads
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name(name or "MiniMind")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(config.rope_theta))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_rope_dimension_count(head_dim)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # llama.cpp's name for the GPT-2 regex
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_unk_token_id(tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
    for tensor_name, tensor in tensors.items():
        array = tensor.detach().to(torch.float32).cpu().numpy()
        if dtype == "f16" and array.ndim > 1:
            array = array.astype(np.float16)
        writer.add_tensor(tensor_name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def read_gguf(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(metadata, tensors)`` of a GGUF file read back with the ``gguf`` package (tensors in numpy order)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    metadata: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        try:
            metadata[key] = field.contents()
        except Exception:  # a field type this gguf version cannot turn into Python
            metadata[key] = None
    tensors = {t.name: np.asarray(t.data).reshape([int(d) for d in reversed(t.shape)]) for t in reader.tensors}
    return metadata, tensors


def compare_with_llama_cpp(
    path: str | os.PathLike[str],
    model,
    tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int = 24,
    system: str | None = None,
    n_threads: int = 2,
) -> dict[str, Any]:
    """Greedy tokens of llama.cpp (``llama-cpp-python``) on ``path`` against transformers on ``model``.

    Each prompt is put through the project's translation prompt; both sides get the same token ids (and
    llama.cpp's own tokenization of the prompt text is compared with the tokenizer's). Returns a dict with
    one row per prompt and the share of prompts whose greedy tokens are identical.
    """
    from llama_cpp import Llama

    from ..prompts import translation_messages

    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    llm = Llama(model_path=str(path), n_ctx=512, n_threads=n_threads, n_batch=512, logits_all=True, verbose=False)
    rows = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template(
            translation_messages(prompt, system=system), add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model.generate(
                input_ids=torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=sorted(stops),
            )
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float().numpy()
        hf_tokens = [int(t) for t in out[0, len(ids) :].tolist()]  # one row: no padding, the stop token kept
        llm.reset()
        llm.eval(ids)
        cpp_logits = np.asarray(llm.scores[len(ids) - 1], dtype=np.float32)
        llm.reset()
        cpp_tokens: list[int] = []
        for token in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            cpp_tokens.append(int(token))
            if token in stops or len(cpp_tokens) >= max_new_tokens:
                break
        rows.append(
            {
                "prompt": prompt,
                "prompt_tokens": len(ids),
                "tokenization_equal": llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) == ids,
                "transformers": hf_tokens,
                "llama_cpp": cpp_tokens,
                "equal": hf_tokens == cpp_tokens,
                "max_abs_logit_diff": float(np.abs(cpp_logits - logits[: cpp_logits.shape[0]]).max()),
                "text": tokenizer.decode(cpp_tokens, skip_special_tokens=True),
            }
        )
    if hasattr(llm, "close"):
        llm.close()
    equal = sum(r["equal"] for r in rows)
    return {
        "file": str(path),
        "prompts": len(rows),
        "equal": equal,
        "share_equal": equal / max(len(rows), 1),
        "rows": rows,
    }
