"""The benchmarks' own arithmetic: the FLOPs formula, variant names, paired rounds, tables."""

import sys
from pathlib import Path

import pytest
import torch

from tests.paths import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

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
        "model": "llama",
        "attn": "sdpa",
        "compile": True,
        "fused": True,
        "liger": False,
    }
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


def test_loss_agreement_smooths_and_measures_the_gap_after_warm_up():
    import loss_agreement

    assert loss_agreement.smooth([4.0, 2.0, 0.0, 2.0], window=2) == [4.0, 3.0, 1.0, 1.0]
    reference = {"losses": [10.0, 8.0, 6.0, 5.0, 4.0], "eval_loss": 4.0}
    run = {"losses": [10.0, 9.0, 6.0, 5.1, 4.0], "eval_loss": 4.04}
    stats = loss_agreement.compare(reference, run, window=1, skip=1)
    assert stats["max_gap_pct"] == pytest.approx(12.5) and stats["max_gap_step"] == 2  # 9 vs 8, step 2
    assert stats["eval_gap_pct"] == pytest.approx(1.0)
    assert len(stats["gaps"]) == 4 and stats["gaps"][-1] == 0.0
    later = loss_agreement.compare(reference, run, window=1, skip=2)  # the warm-up is left out
    assert later["max_gap_pct"] == pytest.approx(2.0) and later["max_gap_step"] == 4


def test_recipe_throughput_counts_real_and_padded_tokens_of_training_forwards_only():
    import recipe_throughput

    clock = recipe_throughput.TokenClock(warmup=0)
    model = torch.nn.Linear(2, 2)
    ids = torch.zeros(2, 4, dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    clock._count(model.train(), (), {"input_ids": ids, "attention_mask": mask})
    clock._count(model.train(), (ids,), {})  # packed rows: no mask, every position is real
    with torch.no_grad():
        clock._count(model.train(), (), {"input_ids": ids})  # DPO's reference forward
    clock._count(model.eval(), (), {"input_ids": ids})  # evaluation
    assert (clock.tokens, clock.real_tokens) == (16, 14)


def test_recipe_throughput_chains_each_stage_to_the_one_before():
    import recipe_throughput

    outputs = {"pretrain": Path("p"), "sft": Path("s"), "lora": Path("l")}
    assert recipe_throughput._start_from("pretrain", outputs, []) == []
    assert recipe_throughput._start_from("sft", outputs, []) == ["--model_name_or_path", "p"]
    assert recipe_throughput._start_from("dpo", outputs, []) == [
        "--model_name_or_path",
        "s",
        "--adapter_name_or_path",
        "l",
    ]
    assert recipe_throughput._start_from("grpo", {**outputs, "dpo": Path("d")}, []) == ["--model_name_or_path", "d"]
    assert recipe_throughput._start_from("lora", {}, []) == []  # on its own: the recipe's own paths
    assert recipe_throughput._start_from("sft", outputs, ["--model_name_or_path", "x"]) == []


def test_recipe_throughput_projects_an_epoch_recipe_from_its_data_loader():
    import types

    import recipe_throughput

    written = types.SimpleNamespace(max_steps=-1, num_train_epochs=2, gradient_accumulation_steps=4)
    assert recipe_throughput._recipe_steps(written, batches_per_epoch=10) == 6  # 2 epochs x ceil(10 / 4)
    assert recipe_throughput._recipe_steps(written, batches_per_epoch=None) is None  # shown as "-", not negative
    assert recipe_throughput._recipe_steps(types.SimpleNamespace(max_steps=300), batches_per_epoch=None) == 300


def test_paired_chrf_interval_holds_zero_for_a_copy_and_not_for_a_clear_gain():
    import paired_chrf

    refs = ["開啟檔案", "儲存文件", "利率", "淨現值", "關閉視窗", "新增帳戶"] * 5
    worse = ["開", "儲", "x", "淨", "關", "新"] * 5
    base, other, low, high = paired_chrf.paired_bootstrap(worse, list(worse), refs, samples=200)
    assert base == other and low == high == 0.0
    base, other, low, high = paired_chrf.paired_bootstrap(worse, refs, refs, samples=200)
    assert other == 100.0 and other > base and low > 0
