r"""Direct Preference Optimization (DPO) for MiniMind: a TRL trainer with the project's loss.

The loss is :func:`minimind_hf.training.preference_loss.dpo_loss`.
:class:`MiniMindDPOTrainer` is a :class:`trl.DPOTrainer` whose loss comes from :func:`dpo_loss`.
Everything else is TRL's: dataset preparation (prompt extraction, chat template, tokenisation;
then each completion is cut after the reply's ``<|im_end|>``, so the template's ``"\n"`` after it,
which SFT masks and inference never reaches, is not scored: :func:`end_at_reply_end`),
the preference collator that stacks the chosen and rejected sequences into one batch, one forward
for both halves through TRL's fused LM head (per-token log-probabilities without materialising the
logits), the reference log-probabilities (:meth:`trl.DPOTrainer.compute_ref_log_probs`, or the
columns written by ``precompute_ref_log_probs=True``), and TRL's logged metrics (``rewards/*``,
``logps/*``, ``logits/*``, ``entropy``, ``mean_token_accuracy``, ``num_tokens``). In trl 1.x the
trainer's public hook is ``compute_loss`` (the 0.x ``DPOTrainer.dpo_loss`` method is gone), so that
is the method overridden here. It needs trl >= 1.15, where the fused LM head arrived. Because that
head runs the backbone directly, ``MiniMindForCausalLM.forward`` (which adds the MoE load-balancing
loss in training) is bypassed; for a MoE MiniMind the trainer adds that balance loss itself and logs
it as ``aux_loss``, as the original MiniMind DPO script did.

The reference model
-------------------
* Full fine-tuning with no ``ref_model``: the reference is a frozen deep copy of the policy *as passed
  in* (``requires_grad=False``, eval mode). TRL alone would reload the reference from the policy's
  ``name_or_path``, which fails for a model built in memory and silently uses the wrong weights for
  one changed in memory after loading (for example an SFT model with a LoRA adapter merged in).
* ``precompute_ref_log_probs=True``: the reference log-probabilities are computed once with the
  starting policy before training and stored as dataset columns; no reference model is kept.
* A PEFT policy (``peft_config=...`` or a ``PeftModel``): no second model is created; the reference is
  the policy with its adapter disabled (for a fresh adapter) or a frozen ``"ref"`` copy of an existing
  adapter -- TRL's behaviour, unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import trl
from trl import DPOConfig, DPOTrainer
from trl.trainer import utils as _trl_utils

from ..modeling_minimind import moe_balance_loss
from ..tokenization import IM_END, chat_ids
from .preference_loss import LOSS_TYPES, dpo_loss

try:  # PEFT is a project dependency, but keep the module importable without it.
    from peft import PeftModel
except ImportError:  # pragma: no cover - exercised only without peft installed
    PeftModel = None  # type: ignore[assignment,misc]

__all__ = ["MiniMindDPOTrainer"]

# Keys of a collated preference batch that are not model inputs (TRL's collator adds them).
_NON_MODEL_KEYS = frozenset({"completion_mask", "ref_chosen_logps", "ref_rejected_logps"})


def _is_peft_model(model: Any) -> bool:
    return PeftModel is not None and isinstance(model, PeftModel)


def end_at_reply_end(example: dict[str, Any], end_id: int) -> dict[str, Any]:
    r"""Cut ``chosen_ids`` / ``rejected_ids`` after their last ``end_id`` (``<|im_end|>``).

    TRL's completion is the prompt+reply rendering minus the prompt, so it carries the template's text
    after the reply's end token (the ``"\n"`` after ``<|im_end|>``). SFT masks that text and inference
    stops at ``<|im_end|>``; scored by DPO it would add a term outside the reply to both log-ratios
    (and can flip a pair's margin). Dropping it from the sequence leaves every earlier position unchanged.
    """
    for key in ("chosen_ids", "rejected_ids"):
        ids = example[key]
        ends = [i for i, token in enumerate(ids) if token == end_id]
        if ends:
            example[key] = ids[: ends[-1] + 1]
    return example


def control_text_as_text(example: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """Tokenise again, with :func:`~minimind_hf.tokenization.chat_ids`, a pair whose messages spell a control token.

    There that text (``"<|im_end|>"`` typed by a user) stays text, as in the SFT data and at inference; TRL's
    tokenisation would make it a turn boundary. Other pairs keep TRL's ids (the same ids).
    """
    messages = [
        m for key in ("prompt", "chosen", "rejected") if isinstance(example.get(key), list) for m in example[key]
    ]
    specials = [token for token in tokenizer.all_special_tokens if token]
    if not messages or not any(
        isinstance(m, dict) and any(t in str(m.get("content", "")) for t in specials) for m in messages
    ):
        return example
    prompt = chat_ids(tokenizer, example["prompt"], add_generation_prompt=True)
    chosen = chat_ids(tokenizer, example["prompt"] + example["chosen"], add_generation_prompt=False)
    rejected = chat_ids(tokenizer, example["prompt"] + example["rejected"], add_generation_prompt=False)

    def shared(a: list[int], b: list[int]) -> int:
        return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

    cut = min(shared(prompt, chosen), shared(prompt, rejected))  # where TRL would start the completion too
    example.update(prompt_ids=prompt[:cut], chosen_ids=chosen[cut:], rejected_ids=rejected[cut:])
    return example


def same_after_truncation(example: dict[str, Any], max_length: int, truncation_mode: str = "keep_start") -> bool:
    """Whether prompt+chosen and prompt+rejected are the same token sequence once cut at ``max_length``.

    They are cut the way TRL's collator cuts them (``keep_start``: the first ``max_length`` tokens; ``keep_end``: the
    last).
    """
    cut = slice(None, max_length) if truncation_mode == "keep_start" else slice(-max_length, None)
    prompt = example["prompt_ids"]
    return (prompt + example["chosen_ids"])[cut] == (prompt + example["rejected_ids"])[cut]


def _check_config(args: DPOConfig) -> None:
    """Refuse DPOConfig options that TRL applies inside its own loss, which this trainer replaces."""
    if len(args.loss_type) != 1 or args.loss_type[0] not in LOSS_TYPES:
        raise ValueError(
            f"MiniMindDPOTrainer: loss_type={args.loss_type} is not supported; use one of {list(LOSS_TYPES)} "
            "(or trl.DPOTrainer for TRL's other losses and loss mixtures)"
        )
    unsupported = {
        "loss_weights": (args.loss_weights, (None, [1.0])),
        "ld_alpha": (args.ld_alpha, (None,)),
        "f_divergence_type": (args.f_divergence_type, ("reverse_kl",)),
        "use_weighting": (args.use_weighting, (False,)),
    }
    for name, (value, allowed) in unsupported.items():
        if value not in allowed:
            raise ValueError(
                f"MiniMindDPOTrainer: DPOConfig.{name}={value!r} is not supported by the project's dpo_loss; "
                f"leave it at {allowed[0]!r} or use trl.DPOTrainer"
            )


class MiniMindDPOTrainer(DPOTrainer):
    """A :class:`trl.DPOTrainer` whose loss is the project's :func:`dpo_loss`.

    Construct it exactly like ``trl.DPOTrainer`` (pass everything after ``args`` by keyword). The
    supported ``DPOConfig.loss_type`` values are :data:`LOSS_TYPES`; ``beta`` and ``label_smoothing``
    are passed to :func:`dpo_loss` (unlike TRL 1.x's own ``"sigmoid"``, which ignores
    ``label_smoothing``, this one applies cDPO). Without ``ref_model``, a full-fine-tuning policy given
    as a model object gets a frozen deep copy of itself as reference (see the module docstring).
    """

    def __init__(self, model: Any, ref_model: Any = None, args: DPOConfig | None = None, **kwargs: Any) -> None:
        if not hasattr(_trl_utils, "add_fused_lm_head"):
            raise RuntimeError(
                f"MiniMindDPOTrainer needs trl>=1.15 (fused LM head in DPOTrainer); found trl {trl.__version__}"
            )
        if args is not None:
            _check_config(args)
        precompute = bool(args is not None and args.precompute_ref_log_probs)
        if (
            ref_model is None
            and not isinstance(model, str)
            and kwargs.get("peft_config") is None
            and not _is_peft_model(model)
            and not precompute
        ):
            # Snapshot the starting policy before TRL patches or trains it.
            ref_model = copy.deepcopy(model)
            ref_model.requires_grad_(False)
            ref_model.eval()
        super().__init__(model, ref_model=ref_model, args=args, **kwargs)

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: DPOConfig, dataset_name: str) -> Any:
        """TRL's tokenisation, then each completion cut after the reply's end token, then identical pairs dropped.

        The cut is :func:`end_at_reply_end`; the pairs that truncation at ``max_length`` makes identical are dropped
        (:func:`same_after_truncation`).

        What is dropped is counted in ``self.dropped_rows[dataset_name]`` (a map-style dataset only):
        ``prompt_fills_max_length`` (TRL's own filter) and ``identical_after_truncation``. Such a pair has
        equal chosen and rejected log-ratios, so it would count as a failure in ``rewards/accuracies``
        and teach nothing.
        """
        sized = hasattr(dataset, "__len__")
        given = len(dataset) if sized else None
        dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        kwargs = {"desc": f"Keeping control-token text in {dataset_name} messages as text"} if sized else {}
        dataset = dataset.map(control_text_as_text, fn_kwargs={"tokenizer": tokenizer}, **kwargs)
        if args.max_length is not None and args.truncation_mode == "keep_start":  # TRL's filter, on the new ids
            dataset = dataset.filter(lambda example: len(example["prompt_ids"]) < args.max_length)
        end_id = tokenizer.convert_tokens_to_ids(IM_END)
        if end_id is not None and end_id != tokenizer.unk_token_id:
            kwargs = {"desc": f"Ending {dataset_name} completions at {IM_END}"} if sized else {}
            dataset = dataset.map(end_at_reply_end, fn_kwargs={"end_id": end_id}, **kwargs)
        if sized:
            kept = len(dataset)
        if args.max_length is not None:
            kwargs = {"desc": f"Dropping {dataset_name} pairs made identical by max_length"} if sized else {}
            dataset = dataset.filter(
                lambda example: not same_after_truncation(example, args.max_length, args.truncation_mode), **kwargs
            )
        if sized:
            dropped = {"prompt_fills_max_length": given - kept, "identical_after_truncation": kept - len(dataset)}
            counted = {k: v for k, v in dropped.items() if v}
            self.dropped_rows = {**getattr(self, "dropped_rows", {}), dataset_name: counted}
        return dataset

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """DPO loss of one collated batch (chosen rows first, rejected rows second)."""
        mode = "train" if self.model.training else "eval"
        completion_mask = inputs["completion_mask"]
        model_kwargs = {k: v for k, v in inputs.items() if k not in _NON_MODEL_KEYS}
        model_kwargs["use_cache"] = False
        if self.aux_loss_enabled:
            model_kwargs["output_router_logits"] = True

        # One forward for chosen and rejected through TRL's fused LM head: per-token log-probabilities of
        # the completion tokens (0 elsewhere), aligned with the shifted labels.
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        seq_len = completion_mask.size(1) - 1
        per_token_logps = outputs.log_probs[:, -seq_len:]  # prompt-learning PEFT prepends virtual tokens
        chosen_logps, rejected_logps = per_token_logps.sum(dim=1).chunk(2, dim=0)
        # Read the policy's MoE balance losses now, before a reference forward through the same modules
        # (PEFT) overwrites them.
        moe_balance = None if self.aux_loss_enabled else moe_balance_loss(model)

        if self.precompute_ref_logps:
            ref_chosen_logps, ref_rejected_logps = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_model = self.ref_model if self.ref_model is not None else self.model
            ref_chosen_logps, ref_rejected_logps = self.compute_ref_log_probs(ref_model, inputs)

        # Completion lengths as TRL's sigmoid_norm / ipo count them.
        chosen_lengths, rejected_lengths = completion_mask.sum(dim=1).chunk(2, dim=0)
        losses, chosen_rewards, rejected_rewards = dpo_loss(
            chosen_logps,
            rejected_logps,
            ref_chosen_logps.to(chosen_logps),
            ref_rejected_logps.to(rejected_logps),
            beta=self.beta,
            loss_type=self.loss_types[0],
            label_smoothing=self.label_smoothing,
            chosen_lengths=chosen_lengths,
            rejected_lengths=rejected_lengths,
        )
        loss = losses.mean()

        aux_loss = None
        if self.aux_loss_enabled:  # TRL's router-logits path (Mixtral-style MoE configs)
            aux_loss = self.router_aux_loss_coef * outputs.aux_loss
        elif moe_balance is not None:  # MiniMind's MoE blocks, already weighted by aux_loss_alpha
            aux_loss = moe_balance
        if aux_loss is not None:
            loss = loss + aux_loss
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss.detach()).mean().item())
        self._log_dpo_metrics(
            mode, inputs, outputs, seq_len, chosen_logps, rejected_logps, chosen_rewards, rejected_rewards
        )

        if return_outputs:
            # Trainer's prediction_step wants logits; the fused head never builds them, so run a plain forward.
            with torch.no_grad():
                outputs = model(**model_kwargs)
            return loss, outputs
        return loss

    def _log_dpo_metrics(
        self,
        mode: str,
        inputs: dict[str, torch.Tensor],
        outputs: Any,
        seq_len: int,
        chosen_logps: torch.Tensor,
        rejected_logps: torch.Tensor,
        chosen_rewards: torch.Tensor,
        rejected_rewards: torch.Tensor,
    ) -> None:
        """Record the metrics TRL's DPOTrainer logs, under the same names and with the same reductions."""
        metrics = self._metrics[mode]
        acc = self.accelerator
        mask = inputs["completion_mask"][..., 1:]
        chosen_mask, rejected_mask = mask.chunk(2, dim=0)

        def token_mean(values: torch.Tensor, where: torch.Tensor) -> float:
            total = acc.gather_for_metrics((values * where).sum()).sum()
            count = acc.gather_for_metrics(where.sum()).sum()
            return (total / count).item() if count > 0 else 0.0

        metrics["entropy"].append(token_mean(outputs.entropy[:, -seq_len:].detach(), mask))
        if mode == "train":
            tokens = acc.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            self._total_train_tokens += tokens // self._tp_size
        metrics["num_tokens"] = [self._total_train_tokens]
        chosen_logits, rejected_logits = outputs.mean_logits[:, -seq_len:].detach().chunk(2, dim=0)
        metrics["logits/chosen"].append(token_mean(chosen_logits, chosen_mask))
        metrics["logits/rejected"].append(token_mean(rejected_logits, rejected_mask))
        chosen_top1, _ = outputs.is_top1[:, -seq_len:].chunk(2, dim=0)
        metrics["mean_token_accuracy"].append(token_mean(chosen_top1.to(chosen_mask.dtype), chosen_mask))

        metrics["rewards/chosen"].append(acc.gather(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(acc.gather(rejected_rewards).mean().item())
        metrics["rewards/accuracies"].append(acc.gather((chosen_rewards > rejected_rewards).float()).mean().item())
        metrics["rewards/margins"].append(acc.gather(chosen_rewards - rejected_rewards).mean().item())
        metrics["logps/chosen"].append(acc.gather(chosen_logps.detach()).mean().item())
        metrics["logps/rejected"].append(acc.gather(rejected_logps.detach()).mean().item())
