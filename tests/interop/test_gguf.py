"""GGUF export: the file read back with the gguf package, MoE refused, and (slow) llama.cpp's greedy tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from minimind_hf import MiniMindConfig, MiniMindForCausalLM  # noqa: E402
from minimind_hf.cli import main as cli  # noqa: E402
from minimind_hf.interop.gguf import (  # noqa: E402
    GGUFExportError,
    export_gguf,
    half_split_rotary_rows,
    interleave_rotary_rows,
    read_gguf,
)

PROMPTS = ["The interest rate per period.", "Net income for the quarter", "Open the file"]


def test_rotary_row_order_round_trips_and_pairs_halves():
    weight = torch.arange(2 * 8 * 3, dtype=torch.float32).reshape(16, 3)  # 2 heads of dim 8
    mixed = interleave_rotary_rows(weight, heads=2)
    assert torch.equal(half_split_rotary_rows(mixed, heads=2), weight)
    # head 0: half-split rows 0..3 | 4..7 become the pairs (0, 4), (1, 5), ...
    assert mixed[:8, 0].tolist() == weight[[0, 4, 1, 5, 2, 6, 3, 7], 0].tolist()


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_gguf_file_reads_back(tmp_path, tiny_model, tokenizer, dtype):
    path = export_gguf(tiny_model, tokenizer, tmp_path / "tiny.gguf", dtype=dtype)
    meta, tensors = read_gguf(path)
    config = tiny_model.config
    assert meta["general.architecture"] == "llama"
    assert meta["llama.block_count"] == config.num_hidden_layers
    assert meta["llama.attention.head_count_kv"] == config.num_key_value_heads
    assert meta["llama.rope.freq_base"] == pytest.approx(config.rope_theta)
    assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    assert len(meta["tokenizer.ggml.tokens"]) == config.vocab_size
    assert meta["tokenizer.ggml.tokens"][:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert "output.weight" not in tensors  # tied: llama.cpp reuses token_embd
    assert len(tensors) == 2 + 9 * config.num_hidden_layers
    state = tiny_model.state_dict()
    tolerance = 0 if dtype == "f32" else 1e-3
    q = torch.from_numpy(tensors["blk.1.attn_q.weight"].astype(np.float32))
    k = torch.from_numpy(tensors["blk.1.attn_k.weight"].astype(np.float32))
    assert torch.allclose(
        half_split_rotary_rows(q, config.num_attention_heads),
        state["model.layers.1.self_attn.q_proj.weight"],
        atol=tolerance,
    )
    assert torch.allclose(
        half_split_rotary_rows(k, config.num_key_value_heads),
        state["model.layers.1.self_attn.k_proj.weight"],
        atol=tolerance,
    )
    down = tensors["blk.0.ffn_down.weight"]
    assert down.dtype == (np.float32 if dtype == "f32" else np.float16)
    assert tensors["output_norm.weight"].dtype == np.float32
    assert np.allclose(down.astype(np.float32), state["model.layers.0.mlp.down_proj.weight"].numpy(), atol=tolerance)


def test_moe_is_refused_with_the_reason(tmp_path, tokenizer):
    moe = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe"))
    with pytest.raises(GGUFExportError, match="MoE"):
        export_gguf(moe, tokenizer, tmp_path / "moe.gguf")
    assert not (tmp_path / "moe.gguf").exists()


def test_cli_export_gguf(saved_tiny, tmp_path, capsys):
    assert cli(["export", str(saved_tiny), str(tmp_path / "out"), "--to", "gguf", "--gguf-dtype", "f32"]) == 0
    assert (tmp_path / "out" / "ckpt-f32.gguf").is_file()
    assert "GGUF" in capsys.readouterr().out


def test_cli_export_refuses_moe(tmp_path, tokenizer):
    from minimind_hf.tokenization import save_tokenizer

    moe = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe"))
    moe.save_pretrained(tmp_path / "moe")
    save_tokenizer(tokenizer, tmp_path / "moe")
    with pytest.raises(SystemExit, match="MoE"):
        cli(["export", str(tmp_path / "moe"), str(tmp_path / "moe.gguf"), "--to", "gguf"])
    with pytest.raises(SystemExit, match="MoE"):
        cli(["export", str(tmp_path / "moe"), str(tmp_path / "moe-llama"), "--to", "llama"])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_llama_cpp_generates_the_same_greedy_tokens(tmp_path, tokenizer, dtype):
    pytest.importorskip("llama_cpp")
    from minimind_hf.interop.gguf import compare_with_llama_cpp

    torch.manual_seed(0)  # a wide init, so that greedy replies are long and varied
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("mini", initializer_range=0.1)).eval()
    path = export_gguf(model, tokenizer, tmp_path / f"mini-{dtype}.gguf", dtype=dtype)
    report = compare_with_llama_cpp(path, model, tokenizer, PROMPTS, max_new_tokens=16)
    assert all(row["tokenization_equal"] for row in report["rows"])
    assert all(len(row["transformers"]) > 1 for row in report["rows"])
    assert report["equal"] == len(PROMPTS), report["rows"]
