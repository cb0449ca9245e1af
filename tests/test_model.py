"""MiniMind as a transformers model: config checks, Auto classes, saving, remote code, training features."""

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from minimind_hf import MiniMindConfig, MiniMindForCausalLM, check_tokenizer_fits
from minimind_hf.configuration_minimind import default_intermediate_size


def test_presets_and_sizes():
    assert default_intermediate_size(512) == 1408
    model = AutoModelForCausalLM.from_config(MiniMindConfig.from_preset("minimind-26m"))
    assert sum(p.numel() for p in model.parameters()) == 25_829_888
    config = MiniMindConfig.from_preset("minimind-moe-145m")
    assert (config.hidden_size, config.n_routed_experts, config.n_shared_experts, config.num_experts_per_tok) == (
        640,
        4,
        1,
        2,
    )
    with pytest.raises(ValueError, match="unknown MiniMind preset"):
        MiniMindConfig.from_preset("gpt-5")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_size=100, num_attention_heads=8), "not divisible by num_attention_heads"),
        (dict(num_attention_heads=8, num_key_value_heads=3), "not divisible by num_key_value_heads"),
        (dict(vocab_size=0), "vocab_size must be a positive integer"),
        (dict(use_moe=True, num_experts_per_tok=5, n_routed_experts=4), "num_experts_per_tok"),
        (dict(rope_yarn={"factor": 4}), "rope_yarn is missing"),
    ],
)
def test_inconsistent_config_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MiniMindConfig(**kwargs)


def test_tokenizer_larger_than_vocab_is_rejected(tokenizer):
    check_tokenizer_fits(MiniMindConfig.from_preset("tiny"), tokenizer)
    with pytest.raises(ValueError, match="tokenizer has 6400 tokens but the model's vocab_size is 4000"):
        check_tokenizer_fits(MiniMindConfig.from_preset("tiny", vocab_size=4000), tokenizer)


def test_auto_classes_and_save_load(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "minimind"
    assert saved["auto_map"]["AutoModelForCausalLM"].endswith("MiniMindForCausalLM")
    assert (tmp_path / "modeling_minimind.py").exists() and (tmp_path / "configuration_minimind.py").exists()
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MiniMindConfig)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MiniMindForCausalLM)
    # tied embeddings survive the round trip (and the meta-device initialisation of transformers 5)
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    ids = torch.randint(0, 6400, (2, 7))
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, tiny_model(input_ids=ids).logits, atol=1e-6)


def test_bf16_load_keeps_rotary_in_float32(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16)
    ids = torch.randint(0, 6400, (1, 40))
    with torch.no_grad():
        out = model(input_ids=ids).logits.float()
        ref = tiny_model(input_ids=ids).logits
    assert model.model.rotary_emb.inv_freq(torch.device("cpu")).dtype == torch.float32
    assert (out - ref).abs().max() < 0.05


def test_loads_with_remote_code_without_the_package(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    script = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "minimind_hf" or name.startswith("minimind_hf."):
            raise ImportError("package hidden for this test")
sys.meta_path.insert(0, Block())
import torch
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
assert "minimind_hf" not in sys.modules
torch.manual_seed(0)
print(type(m).__name__, float(m(input_ids=torch.tensor([[5, 6, 7]])).logits.sum()))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf")},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    name, total = out.stdout.split()
    with torch.no_grad():
        expected = float(tiny_model(input_ids=torch.tensor([[5, 6, 7]])).logits.sum())
    assert name == "MiniMindForCausalLM" and abs(float(total) - expected) < 1e-3


def test_checkpoint_of_another_architecture_is_named(tmp_path):
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=100,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    ).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="holds a 'llama' model, not MiniMind"):
        MiniMindForCausalLM.from_pretrained(tmp_path)


def test_sdpa_equals_eager():
    torch.manual_seed(0)
    config = MiniMindConfig.from_preset("tiny")
    eager = MiniMindForCausalLM(config).eval()
    eager.config._attn_implementation = "eager"
    sdpa = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).eval()
    sdpa.load_state_dict(eager.state_dict())
    sdpa.config._attn_implementation = "sdpa"
    ids = torch.randint(0, 6400, (2, 11))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    with torch.no_grad():
        a = eager(input_ids=ids, attention_mask=mask).logits[mask.bool()]
        b = sdpa(input_ids=ids, attention_mask=mask).logits[mask.bool()]
    assert (a - b).abs().max() < 1e-5


def test_loss_ignores_minus_100_and_shifts(tiny_model):
    ids = torch.randint(3, 6400, (1, 8))
    labels = ids.clone()
    labels[0, :5] = -100
    out = tiny_model(input_ids=ids, labels=labels)
    logits = out.logits[0, 4:7]  # predicts tokens 5, 6, 7
    expected = torch.nn.functional.cross_entropy(logits, ids[0, 5:8])
    assert torch.allclose(out.loss, expected, atol=1e-6)


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    config = MiniMindConfig.from_preset("tiny")
    plain = MiniMindForCausalLM(config).train()
    ckpt = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).train()
    ckpt.load_state_dict(plain.state_dict())
    if hasattr(ckpt, "activation_checkpointing_enable"):  # transformers >= 5.24's name
        ckpt.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        ckpt.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    ids = torch.randint(0, 6400, (2, 9))
    plain(input_ids=ids, labels=ids).loss.backward()
    ckpt(input_ids=ids, labels=ids).loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_moe_aux_loss_and_every_expert_gets_gradient():
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe")).train()
    ids = torch.randint(0, 6400, (2, 16))
    out = model(input_ids=ids, labels=ids)
    assert out.aux_loss is not None and out.aux_loss > 0
    lm_only = model.loss_function(logits=out.logits, labels=ids, vocab_size=6400)
    assert torch.allclose(out.loss, lm_only + out.aux_loss, atol=1e-6)
    out.loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
    model.eval()
    with torch.no_grad():
        assert model(input_ids=ids, labels=ids).loss.item() == pytest.approx(lm_only.item(), rel=1e-5)


def test_moe_routing_matches_dense_computation():
    """The routed sum equals a per-token loop over the chosen experts."""
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe")).eval()
    moe = model.model.layers[0].mlp
    x = torch.randn(2, 5, 64)
    idx, weight, _ = moe.gate(x)
    flat = x.reshape(-1, 64)
    expected = torch.stack(
        [
            sum(weight[t, s] * moe.experts[int(idx[t, s])](flat[t]) for s in range(idx.shape[1]))
            + moe.shared_experts[0](flat[t])
            for t in range(flat.shape[0])
        ]
    ).view(2, 5, 64)
    assert torch.allclose(moe(x), expected, atol=1e-6)
