"""COMP7607B A2's checks as fixed-value cases.

Attention on a 4-dimensional, 2-head example (and a head size of 4, where the rotary pairs dimension i with i + d/2),
and the course-signature DPO loss ``dpo_loss(ref_probs, probs, mask, beta)`` --
``minimind_hf.course.dpo_loss.dpo_loss_from_token_logps`` -- on per-token log-probabilities. The expected values are
computed here in plain Python, not with the model's code.
"""

from __future__ import annotations

import math

import pytest
import torch

from minimind_hf import MiniMindConfig
from minimind_hf.course.dpo_loss import dpo_loss_from_token_logps
from minimind_hf.modeling_minimind import MiniMindAttention, MiniMindRotaryEmbedding


def _matvec(w, x):
    return [sum(w[r][c] * x[c] for c in range(len(x))) for r in range(len(w))]


def _reference_attention(x, wq, wk, wv, wo, n_heads, n_kv, theta):
    """Causal multi-head attention with half-split rotary, one position at a time, in plain Python."""
    seq, hidden = len(x), len(x[0])
    d = hidden // n_heads

    def rotate(vec, pos):  # per head: dimension i and i + d/2 turn by pos * theta^(-2i/d)
        out = list(vec)
        for h in range(len(vec) // d):
            for i in range(d // 2):
                angle = pos * theta ** (-2 * i / d)
                a, b = vec[h * d + i], vec[h * d + i + d // 2]
                out[h * d + i] = a * math.cos(angle) - b * math.sin(angle)
                out[h * d + i + d // 2] = b * math.cos(angle) + a * math.sin(angle)
        return out

    q = [rotate(_matvec(wq, x[t]), t) for t in range(seq)]
    k = [rotate(_matvec(wk, x[t]), t) for t in range(seq)]
    v = [_matvec(wv, x[t]) for t in range(seq)]
    group = n_heads // n_kv
    outputs = []
    for t in range(seq):
        concat = []
        for h in range(n_heads):
            g = h // group
            qh = q[t][h * d : (h + 1) * d]
            scores = [
                sum(a * b for a, b in zip(qh, k[s][g * d : (g + 1) * d], strict=True)) / math.sqrt(d)
                for s in range(t + 1)
            ]
            top = max(scores)
            weights = [math.exp(s - top) for s in scores]
            total = sum(weights)
            concat += [sum(weights[s] / total * v[s][g * d + j] for s in range(t + 1)) for j in range(d)]
        outputs.append(_matvec(wo, concat))
    return outputs


def _fixed(rows, cols, offset):
    return [[math.sin(offset + 0.7 * r + 0.3 * c) * 0.5 for c in range(cols)] for r in range(rows)]


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("hidden,n_heads,n_kv", [(4, 2, 2), (8, 2, 1)], ids=["A2-4dim-2heads", "head-size-4-gqa"])
def test_attention_on_a_fixed_example(hidden, n_heads, n_kv, implementation):
    config = MiniMindConfig(
        hidden_size=hidden,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv,
        num_hidden_layers=1,
        vocab_size=16,
        rope_theta=10000.0,
    )
    config._attn_implementation = implementation
    kv_dim = hidden // n_heads * n_kv
    wq, wk, wv, wo = (
        _fixed(hidden, hidden, 0.1),
        _fixed(kv_dim, hidden, 1.3),
        _fixed(kv_dim, hidden, 2.9),
        _fixed(hidden, hidden, 4.2),
    )
    x = [[math.cos(0.5 * t + 0.9 * c) for c in range(hidden)] for t in range(3)]
    attention = MiniMindAttention(config, layer_idx=0).eval()
    with torch.no_grad():
        for layer, w in (
            (attention.q_proj, wq),
            (attention.k_proj, wk),
            (attention.v_proj, wv),
            (attention.o_proj, wo),
        ):
            layer.weight.copy_(torch.tensor(w))
        hidden_states = torch.tensor([x])
        position_embeddings = MiniMindRotaryEmbedding(config)(hidden_states, torch.arange(3)[None])
        mask = torch.full((3, 3), float("-inf")).triu(1)[None, None]
        out, _ = attention(hidden_states, position_embeddings, attention_mask=mask)
    expected = _reference_attention(x, wq, wk, wv, wo, n_heads, n_kv, 10000.0)
    assert out[0].flatten().tolist() == pytest.approx([v for row in expected for v in row], abs=1e-6)


def test_course_dpo_loss_on_fixed_values():
    """Two pairs; rows 0-1 chosen, rows 2-3 rejected; each row's log-probability is its masked token mean."""
    ref = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, 0.0], [-1.0, -1.0, -1.0], [-2.0, -4.0, 0.0]])
    policy = torch.tensor([[-0.5, -1.5, -3.0], [-0.4, -0.6, 0.0], [-1.5, -1.5, -1.0], [-2.0, -3.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 1, 0]])
    beta = 0.5

    def mean(row, m):
        return sum(v for v, keep in zip(row, m, strict=True) if keep) / sum(m)

    losses = []
    for pair in range(2):
        c, r = pair, pair + 2
        chosen = mean(policy[c].tolist(), mask[c].tolist()) - mean(ref[c].tolist(), mask[c].tolist())
        rejected = mean(policy[r].tolist(), mask[r].tolist()) - mean(ref[r].tolist(), mask[r].tolist())
        losses.append(-math.log(1 / (1 + math.exp(-beta * (chosen - rejected)))))
    # pair 0: chosen +0.5, rejected -1/3 -> logit 0.41667; pair 1: chosen 0, rejected +0.5 -> logit -0.25
    assert losses == pytest.approx([0.5064, 0.8259], abs=1e-4)
    loss = dpo_loss_from_token_logps(ref, policy, mask, beta)
    assert loss.item() == pytest.approx(sum(losses) / 2, abs=1e-6)
    same = dpo_loss_from_token_logps(ref, ref.clone(), mask, beta)
    assert same.item() == pytest.approx(math.log(2), abs=1e-7)  # policy = reference: log 2


def test_the_course_signature_is_named_in_the_course_module():
    import minimind_hf.course.dpo_loss as dpo

    assert "dpo_loss(ref_probs, probs, mask, beta)" in dpo.__doc__
    assert "dpo_loss(ref_probs, probs, mask, beta)" in dpo.dpo_loss_from_token_logps.__doc__
