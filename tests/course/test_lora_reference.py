"""The hand-written LoRA reference (minimind_hf.course.lora_reference) against PEFT, on tiny float32 models.

From identical base weights and identical, non-zero A/B matrices, PEFT and the reference must give the
same logits and the same gradients; training must move only adapter weights; adapters must survive
save/reload; merging must not change the logits; dropout must touch the LoRA branch only.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable

import pytest
import torch
from peft import PeftModel, get_peft_model, inject_adapter_in_model
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.course.lora_reference import (
    LoRALinear,
    apply_lora,
    copy_peft_to_reference,
    copy_reference_to_peft,
    count_trainable,
    load_lora_state_dict,
    lora_state_dict,
    mark_only_lora_trainable,
    merge_lora,
    unmerge_lora,
)
from minimind_hf.training.lora import (
    DEFAULT_ALPHA,
    DEFAULT_DROPOUT,
    DEFAULT_R,
    DEFAULT_TARGET_MODULES,
    peft_config,
)

ATOL = 1e-6  # float32 agreement asked of PEFT vs the reference


# ---------------------------------------------------------------------------------------------- helpers


def minimind(preset: str = "tiny") -> nn.Module:
    torch.manual_seed(0)
    return MiniMindForCausalLM(MiniMindConfig.from_preset(preset)).float().eval()


def llama() -> nn.Module:
    """A tiny stock Llama: the reference is not tied to MiniMind."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).float().eval()


MODELS: dict[str, Callable[[], nn.Module]] = {
    "minimind-tiny": minimind,
    "minimind-tiny-moe": lambda: minimind("tiny-moe"),
    "llama-tiny": llama,
}


def batch(model: nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    """Two rows, the second right-padded, with labels masked on the padding."""
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, model.config.vocab_size, (2, 12), generator=gen)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 8:] = 0
    input_ids[1, 8:] = 0
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


@torch.no_grad()
def randomize_peft_adapter(peft_model: nn.Module, seed: int = 2, scale: float = 0.1) -> None:
    """Give every PEFT A and B random values, B included, so the adapter changes the output."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in peft_model.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            param.copy_(torch.randn(param.shape, generator=gen) * scale)


def make_pair(
    make_base: Callable[[], nn.Module] = minimind,
    targets: tuple[str, ...] = DEFAULT_TARGET_MODULES,
    r: int = 4,
    alpha: float = 8,
    dropout: float = 0.0,
    use_rslora: bool = False,
) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(untouched base, PEFT-wrapped copy, reference-wrapped copy) with identical base weights and A/B."""
    base = make_base()
    peft_model = get_peft_model(copy.deepcopy(base), peft_config(r, alpha, dropout, targets, use_rslora))
    ref = apply_lora(copy.deepcopy(base), targets, r=r, alpha=alpha, dropout=dropout, use_rslora=use_rslora)
    randomize_peft_adapter(peft_model)
    copy_peft_to_reference(peft_model, ref)
    return base, peft_model, ref


def peft_layers(peft_model: nn.Module) -> dict[str, nn.Module]:
    """PEFT's LoRA layers by their name in the unwrapped model."""
    inner = peft_model.get_base_model()
    return {n: m for n, m in inner.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A}


def ref_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def adapter_pairs(peft_model: nn.Module, ref: nn.Module):
    """(name, PEFT A, PEFT B, reference A, reference B) for every adapted layer."""
    p, q = peft_layers(peft_model), ref_layers(ref)
    assert sorted(p) == sorted(q)
    for name in sorted(q):
        peft_a, peft_b = p[name].lora_A["default"].weight, p[name].lora_B["default"].weight
        yield name, peft_a, peft_b, q[name].lora_A, q[name].lora_B


def assert_same(actual: torch.Tensor, expected: torch.Tensor, atol: float = ATOL, what: str = "") -> None:
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0, msg=lambda m: f"{what}: {m}")


# ---------------------------------------------------------------------------------------------- layer


def test_layer_init_kaiming_a_zero_b_and_identity_at_start():
    torch.manual_seed(0)
    base = nn.Linear(256, 48, bias=True)
    layer = LoRALinear(base, r=16, alpha=32)
    assert layer.lora_A.shape == (16, 256) and layer.lora_B.shape == (48, 16)
    assert torch.count_nonzero(layer.lora_B) == 0
    bound = 1 / math.sqrt(256)  # kaiming_uniform_(a=sqrt(5)) on fan_in 256, like nn.Linear and PEFT
    assert layer.lora_A.abs().max() <= bound
    assert layer.lora_A.abs().max() > 0.95 * bound
    assert abs(layer.lora_A.std().item() - bound / math.sqrt(3)) < 0.05 * bound
    assert layer.scaling == 2.0
    # base frozen, adapter trainable, base object kept (not copied)
    assert layer.base_layer is base and not base.weight.requires_grad and not base.bias.requires_grad
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad
    x = torch.randn(3, 5, 256)
    assert torch.equal(layer(x), base(x))


def test_peft_init_uses_the_same_distribution():
    """PEFT's default A has the reference's Kaiming-uniform bound, and B is zero there too."""
    torch.manual_seed(0)
    peft_model = get_peft_model(minimind(), peft_config(r=8))
    for name, layer in peft_layers(peft_model).items():
        a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
        assert a.abs().max() <= 1 / math.sqrt(a.shape[1]), name
        assert torch.count_nonzero(b) == 0, name


@pytest.mark.parametrize("use_rslora, expected", [(False, 16 / 4), (True, 16 / 2)])
def test_scaling_matches_peft(use_rslora, expected):
    _, peft_model, ref = make_pair(r=4, alpha=16, use_rslora=use_rslora)
    for name, layer in ref_layers(ref).items():
        assert layer.scaling == pytest.approx(expected)
        assert peft_layers(peft_model)[name].scaling["default"] == pytest.approx(expected)


def test_layer_keeps_dtype_of_base():
    layer = LoRALinear(nn.Linear(32, 16).to(torch.bfloat16), r=4)
    assert layer.lora_A.dtype == layer.lora_B.dtype == torch.bfloat16
    assert layer(torch.randn(2, 32, dtype=torch.bfloat16)).dtype == torch.bfloat16
    assert layer.weight is layer.base_layer.weight


@pytest.mark.parametrize("kwargs", [dict(r=0), dict(r=-2), dict(r=2.5), dict(dropout=1.5)])
def test_layer_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        LoRALinear(nn.Linear(8, 8), **kwargs)
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Embedding(8, 8))


# ---------------------------------------------------------------------------------------------- wrapping


def test_default_targets_are_every_projection_and_match_peft():
    model = minimind()
    n_layers = model.config.num_hidden_layers
    peft_model = get_peft_model(copy.deepcopy(model), peft_config())
    apply_lora(model)
    wrapped = ref_layers(model)
    assert len(wrapped) == 7 * n_layers
    assert {name.rsplit(".", 1)[1] for name in wrapped} == set(DEFAULT_TARGET_MODULES)
    assert sorted(wrapped) == sorted(peft_layers(peft_model))
    assert isinstance(model.lm_head, nn.Linear) and isinstance(model.model.embed_tokens, nn.Embedding)
    # only the A and B matrices train, r * (in + out) per layer; PEFT counts the same
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.lora_{x}" for n in wrapped for x in "AB"}
    expected = sum(8 * (m.in_features + m.out_features) for m in wrapped.values())
    counted = count_trainable(model)
    assert counted.trainable == expected
    assert tuple(counted) == tuple(peft_model.get_nb_trainable_parameters())
    assert 0 < counted.percent < 100 and "trainable params" in str(counted)


@pytest.mark.parametrize("preset", ["tiny", "minimind-26m"])
def test_original_square_rule_covers_only_q_and_o(preset):
    """The module docstring's claim: the original "square linear layers" rule leaves q_proj and o_proj."""
    with torch.device("meta"):
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(preset))
    square = {
        name.rsplit(".", 1)[1]
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and m.in_features == m.out_features
    }
    assert square == {"q_proj", "o_proj"}


def test_target_suffix_semantics_match_peft_on_moe():
    """Suffix matching reaches every expert's projections and skips the router ``gate``, as PEFT does."""
    model = minimind("tiny-moe")
    targets = ("gate_proj", "self_attn.q_proj")
    peft_model = get_peft_model(copy.deepcopy(model), peft_config(target_modules=targets))
    apply_lora(model, targets)
    assert sorted(ref_layers(model)) == sorted(peft_layers(peft_model))
    assert any(".experts." in name for name in ref_layers(model))
    assert not any(name.endswith(".gate") for name in ref_layers(model))


@pytest.mark.parametrize("targets", [("q_proj",), ("block.q_proj",), ("q_proj", "proj")])
def test_target_names_match_like_peft_list_form(targets):
    """A target matches a full name or a dotted suffix, never a bare substring (``kq_proj``)."""

    def toy() -> nn.Module:
        inner = nn.ModuleDict({"q_proj": nn.Linear(4, 4), "proj": nn.Linear(4, 4)})
        return nn.ModuleDict({"q_proj": nn.Linear(4, 4), "kq_proj": nn.Linear(4, 4), "block": inner})

    injected = inject_adapter_in_model(peft_config(target_modules=targets), toy())
    peft_names = {n for n, m in injected.named_modules() if hasattr(m, "lora_A")}
    ref_names = set(ref_layers(apply_lora(toy(), targets)))
    assert ref_names == peft_names
    assert "kq_proj" not in ref_names and "block.q_proj" in ref_names


def test_peft_config_has_the_reference_defaults():
    config = peft_config()
    assert str(config.task_type) in ("CAUSAL_LM", "TaskType.CAUSAL_LM")
    assert (
        (config.r, config.lora_alpha, config.lora_dropout)
        == (DEFAULT_R, DEFAULT_ALPHA, DEFAULT_DROPOUT)
        == (8, 16, 0.05)
    )
    assert set(config.target_modules) == set(DEFAULT_TARGET_MODULES)
    assert config.bias == "none" and config.use_rslora is False and config.init_lora_weights is True
    ref_defaults = inspect.signature(apply_lora).parameters
    cfg_defaults = inspect.signature(peft_config).parameters
    for name in ("r", "alpha", "dropout", "target_modules", "use_rslora"):
        assert ref_defaults[name].default == cfg_defaults[name].default, name
    assert peft_config(modules_to_save=["lm_head"]).modules_to_save == ["lm_head"]


def test_training_does_not_import_the_course_references():
    """The teaching references are checked here, not loaded by every training run."""
    import subprocess
    import sys

    code = (
        "import sys, minimind_hf.training.runner, minimind_hf.training.lora; "
        "print(sorted(m for m in sys.modules if m.startswith('minimind_hf.course')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_bad_targets_give_clear_errors():
    model = minimind()
    with pytest.raises(ValueError, match="qproj") as err:
        apply_lora(model, ("qproj",))
    for name in (*DEFAULT_TARGET_MODULES, "lm_head", "model.layers.0.self_attn.q_proj"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match=r"\['typo'\]"):
        apply_lora(model, ("q_proj", "typo"))
    with pytest.raises(ValueError, match="MiniMindMLP, not an nn.Linear"):
        apply_lora(model, ("mlp",))
    with pytest.raises(TypeError, match="regular expression"):
        apply_lora(model, "q_proj")
    with pytest.raises(ValueError, match="empty"):
        apply_lora(model, ())
    assert not ref_layers(model)  # a refused call leaves the model untouched
    apply_lora(model, ("q_proj",))
    with pytest.raises(ValueError, match="already has a LoRA adapter"):
        apply_lora(model, ("q_proj",))


def test_copy_refuses_mismatched_models():
    base = minimind()
    peft_model = get_peft_model(copy.deepcopy(base), peft_config(r=4, alpha=8))
    with pytest.raises(ValueError, match="only in PEFT"):
        copy_peft_to_reference(peft_model, apply_lora(copy.deepcopy(base), ("q_proj",), r=4, alpha=8))
    with pytest.raises(ValueError, match="different r"):
        copy_peft_to_reference(peft_model, apply_lora(copy.deepcopy(base), r=2, alpha=4))
    with pytest.raises(ValueError, match="different alpha"):
        copy_peft_to_reference(peft_model, apply_lora(copy.deepcopy(base), r=4, alpha=16))


# ---------------------------------------------------------------------------------------------- PEFT parity


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize(
    "targets, r, alpha, use_rslora",
    [(DEFAULT_TARGET_MODULES, 4, 8, False), (("q_proj", "v_proj", "down_proj"), 8, 16, True)],
    ids=["all-projections", "subset-rslora"],
)
def test_same_logits_and_gradients_as_peft(model_name, targets, r, alpha, use_rslora):
    base, peft_model, ref = make_pair(MODELS[model_name], targets, r=r, alpha=alpha, use_rslora=use_rslora)
    inputs = batch(base)
    base_out = base(**inputs)
    peft_out = peft_model(**inputs)
    ref_out = ref(**inputs)
    assert_same(ref_out.logits, peft_out.logits, what="logits")
    assert_same(ref_out.loss, peft_out.loss, what="loss")
    # the adapter matters, so the comparison above could fail
    assert (ref_out.logits - base_out.logits).abs().max() > 1e-3

    peft_out.loss.backward()
    ref_out.loss.backward()
    idle = 0
    for name, pa, pb, ra, rb in adapter_pairs(peft_model, ref):
        if pa.grad is None:  # an MoE expert that no token was routed to: idle in both
            assert ".experts." in name and ra.grad is None and rb.grad is None, name
            idle += 1
            continue
        assert ra.grad is not None and ra.grad.abs().max() > 0 and rb.grad.abs().max() > 0, name
        assert_same(ra.grad, pa.grad, what=f"{name} grad A")
        assert_same(rb.grad, pb.grad, what=f"{name} grad B")
    assert idle < len(ref_layers(ref)) // 2
    frozen_grads = [n for n, p in ref.named_parameters() if not p.requires_grad and p.grad is not None]
    assert frozen_grads == []


def test_copy_reference_to_peft_gives_same_logits():
    base, peft_model, ref = make_pair()
    with torch.no_grad():  # new reference values, pushed the other way
        for layer in ref_layers(ref).values():
            layer.lora_B.mul_(-2.0)
    inputs = batch(base)
    assert (ref(**inputs).logits - peft_model(**inputs).logits).abs().max() > 1e-3
    copy_reference_to_peft(ref, peft_model)
    assert_same(ref(**inputs).logits, peft_model(**inputs).logits, what="logits")


def test_greedy_generation_matches_peft():
    base, peft_model, ref = make_pair()
    prompt = batch(base)["input_ids"][:1, :6]
    options = dict(max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        ref_tokens = ref.generate(input_ids=prompt, **options)
        peft_tokens = peft_model.generate(input_ids=prompt, **options)
    assert ref_tokens.shape == (1, 12)
    assert torch.equal(ref_tokens, peft_tokens)


# ---------------------------------------------------------------------------------------------- training


def test_training_moves_only_adapters_and_stays_in_lockstep():
    base, peft_model, ref = make_pair()
    peft_model.train()
    ref.train()
    before = {"peft": copy.deepcopy(peft_model.state_dict()), "ref": copy.deepcopy(ref.state_dict())}
    models = {"peft": peft_model, "ref": ref}
    optims = {
        key: torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        for key, model in models.items()
    }
    for step in range(3):
        inputs = batch(base, seed=10 + step)
        for key, model in models.items():
            optims[key].zero_grad()
            model(**inputs).loss.backward()
            optims[key].step()

    for key, model in models.items():
        after = model.state_dict()
        adapter_keys = [k for k in after if "lora_A" in k or "lora_B" in k]
        assert adapter_keys
        for k, value in after.items():
            if k in adapter_keys:
                assert not torch.equal(value, before[key][k]), f"{key}: {k} did not train"
            else:
                assert torch.equal(value, before[key][k]), f"{key}: frozen {k} changed"
    for name, pa, pb, ra, rb in adapter_pairs(peft_model, ref):
        assert_same(ra, pa, what=f"{name} A after training")
        assert_same(rb, pb, what=f"{name} B after training")


def test_mark_only_lora_trainable_refreezes_everything_else():
    model = apply_lora(minimind())
    for p in model.parameters():
        p.requires_grad_(True)
    mark_only_lora_trainable(model)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(lora_state_dict(model))


# ---------------------------------------------------------------------------------------------- save / reload


def test_peft_adapter_save_and_reload(tmp_path):
    base, peft_model, ref = make_pair()
    inputs = batch(base)
    expected = peft_model(**inputs).logits
    peft_model.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_config.json").is_file() and (tmp_path / "adapter_model.safetensors").is_file()
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert saved and all("lora_" in key for key in saved)  # the adapter only, no base weights

    reloaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path)
    assert (reloaded.peft_config["default"].r, reloaded.peft_config["default"].lora_alpha) == (4, 8)
    assert_same(reloaded(**inputs).logits, expected, what="reloaded PEFT logits")
    assert_same(ref(**inputs).logits, expected, what="reference logits")


def test_reference_adapter_save_and_reload(tmp_path):
    base, _, ref = make_pair()
    inputs = batch(base)
    state = lora_state_dict(ref)
    assert len(state) == 2 * len(ref_layers(ref))
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "adapter.safetensors")

    fresh = apply_lora(copy.deepcopy(base), r=4, alpha=8, dropout=0.0)
    assert (fresh(**inputs).logits - ref(**inputs).logits).abs().max() > 1e-3
    load_lora_state_dict(fresh, load_file(tmp_path / "adapter.safetensors"))
    assert_same(fresh(**inputs).logits, ref(**inputs).logits, what="reloaded reference logits")

    key = next(iter(state))
    with pytest.raises(ValueError, match="missing keys"):
        load_lora_state_dict(fresh, {k: v for k, v in state.items() if k != key})
    with pytest.raises(ValueError, match="shape"):
        load_lora_state_dict(fresh, {**state, key: torch.zeros(1)})


# ---------------------------------------------------------------------------------------------- merging


def test_merge_and_unload_keeps_logits():
    base, peft_model, ref = make_pair()
    inputs = batch(base)
    with torch.no_grad():
        unmerged = peft_model(**inputs).logits
        assert_same(ref(**inputs).logits, unmerged, what="reference before merge")

        merged_peft = peft_model.merge_and_unload()
        assert not any(isinstance(m, LoRALinear) or hasattr(m, "lora_A") for m in merged_peft.modules())
        assert_same(merged_peft(**inputs).logits, unmerged, atol=1e-5, what="PEFT merged")

        merge_lora(ref, unload=False)
        assert all(layer.merged for layer in ref_layers(ref).values())
        assert_same(ref(**inputs).logits, unmerged, atol=1e-5, what="reference merged")
        ref_weights = {k: v.clone() for k, v in ref.state_dict().items() if "base_layer" in k}
        for key, weight in ref_weights.items():  # same merged weights as PEFT
            assert_same(weight, merged_peft.state_dict()[key.replace(".base_layer", "")], what=key)

        merge_lora(ref, unload=False)  # no double merge
        for key, weight in ref_weights.items():
            assert torch.equal(ref.state_dict()[key], weight), key

        unmerge_lora(ref)  # round trip back to the base weights
        assert not any(layer.merged for layer in ref_layers(ref).values())
        base_state = base.state_dict()
        for key in ref_weights:
            assert_same(ref.state_dict()[key], base_state[key.replace(".base_layer", "")], what=key)
        assert_same(ref(**inputs).logits, unmerged, atol=1e-5, what="reference unmerged")

        plain = merge_lora(ref)  # unload: the model's own modules and state-dict keys again
        assert not ref_layers(plain)
        assert sorted(plain.state_dict()) == sorted(base_state)
        assert_same(plain(**inputs).logits, unmerged, atol=1e-5, what="reference merged and unloaded")


def test_merged_layer_skips_the_branch():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 8), r=4, alpha=4, dropout=0.0)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(5, 16)
    unmerged = layer(x)
    layer.merge()
    assert_same(layer(x), unmerged, what="merged")
    assert_same(layer(x), layer.base_layer(x), atol=0, what="merged forward is the base layer")


# ---------------------------------------------------------------------------------------------- dropout


def test_dropout_acts_on_the_branch_input_only():
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    layer = LoRALinear(base, r=4, alpha=8, dropout=1.0)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(6, 16)
    layer.train()
    assert torch.equal(layer(x), base(x))  # whole branch dropped, base output untouched
    layer.eval()
    assert (layer(x) - base(x)).abs().max() > 1e-3  # no dropout at eval

    layer = LoRALinear(base, r=4, alpha=8, dropout=0.5).train()
    nn.init.normal_(layer.lora_B)
    torch.manual_seed(123)
    out = layer(x)
    torch.manual_seed(123)
    dropped = nn.functional.dropout(x, p=0.5, training=True)
    expected = base(x) + layer.scaling * dropped @ layer.lora_A.T @ layer.lora_B.T
    assert_same(out, expected, what="dropout on the branch input")


def test_dropout_matches_peft_in_training_mode():
    base, peft_model, ref = make_pair(dropout=0.3)
    peft_model.train()
    ref.train()
    inputs = batch(base)
    torch.manual_seed(7)
    peft_logits = peft_model(**inputs).logits
    torch.manual_seed(7)
    ref_logits = ref(**inputs).logits
    assert_same(ref_logits, peft_logits, what="train-mode logits with dropout")
    torch.manual_seed(8)
    assert (ref(**inputs).logits - ref_logits).abs().max() > 1e-4  # dropout is really on
    peft_model.eval()
    ref.eval()
    assert_same(ref(**inputs).logits, peft_model(**inputs).logits, what="eval-mode logits")


def test_wrapping_in_lora_raises_no_deprecation_warning():
    """PEFT reads ``is_gradient_checkpointing`` on the model it wraps; transformers 5.24 deprecated that name.

    The model answers it through ``is_activation_checkpointing``, and both flags agree.
    """
    import warnings

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM
    from minimind_hf.training.lora import wrap_with_lora

    model = MiniMindForCausalLM(MiniMindConfig.from_preset("tiny"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        wrapped = wrap_with_lora(model, r=4, alpha=8)
        assert model.is_gradient_checkpointing is False
        checkpointing = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        checkpointing()
        assert model.is_gradient_checkpointing is True
    assert any(p.requires_grad for p in wrapped.parameters())
