"""The benchmarks' own arithmetic: the FLOPs formula, variant names, paired rounds, tables."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import common  # noqa: E402
import train_throughput  # noqa: E402
from minimind_hf import MiniMindConfig  # noqa: E402


def test_matmul_weights_count_every_linear_a_token_meets():
    config = MiniMindConfig.from_preset("minimind-26m")
    from minimind_hf import MiniMindForCausalLM

    model = MiniMindForCausalLM(config)
    linear = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embed_tokens" not in n)
    tied_head = config.vocab_size * config.hidden_size
    assert train_throughput.matmul_weights_per_token(config) == linear + tied_head
    seq = 512
    attention = 12 * config.num_hidden_layers * seq * config.hidden_size
    assert train_throughput.flops_per_token(config, seq) == 6 * (linear + tied_head) + attention


def test_moe_counts_active_experts_only():
    dense = MiniMindConfig.from_preset("minimind-moe-145m", use_moe=False)
    moe = MiniMindConfig.from_preset("minimind-moe-145m")
    mlp = 3 * moe.hidden_size * moe.intermediate_size
    extra = moe.num_hidden_layers * (moe.hidden_size * moe.n_routed_experts + 2 * mlp)  # top-2 + 1 shared vs 1
    assert train_throughput.matmul_weights_per_token(moe) - train_throughput.matmul_weights_per_token(dense) == extra


def test_minimind_3_preset_is_the_64m_model():
    from minimind_hf import MiniMindForCausalLM

    params = sum(p.numel() for p in MiniMindForCausalLM(MiniMindConfig.from_preset("minimind-3")).parameters())
    assert 63e6 < params < 65e6


def test_variants_parse_and_bad_ones_are_named():
    assert train_throughput.parse_variant("llama:sdpa+compile+fused") == {
        "model": "llama", "attn": "sdpa", "compile": True, "fused": True, "liger": False}
    with pytest.raises(SystemExit, match="bad variant 'gpt:sdpa'"):
        train_throughput.parse_variant("gpt:sdpa")
    moe = MiniMindConfig.from_preset("tiny-moe")
    assert "no Llama" in train_throughput.why_not(train_throughput.parse_variant("llama:sdpa"), moe, "cpu")
    assert "CUDA" in train_throughput.why_not(train_throughput.parse_variant("minimind:sdpa+liger"), moe, "cpu")


def test_interleaved_rounds_rotate_and_paired_ratio():
    calls = []
    rows = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = common.interleaved(rows, rounds=3, steps=1, device="cpu")
    assert calls == list("abc") + list("bca") + list("cab")
    assert all(len(v) == 3 for v in samples.values())
    assert common.paired_ratio({"x": [1.0, 2.0, 4.0], "y": [2.0, 2.0, 2.0]}, "x", "y") == 1.0


def test_table_formats_numbers_and_flags():
    table = common.format_table([("a", "A"), ("b", "B"), ("c", "C")], [{"a": 12345.6, "b": True, "c": None}])
    assert table.splitlines()[2] == "| 12,346 | yes | - |"
