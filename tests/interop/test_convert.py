"""Import from the original MiniMind layouts, checked against a direct implementation of the course model."""

import math

import pytest
import torch
import torch.nn.functional as F

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.interop.original import (
    config_from_original,
    detect_layout,
    interleaved_to_half_split,
    load_original,
)

COURSE_ARGS = dict(
    dim=64,
    n_layers=2,
    n_heads=4,
    n_kv_heads=2,
    vocab_size=6400,
    hidden_dim=None,
    norm_eps=1e-5,
    max_seq_len=128,
    rope_theta=1e4,
)


def _course_state_dict(seed=0, moe=False):
    """Random weights in the course layout (wq/wk/wv/wo, w1/w2/w3, tied output)."""
    g = torch.Generator().manual_seed(seed)
    dim, kv_dim, hidden = 64, 32, 192

    def w(*shape):
        return torch.randn(*shape, generator=g) * 0.05

    sd = {"tok_embeddings.weight": w(6400, dim), "norm.weight": 1 + w(dim)}
    sd["output.weight"] = sd["tok_embeddings.weight"]
    for i in range(2):
        p = f"layers.{i}."
        sd |= {
            p + "attention.wq.weight": w(dim, dim),
            p + "attention.wk.weight": w(kv_dim, dim),
            p + "attention.wv.weight": w(kv_dim, dim),
            p + "attention.wo.weight": w(dim, dim),
            p + "attention_norm.weight": 1 + w(dim),
            p + "ffn_norm.weight": 1 + w(dim),
            p + "attention.mask": torch.zeros(1),
        }
        ffn = [p + "feed_forward."]
        if moe:
            sd[p + "feed_forward.gate.weight"] = w(4, dim)
            ffn = [p + f"feed_forward.experts.{e}." for e in range(4)] + [p + "feed_forward.shared_experts."]
        for f in ffn:
            sd |= {f + "w1.weight": w(hidden, dim), f + "w2.weight": w(dim, hidden), f + "w3.weight": w(hidden, dim)}
    sd["pos_cis"] = torch.zeros(1)
    return sd


def _rms(x, weight, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _course_forward(sd, ids, theta=1e4, n_heads=4, n_kv=2):
    """The course model written out: complex interleaved rotary, causal attention, SwiGLU."""
    h = sd["tok_embeddings.weight"][ids]
    bsz, seq, dim = h.shape
    hd = dim // n_heads
    freqs = 1.0 / (theta ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))
    pos_cis = torch.polar(torch.ones(seq, hd // 2), torch.outer(torch.arange(seq).float(), freqs))

    def rotary(x):
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(xc * pos_cis[None, :, None, :]).flatten(3)

    mask = torch.full((seq, seq), float("-inf")).triu(1)
    for i in range(2):
        p = f"layers.{i}."
        x = _rms(h, sd[p + "attention_norm.weight"])
        q = (x @ sd[p + "attention.wq.weight"].T).view(bsz, seq, n_heads, hd)
        k = (x @ sd[p + "attention.wk.weight"].T).view(bsz, seq, n_kv, hd)
        v = (x @ sd[p + "attention.wv.weight"].T).view(bsz, seq, n_kv, hd)
        q, k = rotary(q), rotary(k)
        k = k.repeat_interleave(n_heads // n_kv, dim=2)
        v = v.repeat_interleave(n_heads // n_kv, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        att = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd) + mask, dim=-1) @ v
        h = h + att.transpose(1, 2).reshape(bsz, seq, dim) @ sd[p + "attention.wo.weight"].T
        x = _rms(h, sd[p + "ffn_norm.weight"])
        f = p + "feed_forward."
        h = h + (F.silu(x @ sd[f + "w1.weight"].T) * (x @ sd[f + "w3.weight"].T)) @ sd[f + "w2.weight"].T
    return _rms(h, sd["norm.weight"]) @ sd["output.weight"].T


def test_course_layout_matches_interleaved_reference():
    sd = _course_state_dict()
    model = load_original(sd, COURSE_ARGS).eval()
    model.config._attn_implementation = "eager"
    ids = torch.randint(0, 6400, (2, 16))
    with torch.no_grad():
        ours = model(input_ids=ids).logits
    reference = _course_forward(sd, ids)
    assert (ours - reference).abs().max().item() < 1e-5


def test_without_permutation_the_logits_differ():
    """The q/k row permutation is necessary: loading course weights naively gives other logits."""
    sd = _course_state_dict()
    model = load_original(sd, COURSE_ARGS).eval()
    with torch.no_grad():
        for i in range(2):
            model.model.layers[i].self_attn.q_proj.weight.copy_(sd[f"layers.{i}.attention.wq.weight"])
            model.model.layers[i].self_attn.k_proj.weight.copy_(sd[f"layers.{i}.attention.wk.weight"])
        ids = torch.randint(0, 6400, (1, 16))
        assert (model(input_ids=ids).logits - _course_forward(sd, ids)).abs().max().item() > 1e-3


def test_permutation_is_half_split_order():
    w = torch.arange(8.0).view(8, 1)  # one head of dim 8
    assert interleaved_to_half_split(w, 1).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]


def test_course_moe_layout_loads():
    sd = _course_state_dict(moe=True)
    model = load_original(
        sd, {**COURSE_ARGS, "use_moe": True, "n_routed_experts": 4, "n_shared_experts": True, "num_experts_per_tok": 2}
    )
    assert model.config.use_moe and len(model.model.layers[0].mlp.shared_experts) == 1
    assert torch.equal(
        model.model.layers[1].mlp.experts[3].down_proj.weight, sd["layers.1.feed_forward.experts.3.w2.weight"]
    )


def test_minimind2_layout_round_trip(tmp_path):
    torch.manual_seed(0)
    source = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe")).eval()
    sd = dict(source.state_dict())
    sd["model.freqs_cos"] = torch.zeros(4, 16)  # the original keeps rotary tables as buffers
    sd["model.freqs_sin"] = torch.zeros(4, 16)
    torch.save(sd, tmp_path / "full_sft_640_moe.pth")
    assert detect_layout(sd) == "minimind2"
    loaded = load_original(tmp_path / "full_sft_640_moe.pth", source.config).eval()
    ids = torch.randint(0, 6400, (1, 10))
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, source(input_ids=ids).logits)


def test_course_config_mapping():
    config = config_from_original(COURSE_ARGS, "course")
    assert (config.hidden_size, config.num_key_value_heads, config.rope_theta, config.intermediate_size) == (
        64,
        2,
        1e4,
        192,
    )


def test_foreign_checkpoint_is_rejected():
    with pytest.raises(ValueError, match="not a MiniMind checkpoint"):
        load_original({"transformer.wte.weight": torch.zeros(2, 2)}, COURSE_ARGS)
    bad = _course_state_dict()
    bad["layers.0.attention.wz.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected key"):
        load_original(bad, COURSE_ARGS)
