"""A dense MiniMind is a Llama: transformers' own LlamaForCausalLM is the oracle for its logits."""

import pytest
import torch

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.interop.llama import from_llama, to_llama
from minimind_hf.modeling_minimind import CACHE_NAME

ATOL = 1e-5


def _pair(attn="eager", **overrides):
    torch.manual_seed(0)
    config = MiniMindConfig.from_preset("tiny", max_position_embeddings=256, **overrides)
    config._attn_implementation = attn
    model = MiniMindForCausalLM(config).eval()
    # non-trivial norms so a mix-up of norm weights would show
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("layernorm.weight") or name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    return model, to_llama(model).eval()


def _padded_batch():
    torch.manual_seed(1)
    ids = torch.randint(3, 6400, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    mask[2, :7] = 0
    ids[mask == 0] = 0
    return ids, mask


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_logits_match_llama_with_padding(attn):
    model, llama = _pair(attn)
    ids, mask = _padded_batch()
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        ours = model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits
        theirs = llama(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits
    keep = mask.bool()
    assert (ours[keep] - theirs[keep]).abs().max().item() < ATOL
    assert ours.abs().max() > 0.1  # not a degenerate all-zero comparison


def test_logits_match_llama_with_kv_cache():
    model, llama = _pair()
    ids, mask = _padded_batch()
    prefix = 8
    with torch.no_grad():
        ours = model(input_ids=ids[:, :prefix], attention_mask=mask[:, :prefix], use_cache=True)
        theirs = llama(input_ids=ids[:, :prefix], attention_mask=mask[:, :prefix], use_cache=True)
        # the installed transformers' name for the cache argument and output (``cache`` from 5.24 on)
        ours2 = model(input_ids=ids[:, prefix:], attention_mask=mask, **{CACHE_NAME: getattr(ours, CACHE_NAME)}).logits
        theirs2 = llama(
            input_ids=ids[:, prefix:], attention_mask=mask, **{CACHE_NAME: getattr(theirs, CACHE_NAME)}
        ).logits
        full = model(input_ids=ids, attention_mask=mask).logits
    assert (ours2 - theirs2).abs().max().item() < ATOL
    # the cached continuation equals the uncached forward on the unpadded rows
    assert (ours2[0] - full[0, prefix:]).abs().max().item() < ATOL


def test_yarn_matches_llama_yarn():
    yarn = {"factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": 32.0, "beta_slow": 1.0}
    model, llama = _pair(rope_yarn=yarn)
    ids = torch.randint(3, 6400, (2, 100))
    with torch.no_grad():
        diff = (model(input_ids=ids).logits - llama(input_ids=ids).logits).abs().max().item()
    assert diff < ATOL


def test_greedy_generation_identical_to_llama():
    model, llama = _pair()
    ids, mask = _padded_batch()
    kwargs = dict(max_new_tokens=12, do_sample=False, pad_token_id=0, eos_token_id=None)
    ours = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
    theirs = llama.generate(input_ids=ids, attention_mask=mask, **kwargs)
    assert torch.equal(ours, theirs)


def test_round_trip_through_llama():
    model, llama = _pair()
    back = from_llama(llama)
    ours, theirs = model.state_dict(), back.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    fields = (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "rms_norm_eps",
        "rope_theta",
        "rope_yarn",
        "max_position_embeddings",
    )
    assert {f: getattr(back.config, f) for f in fields} == {f: getattr(model.config, f) for f in fields}


def test_moe_has_no_llama_equivalent():
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny-moe"))
    with pytest.raises(ValueError, match="use_moe"):
        to_llama(model)
