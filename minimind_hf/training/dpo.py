r"""Direct Preference Optimization (DPO) for MiniMind: the loss and a TRL trainer.

Two pieces, from the formula up to the training loop:

* :func:`dpo_loss` -- the project's DPO loss on per-sequence log-probabilities. With the log-ratios
  ``c = log pi(y_w|x) - log pi_ref(y_w|x)`` (chosen) and ``r = log pi(y_l|x) - log pi_ref(y_l|x)``
  (rejected) it offers

  - ``"sigmoid"``: DPO, ``-log sigmoid(beta * (c - r))`` on log-probabilities summed over the
    completion tokens. ``label_smoothing = eps > 0`` gives conservative DPO (cDPO), which assumes each
    preference label is flipped with probability ``eps``:
    ``-(1 - eps) log sigmoid(beta (c - r)) - eps log sigmoid(-beta (c - r))``.
  - ``"sigmoid_norm"``: the same on length-normalised log-ratios, ``c / |y_w|`` and ``r / |y_l|`` with
    ``|y|`` the number of completion tokens (clamped to at least 1). This is TRL's ``sigmoid_norm`` and
    what the original MiniMind course code computed: it averaged each row's token log-probabilities
    over its completion mask before taking the DPO logit.
  - ``"ipo"``: IPO's squared loss ``(c / |y_w| - r / |y_l| - 1 / (2 beta))^2`` on length-normalised
    log-ratios (``beta`` plays the role of the paper's tau), as TRL implements it.

  It returns per-pair losses and the implicit rewards ``beta * c`` and ``beta * r`` (detached, on the
  summed log-ratios for every loss type), which is what TRL logs as ``rewards/chosen`` and
  ``rewards/rejected``.

* :class:`MiniMindDPOTrainer` -- a :class:`trl.DPOTrainer` whose loss comes from :func:`dpo_loss`.
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

Why the original MiniMind's DPO loss sat at 0.693
------------------------------------------------
At step 0 the policy *is* the reference, so ``c = r = 0`` and every DPO loss starts at exactly
``log 2 = 0.6931``; it only leaves that value as fast as the policy moves away from the reference.
The original recipe moved it very little: its ``train_dpo.py`` defaulted to a learning rate of
``1e-8`` (later ``4e-8``, with a note to stay at or below ``5e-8`` to avoid forgetting), with
``beta`` 0.1-0.15, and its earlier versions also averaged the log-probabilities over the completion
length, which divides ``c - r`` by tens to hundreds of tokens. With AdamW each weight moves by about
the learning rate per step, so after a one-epoch run ``beta * (c - r)`` stays near zero and
``-log sigmoid(z) ~ log 2 - z / 2`` stays at 0.693: the model is not broken, it has barely been
trained. The project's tests train the same tiny model on the same pairs at the original 4e-8
(the loss stays within 1e-3 of log 2) and at a learning rate suited to the model (the loss falls
well below it while the reward margin grows). Length normalisation slows the loss down on its own:
in the slow test (32 pairs, 40 steps, learning rate 1e-3, beta 0.1) ``"sigmoid"`` fell from 0.693 to
0.05 while ``"sigmoid_norm"`` only reached 0.50 with a *larger* summed reward margin, because its
logit is roughly that margin divided by the completion length.
Use a learning rate that moves the policy (TRL's default is 1e-6; tiny models need more), watch
``rewards/margins`` and ``rewards/accuracies`` rather than the loss alone, and prefer ``"sigmoid"``
(summed log-ratios) unless long answers really must not dominate -- or raise ``beta`` with
``"sigmoid_norm"``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
import trl
from trl import DPOConfig, DPOTrainer
from trl.trainer import utils as _trl_utils

from ..modeling_minimind import moe_balance_loss
from ..tokenization import IM_END, chat_ids

try:  # PEFT is a project dependency, but keep the module importable without it.
    from peft import PeftModel
except ImportError:  # pragma: no cover - exercised only without peft installed
    PeftModel = None  # type: ignore[assignment,misc]

__all__ = [
    "LOSS_TYPES",
    "MiniMindDPOTrainer",
    "dpo_loss",
]

#: Loss types understood by :func:`dpo_loss` (and so by :class:`MiniMindDPOTrainer`).
LOSS_TYPES: tuple[str, ...] = ("sigmoid", "sigmoid_norm", "ipo")

# Keys of a collated preference batch that are not model inputs (TRL's collator adds them).
_NON_MODEL_KEYS = frozenset({"completion_mask", "ref_chosen_logps", "ref_rejected_logps"})


def _check_logps(name: str, value: Any, shape: torch.Size | None) -> torch.Size:
    """Validate one per-sequence log-probability tensor and return its shape."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"dpo_loss: {name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"dpo_loss: {name} must be a floating-point tensor, got dtype {value.dtype}")
    if value.dim() != 1:
        raise ValueError(
            f"dpo_loss: {name} must be 1-D (one summed log-probability per sequence), got shape {tuple(value.shape)}"
        )
    if shape is not None and value.shape != shape:
        raise ValueError(
            f"dpo_loss: {name} has shape {tuple(value.shape)} but policy_chosen_logps has shape {tuple(shape)}"
        )
    return value.shape


def _check_lengths(name: str, value: Any, shape: torch.Size) -> torch.Tensor:
    """Validate completion lengths; returns them clamped to >= 1 (as TRL does)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"dpo_loss: {name} must be a torch.Tensor of token counts, got {type(value).__name__}")
    if value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"dpo_loss: {name} must hold integer or float token counts, got dtype {value.dtype}")
    if value.shape != shape:
        raise ValueError(
            f"dpo_loss: {name} has shape {tuple(value.shape)} but the log-probabilities have shape {tuple(shape)}"
        )
    if bool((value < 0).any()):
        bad = int(torch.nonzero(value < 0)[0, 0])
        raise ValueError(f"dpo_loss: {name}[{bad}] = {value[bad].item()} is negative")
    return value.clamp(min=1)


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss for a batch of preference pairs.

    Args:
        policy_chosen_logps: ``[B]`` log-probabilities of the chosen completions under the policy,
            summed over the completion tokens.
        policy_rejected_logps: ``[B]`` the same for the rejected completions.
        ref_chosen_logps: ``[B]`` chosen log-probabilities under the reference model.
        ref_rejected_logps: ``[B]`` rejected log-probabilities under the reference model.
        beta: strength of the KL regulariser (> 0); for ``"ipo"`` it is the paper's tau.
        loss_type: one of :data:`LOSS_TYPES` -- ``"sigmoid"``, ``"sigmoid_norm"`` or ``"ipo"``.
        label_smoothing: cDPO's probability ``eps`` in ``[0, 0.5)`` that a label is flipped
            (``"sigmoid"`` and ``"sigmoid_norm"`` only).
        chosen_lengths: ``[B]`` completion-token counts of the chosen sequences; required by
            ``"sigmoid_norm"`` and ``"ipo"`` (clamped to >= 1), ignored by ``"sigmoid"``.
        rejected_lengths: ``[B]`` the same for the rejected sequences.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``[B]``: the per-pair loss (take
        ``.mean()`` for the batch loss) and the detached implicit rewards
        ``beta * (policy - ref)`` on the summed log-probabilities.

    Raises:
        TypeError: an input is not a floating tensor, or the lengths are not numeric tensors.
        ValueError: shapes disagree, ``loss_type`` is unknown, ``beta`` or ``label_smoothing`` is out
            of range, or lengths are missing where the loss type needs them.
    """
    shape = _check_logps("policy_chosen_logps", policy_chosen_logps, None)
    _check_logps("policy_rejected_logps", policy_rejected_logps, shape)
    _check_logps("ref_chosen_logps", ref_chosen_logps, shape)
    _check_logps("ref_rejected_logps", ref_rejected_logps, shape)
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"dpo_loss: unknown loss_type {loss_type!r}; expected one of {list(LOSS_TYPES)}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"dpo_loss: beta must be a finite number > 0, got {beta!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise ValueError(f"dpo_loss: label_smoothing must be a number, got {label_smoothing!r}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"dpo_loss: label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    if loss_type == "ipo" and label_smoothing != 0.0:
        raise ValueError("dpo_loss: label_smoothing is not defined for loss_type='ipo'; leave it at 0.0")

    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps

    if loss_type == "sigmoid":
        # Lengths are optional here; still refuse malformed ones rather than ignore a bug.
        if chosen_lengths is not None:
            _check_lengths("chosen_lengths", chosen_lengths, shape)
        if rejected_lengths is not None:
            _check_lengths("rejected_lengths", rejected_lengths, shape)
        chosen_scores, rejected_scores = chosen_logratios, rejected_logratios
    else:
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError(
                f"dpo_loss: loss_type={loss_type!r} normalises by completion length; "
                "pass both chosen_lengths and rejected_lengths"
            )
        chosen_len = _check_lengths("chosen_lengths", chosen_lengths, shape).to(chosen_logratios)
        rejected_len = _check_lengths("rejected_lengths", rejected_lengths, shape).to(rejected_logratios)
        chosen_scores = chosen_logratios / chosen_len
        rejected_scores = rejected_logratios / rejected_len

    delta = chosen_scores - rejected_scores
    if loss_type == "ipo":
        losses = (delta - 1.0 / (2.0 * beta)) ** 2
    else:
        losses = -F.logsigmoid(beta * delta)
        if label_smoothing > 0.0:
            losses = (1.0 - label_smoothing) * losses - label_smoothing * F.logsigmoid(-beta * delta)

    chosen_rewards = beta * chosen_logratios.detach()
    rejected_rewards = beta * rejected_logratios.detach()
    return losses, chosen_rewards, rejected_rewards


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
