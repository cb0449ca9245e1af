"""The KV-cache contract, on whichever transformers is installed (4.57, 5.x, the newest).

transformers 5.24 renamed the cache argument and output field from ``past_key_values`` to ``cache``; a
model that ignored the new name still generated, silently wrong. These tests compare every cached path
with a hand-written uncached loop, so the next rename that slips through fails here loudly.
"""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
import transformers
from transformers.cache_utils import Cache

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.interop.llama import to_llama
from minimind_hf.modeling_minimind import CACHE_NAME

YARN = {"factor": 4.0, "original_max_position_embeddings": 16, "beta_fast": 32.0, "beta_slow": 1.0}
SHAPES = {
    "dense": dict(preset="tiny"),
    "moe": dict(preset="tiny-moe"),
    "yarn": dict(preset="tiny", rope_yarn=YARN),
}


def _model(shape: str, attn: str = "sdpa") -> MiniMindForCausalLM:
    spec = dict(SHAPES[shape])
    torch.manual_seed(0)
    # large weights: every next token depends on the context, so a cache that is dropped or ignored changes
    # the argmax (with the usual 0.02 a random model's argmax mostly follows the current token alone)
    config = MiniMindConfig.from_preset(spec.pop("preset"), max_position_embeddings=128, initializer_range=0.2, **spec)
    config._attn_implementation = attn
    return MiniMindForCausalLM(config).eval()


def test_the_test_model_depends_on_its_context():
    model = _model("dense")
    ids = torch.randint(3, 6400, (32, 8))
    with torch.no_grad():
        with_context = model(input_ids=ids).logits[:, -1].argmax(-1)
        alone = model(input_ids=ids[:, -1:]).logits[:, -1].argmax(-1)
    assert (with_context != alone).float().mean() > 0.9


def _left_padded_batch():
    torch.manual_seed(1)
    ids = torch.randint(3, 6400, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    mask[2, :6] = 0
    ids[mask == 0] = 0
    return ids, mask


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def _uncached_greedy(model, ids, mask, steps: int) -> torch.Tensor:
    """The reference: every step is a full forward over the whole sequence, no cache anywhere."""
    for _ in range(steps):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask), use_cache=False).logits
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
        mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
    return ids


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_cached_greedy_generate_equals_uncached_loop(shape, attn):
    model = _model(shape, attn)
    ids, mask = _left_padded_batch()
    steps = 12  # 9 + 12 tokens: past YaRN's original 16-token context
    cached = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=steps,
        do_sample=False,
        use_cache=True,
        pad_token_id=0,
        eos_token_id=None,
    )
    assert torch.equal(cached, _uncached_greedy(model, ids, mask, steps))


@pytest.mark.parametrize("shape", ["dense", "moe"])
def test_seeded_sampling_is_identical_with_and_without_cache(shape):
    model = _model(shape)
    ids, mask = _left_padded_batch()
    runs = []
    for use_cache in (True, False):
        torch.manual_seed(123)
        runs.append(
            model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=10,
                do_sample=True,
                temperature=1.0,
                top_k=50,
                use_cache=use_cache,
                pad_token_id=0,
                eos_token_id=None,
            )
        )
    assert torch.equal(runs[0], runs[1])


def test_beam_search_cached_equals_uncached():
    model = _model("dense")
    ids, mask = _left_padded_batch()
    kw = dict(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=8,
        num_beams=3,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
    )
    assert torch.equal(model.generate(use_cache=True, **kw), model.generate(use_cache=False, **kw))


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_logits_with_a_cache_equal_llama(attn):
    model = _model("dense", attn)
    llama = to_llama(model).eval()
    ids, mask = _left_padded_batch()
    prefix = 5
    pos = _positions(mask)
    with torch.no_grad():
        ours = model(
            input_ids=ids[:, :prefix], attention_mask=mask[:, :prefix], position_ids=pos[:, :prefix], use_cache=True
        )
        theirs = llama(
            input_ids=ids[:, :prefix], attention_mask=mask[:, :prefix], position_ids=pos[:, :prefix], use_cache=True
        )
        ours_cache, theirs_cache = getattr(ours, CACHE_NAME), getattr(theirs, CACHE_NAME)
        assert isinstance(ours_cache, Cache) and ours_cache.get_seq_length() == prefix
        rest = dict(input_ids=ids[:, prefix:], attention_mask=mask, position_ids=pos[:, prefix:])
        ours2 = model(**rest, **{CACHE_NAME: ours_cache}).logits
        theirs2 = llama(**rest, **{CACHE_NAME: theirs_cache}).logits
        full = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
    assert ours_cache.get_seq_length() == ids.shape[1]  # the cache we passed was used and extended
    assert (ours2 - theirs2).abs().max().item() < 1e-5
    keep = mask[:, prefix:].bool()
    assert (ours2[keep] - full[:, prefix:][keep]).abs().max().item() < 1e-5


def test_the_cache_is_taken_under_both_names():
    model = _model("dense")
    ids = torch.randint(3, 6400, (1, 6))
    with torch.no_grad():
        logits = {}
        for name in ("cache", "past_key_values"):
            prefill = getattr(model(input_ids=ids[:, :4], use_cache=True), CACHE_NAME)
            logits[name] = model(input_ids=ids[:, 4:], **{name: prefill}).logits
            assert prefill.get_seq_length() == 6, f"the cache passed as `{name}` was ignored"
        full = model(input_ids=ids, use_cache=False).logits[:, 4:]
    for name, value in logits.items():
        assert (value - full).abs().max().item() < 1e-5, name
    one, other = (getattr(model(input_ids=ids, use_cache=True), CACHE_NAME) for _ in range(2))
    with pytest.raises(ValueError, match="both `cache` and `past_key_values`"):
        model(input_ids=ids, cache=one, past_key_values=other)


def test_no_cache_is_returned_without_use_cache():
    model = _model("dense")
    out = model(input_ids=torch.randint(3, 6400, (1, 4)), use_cache=False)
    assert getattr(out, CACHE_NAME) is None


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_the_projects_calls_raise_no_deprecation_warning(tmp_path, tokenizer):
    """Forward with a cache, generate, the stage runner's argument setup and evaluation's translate.

    Nothing the project itself calls is deprecated on the installed stack.
    """
    from minimind_hf.evaluation import translate
    from minimind_hf.training.runner import parse_args

    transformers.logging.get_logger("x").warning_once.cache_clear()  # warning_once would hide a repeat
    handler = _Records()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    model = _model("dense")
    ids = torch.randint(3, 6400, (2, 5))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with torch.no_grad():
                out = model(input_ids=ids, use_cache=True)
                model(input_ids=ids[:, -1:], **{CACHE_NAME: getattr(out, CACHE_NAME)})
            model.generate(input_ids=ids, max_new_tokens=3, do_sample=False, pad_token_id=0)
            for recipe in ("pretrain", "sft", "lora", "dpo"):
                parse_args([f"recipes/tiny/{recipe}.yaml", "--output_dir", str(tmp_path / recipe)])
            translate(model, tokenizer, ["The rate."], batch_size=1, max_new_tokens=3, show_progress=False)
    finally:
        logger.removeHandler(handler)
    deprecations = [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, (DeprecationWarning, FutureWarning)) and "deprecat" in str(w.message)
    ]
    deprecations += [m for m in handler.messages if "deprecat" in m]
    assert not deprecations, deprecations


def test_generation_check_passes_a_sound_model_and_names_a_broken_cache(tokenizer, monkeypatch):
    """What `minimind eval` (and so `make all`) runs first: it must fail on a model that ignores its cache."""
    from minimind_hf.evaluation import GenerationCheckError, check_cached_generation
    from minimind_hf.modeling_minimind import MiniMindModel

    model = _model("dense")
    report = check_cached_generation(model, tokenizer, max_new_tokens=8)
    assert report["passed"] and report["tokens_checked"] >= 4

    forward = MiniMindModel.forward

    def forgetful(self, *args, cache=None, past_key_values=None, **kwargs):  # the 5.24 failure: cache ignored
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(MiniMindModel, "forward", forgetful)
    with pytest.raises(GenerationCheckError, match="cached greedy generation differs from the uncached model"):
        check_cached_generation(model, tokenizer, max_new_tokens=8)


def test_eval_command_exits_non_zero_when_generation_is_broken(tmp_path, tokenizer, monkeypatch, capsys):
    from minimind_hf.cli import main
    from minimind_hf.modeling_minimind import MiniMindModel
    from minimind_hf.tokenization import save_tokenizer

    model = _model("dense")
    model.save_pretrained(tmp_path / "ckpt")
    save_tokenizer(tokenizer, tmp_path / "ckpt")
    test = tmp_path / "test.jsonl"
    test.write_text('{"en": "The rate.", "zh": "利率。"}\n', encoding="utf-8")
    forward = MiniMindModel.forward
    monkeypatch.setattr(
        MiniMindModel, "forward", lambda self, *a, cache=None, past_key_values=None, **kw: forward(self, *a, **kw)
    )
    assert main(["eval", str(tmp_path / "ckpt"), "--test", str(test), "--max-new-tokens", "4"]) == 1
    assert "cached greedy generation differs" in capsys.readouterr().err
