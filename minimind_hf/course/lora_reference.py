"""LoRA written out by hand: a reference to read top to bottom, checked against PEFT.

Training in this project uses PEFT (``peft.get_peft_model`` with :func:`minimind_hf.training.lora.peft_config`); this
module exists so that a reader can see every step LoRA takes in a few dozen lines, and so that the tests can
prove PEFT does exactly the same (same logits, same gradients, same merged weights). Its defaults are the
training defaults (:mod:`minimind_hf.training.lora`). The layer itself, and the update it learns, are in
:mod:`.lora_layer`; this module wraps a model with it, counts, saves and loads the adapter, merges it, and copies
adapters between PEFT and the reference.

Typical use::

    model = apply_lora(model, r=8, alpha=16)            # wraps layers, freezes everything else
    print(count_trainable(model))                       # trainable / total parameters
    ...train...
    adapter = lora_state_dict(model)                    # only the A and B matrices
    model = merge_lora(model)                           # plain nn.Linear layers again, update folded in
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import torch
from peft.tuners.lora import LoraLayer
from torch import nn

from ..training.lora import (
    DEFAULT_ALPHA,
    DEFAULT_DROPOUT,
    DEFAULT_R,
    DEFAULT_TARGET_MODULES,
)
from .lora_layer import LoRALinear

__all__ = [
    "LoRALinear",
    "ParamCount",
    "apply_lora",
    "copy_peft_to_reference",
    "copy_reference_to_peft",
    "count_trainable",
    "load_lora_state_dict",
    "lora_state_dict",
    "mark_only_lora_trainable",
    "merge_lora",
    "unmerge_lora",
]


# --------------------------------------------------------------------------------------------------
# Wrapping a model
# --------------------------------------------------------------------------------------------------


def _matches(name: str, targets: Iterable[str]) -> bool:
    """PEFT's rule for a list of targets: the module's full name equals a target or ends with ``.target``."""
    return any(name == target or name.endswith(f".{target}") for target in targets)


def _linear_names_summary(model: nn.Module) -> str:
    """The distinct last name parts of the model's linear layers, with one full name for each."""
    example: dict[str, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, LoRALinear)) and name:
            example.setdefault(name.rsplit(".", 1)[-1], name)
    return ", ".join(f"{short} (e.g. {full})" for short, full in sorted(example.items())) or "none"


def _lora_modules(model: nn.Module) -> Iterator[tuple[str, LoRALinear]]:
    """Every :class:`LoRALinear` in ``model`` with its full name."""
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            yield name, module


def apply_lora(
    model: nn.Module,
    target_modules: Iterable[str] = DEFAULT_TARGET_MODULES,
    r: int = DEFAULT_R,
    alpha: float = DEFAULT_ALPHA,
    dropout: float = DEFAULT_DROPOUT,
    use_rslora: bool = False,
) -> nn.Module:
    """Replace the targeted ``nn.Linear`` layers of ``model`` by :class:`LoRALinear`, in place.

    A module is targeted when its full name equals one of ``target_modules`` or ends with
    ``"." + target`` (PEFT's rule for a list; PEFT's regex form, a single string, is refused here).
    Every target must match at least one module and every matched module must be an ``nn.Linear``;
    otherwise ``ValueError`` lists the linear layers the model has. Afterwards only the LoRA matrices
    are trainable (:func:`mark_only_lora_trainable`), as after ``peft.get_peft_model``.

    Returns:
        ``model`` itself, for chaining.
    """
    if isinstance(target_modules, str):
        raise TypeError(
            "target_modules must be a list or tuple of module names such as ('q_proj', 'v_proj'); "
            f"got the string {target_modules!r} (PEFT reads a single string as a regular expression)"
        )
    targets = tuple(target_modules)
    if not targets:
        raise ValueError("target_modules is empty: name at least one linear layer to adapt")
    model_name = type(model).__name__

    chosen: list[str] = []
    hits = {target: 0 for target in targets}
    for name, module in model.named_modules():
        if not name or not _matches(name, targets):
            continue
        if isinstance(module, LoRALinear):
            raise ValueError(f"apply_lora: {name} of {model_name} already has a LoRA adapter")
        if not isinstance(module, nn.Linear):
            raise ValueError(
                f"apply_lora: target module {name} of {model_name} is a {type(module).__name__}, "
                f"not an nn.Linear. Linear layers in the model: {_linear_names_summary(model)}"
            )
        for target in targets:
            if _matches(name, (target,)):
                hits[target] += 1
        chosen.append(name)

    missing = [target for target, count in hits.items() if count == 0]
    if missing:
        raise ValueError(
            f"apply_lora: target module(s) {missing} match no module of {model_name}. "
            f"Linear layers in the model: {_linear_names_summary(model)}"
        )

    for name in chosen:
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        base = getattr(parent, child_name)
        wrapped = LoRALinear(base, r=r, alpha=alpha, dropout=dropout, use_rslora=use_rslora)
        setattr(parent, child_name, wrapped)
    return mark_only_lora_trainable(model)


def mark_only_lora_trainable(model: nn.Module) -> nn.Module:
    """Freeze every parameter of ``model`` except the ``lora_A`` / ``lora_B`` matrices. Returns ``model``."""
    for param in model.parameters():
        param.requires_grad_(False)
    for _, module in _lora_modules(model):
        module.lora_A.requires_grad_(True)
        module.lora_B.requires_grad_(True)
    return model


class ParamCount(NamedTuple):
    """Trainable and total parameter counts (shared tensors, such as tied embeddings, counted once)."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        """Trainable share of all parameters, in percent."""
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"trainable params: {self.trainable:,} || all params: {self.total:,} || trainable%: {self.percent:.4f}"


def count_trainable(model: nn.Module) -> ParamCount:
    """Trainable and total parameters of ``model``, as PEFT's ``get_nb_trainable_parameters`` counts them."""
    trainable = total = 0
    for param in model.parameters():  # ``parameters()`` yields a shared tensor once
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return ParamCount(trainable, total)


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter: ``{"<module>.lora_A": A, "<module>.lora_B": B, ...}``.

    The tensors are detached but share storage with the model, like ``state_dict()``.
    """
    state: dict[str, torch.Tensor] = {}
    for name, module in _lora_modules(model):
        state[f"{name}.lora_A"] = module.lora_A.detach()
        state[f"{name}.lora_B"] = module.lora_B.detach()
    return state


@torch.no_grad()
def load_lora_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Load a :func:`lora_state_dict` into a model wrapped with the same targets and rank.

    Raises ``ValueError`` naming missing keys, unexpected keys or shape mismatches. Returns ``model``.
    """
    expected = lora_state_dict(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"LoRA state dict does not fit the model: missing keys {missing}, unexpected keys {unexpected}"
        )
    for key, target in expected.items():
        if state[key].shape != target.shape:
            raise ValueError(
                f"LoRA state dict: {key} has shape {tuple(state[key].shape)}, the model expects {tuple(target.shape)}"
            )
        target.copy_(state[key])
    return model


def merge_lora(model: nn.Module, unload: bool = True) -> nn.Module:
    """Fold every adapter into its base weight.

    With ``unload=True`` (the analogue of PEFT's ``merge_and_unload``) each :class:`LoRALinear` is then
    replaced by its plain ``nn.Linear``; with ``unload=False`` the wrappers stay (merged) so that
    :func:`unmerge_lora` can undo the merge. Base parameters stay frozen either way. Returns ``model``.
    """
    for name, module in list(_lora_modules(model)):
        module.merge()
        if unload:
            parent_name, _, child_name = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child_name, module.base_layer)
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Take every merged adapter back out of its base weight (after ``merge_lora(model, unload=False)``)."""
    for _, module in _lora_modules(model):
        module.unmerge()
    return model


# --------------------------------------------------------------------------------------------------
# PEFT side: copy adapters between PEFT and the reference
# --------------------------------------------------------------------------------------------------


def _peft_lora_layers(peft_model: nn.Module, adapter_name: str) -> dict[str, LoraLayer]:
    """PEFT's LoRA layers, named as in the unwrapped model (``model.layers.0.self_attn.q_proj``)."""
    inner = peft_model.get_base_model() if hasattr(peft_model, "get_base_model") else peft_model
    return {
        name: module
        for name, module in inner.named_modules()
        if isinstance(module, LoraLayer) and adapter_name in module.lora_A
    }


def _paired_layers(
    peft_model: nn.Module, ref_model: nn.Module, adapter_name: str
) -> Iterator[tuple[str, LoraLayer, LoRALinear]]:
    """Pair PEFT's and the reference's LoRA layers by module name; check that shapes and scaling agree."""
    peft_layers = _peft_lora_layers(peft_model, adapter_name)
    ref_layers = dict(_lora_modules(ref_model))
    if not peft_layers:
        raise ValueError(f"the PEFT model has no LoRA layers for adapter {adapter_name!r}")
    only_peft = sorted(set(peft_layers) - set(ref_layers))
    only_ref = sorted(set(ref_layers) - set(peft_layers))
    if only_peft or only_ref:
        raise ValueError(
            f"PEFT and reference adapt different layers: only in PEFT {only_peft}, only in the reference {only_ref}"
        )
    for name in sorted(ref_layers):
        peft_layer, ref_layer = peft_layers[name], ref_layers[name]
        peft_a, peft_b = peft_layer.lora_A[adapter_name].weight, peft_layer.lora_B[adapter_name].weight
        if peft_a.shape != ref_layer.lora_A.shape or peft_b.shape != ref_layer.lora_B.shape:
            raise ValueError(
                f"{name}: PEFT has A {tuple(peft_a.shape)} and B {tuple(peft_b.shape)}, the reference "
                f"A {tuple(ref_layer.lora_A.shape)} and B {tuple(ref_layer.lora_B.shape)} (different r?)"
            )
        if not math.isclose(peft_layer.scaling[adapter_name], ref_layer.scaling, rel_tol=1e-12):
            raise ValueError(
                f"{name}: PEFT scales by {peft_layer.scaling[adapter_name]}, the reference by "
                f"{ref_layer.scaling} (different alpha or use_rslora?)"
            )
        yield name, peft_layer, ref_layer


@torch.no_grad()
def copy_peft_to_reference(peft_model: nn.Module, ref_model: nn.Module, adapter_name: str = "default") -> nn.Module:
    """Copy PEFT's ``lora_A`` / ``lora_B`` weights into the reference model's :class:`LoRALinear` layers.

    ``peft_model`` is a ``PeftModel`` (or a model with LoRA layers injected); both models must adapt the
    same layers with the same rank and scaling, else ``ValueError`` says where they differ.
    Returns ``ref_model``.
    """
    for _, peft_layer, ref_layer in _paired_layers(peft_model, ref_model, adapter_name):
        ref_layer.lora_A.copy_(peft_layer.lora_A[adapter_name].weight)
        ref_layer.lora_B.copy_(peft_layer.lora_B[adapter_name].weight)
    return ref_model


@torch.no_grad()
def copy_reference_to_peft(ref_model: nn.Module, peft_model: nn.Module, adapter_name: str = "default") -> nn.Module:
    """The reverse of :func:`copy_peft_to_reference`: reference A/B into PEFT. Returns ``peft_model``."""
    for _, peft_layer, ref_layer in _paired_layers(peft_model, ref_model, adapter_name):
        peft_layer.lora_A[adapter_name].weight.copy_(ref_layer.lora_A)
        peft_layer.lora_B[adapter_name].weight.copy_(ref_layer.lora_B)
    return peft_model
