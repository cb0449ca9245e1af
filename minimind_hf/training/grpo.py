"""GRPO, the fifth stage: reinforcement learning on translation quality through TRL's ``GRPOTrainer``.

Three pieces:

* :class:`~.arguments.GRPOStageConfig` (in :mod:`.arguments`, beside every stage's training arguments) -- TRL's
  ``GRPOConfig`` plus the project's reward settings: one weight per reward of :mod:`.rewards`,
  ``reference_free_reward``, ``reward_control`` (``shuffled``: the control run) and ``max_prompts_per_file``.
* :func:`build_grpo_dataset` -- the prompts: the project's translation chats from TRAINING files only (a file
  whose name marks it as a validation, dev or test split is refused), with ``source``, ``reference`` and
  ``shuffled_reference`` columns that the rewards read. Parallel ``{"en", "zh"}`` rows (the finance split) get
  the translation prompt ``prompt_id`` and the ``system_prompt`` (``finance``), as the evaluation asks them;
  ``{"conversations"}`` rows (the general split) keep their own turns, the last assistant turn being the reference.
* :class:`MiniMindGRPOTrainer` -- ``trl.GRPOTrainer`` with the rewards built from the config, and what a small
  model needs watched: zero-signal groups counted (groups whose completions all got the same reward: their
  advantages are zero, they teach nothing), the wall time of each step split into generation, scoring and the
  update, and the counts kept in every checkpoint so a resumed run goes on counting. TRL already logs the rest:
  ``entropy`` (of the policy on its own completions: a fall towards 0 is entropy collapse), completion lengths
  (``completions/mean_length``: a rise with the reward is length hacking; the health reward penalises
  over-long output), ``frac_reward_zero_std`` per step and each reward's mean (``rewards/<name>/mean``).

Generation pads prompts on the LEFT (TRL pads the token ids itself) and stops at the tokenizer's eos,
``<|im_end|>``; MiniMind's rotary positions are relative, so the left padding shifts no attention score.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, Features, Value
from trl import GRPOConfig, GRPOTrainer

from ..data.loading import _expand, map_sources
from ..data.splits import BuiltDataset, PathSpec, assemble_splits, built, check_split_args, fingerprint
from ..evaluation.quality import derangement
from ..modeling_minimind import moe_balance_loss
from ..prompts import parse_prompt_id, prompt_index, source_of, translation_messages
from .arguments import GRPOStageConfig

logger = logging.getLogger(__name__)

__all__ = [
    "GRPOStageConfig",
    "HeldOutFileError",
    "MiniMindGRPOTrainer",
    "build_grpo_dataset",
    "check_grpo_start",
    "is_held_out_file",
]

_MESSAGE = {"role": Value("string"), "content": Value("string")}
_GRPO_ROW = Features({"prompt": [_MESSAGE], "source": Value("string"), "reference": Value("string")})
_HELD_OUT = re.compile(r"(?:^|[._-])(?:validation|valid|val|dev|test|eval)(?:[._-]|$)", re.IGNORECASE)
COUNTERS_FILE = "grpo_counters.json"


class HeldOutFileError(ValueError):
    """A validation or test file was given as GRPO training prompts."""


def is_held_out_file(path: str | os.PathLike) -> bool:
    """Whether a file's name marks it as a held-out split (``*.validation.jsonl``, ``*.test.jsonl``, ``dev``, ...)."""
    return bool(_HELD_OUT.search(Path(os.fspath(path)).name))


def check_grpo_start(adapter_name_or_path: str | None, args: GRPOConfig) -> None:
    """Refuse a KL term (``beta > 0``) on a start model with a merged adapter.

    TRL builds the KL reference by loading the policy's path again, which holds the model WITHOUT the adapter, so the
    penalty would pull towards the wrong model.
    """
    if args.beta != 0.0 and adapter_name_or_path:
        raise ValueError(
            f"stage grpo: beta {args.beta} needs a reference model, and TRL would load it without the "
            f"adapter {adapter_name_or_path} merged in; start from a saved model (the DPO output, say) "
            "or keep beta: 0"
        )


# ---------------------------------------------------------------------------------------------- dataset


def _to_grpo_row(row: dict, system_prompt: str | None, prompt_id: int | str) -> dict[str, Any]:
    """One parallel pair or chat -> ``{"prompt": [messages], "source", "reference"}``."""
    if row.get("conversations") is not None:
        turns = [{"role": m["role"], "content": m["content"]} for m in row["conversations"]]
        prompt, reference = turns[:-1], turns[-1]["content"].strip()
        user = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
        return {"prompt": prompt, "source": source_of(user) or user.strip(), "reference": reference}
    en = row["en"].strip()
    prompt = translation_messages(en, prompt_id=prompt_index(prompt_id, en), system=system_prompt)
    return {"prompt": prompt, "source": en, "reference": row["zh"].strip()}


def build_grpo_dataset(
    train_files: PathSpec,
    validation_files: PathSpec | None = None,
    *,
    system_prompt: str | None = None,
    prompt_id: int | str = 0,
    max_prompts_per_file: int | None = None,
    validation_fraction: float = 0.0,
    seed: int = 42,
    skip_bad_rows: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> BuiltDataset:
    """GRPO prompts with their references, from SFT / LoRA files (``{"en", "zh"}`` pairs or chats).

    Returns ``(DatasetDict, stats)`` with the columns ``prompt`` (messages ending with the user turn), ``source``
    (the English text), ``reference`` and ``shuffled_reference`` (the reference of another row, a fixed
    derangement: the control reward reads it). Raises :class:`HeldOutFileError` for a training file named as a
    validation or test split. Tokenisation is left to TRL.
    """
    check_split_args(validation_files, validation_fraction)
    prompt_id = parse_prompt_id(prompt_id)
    for path in _expand(train_files):
        if is_held_out_file(path):
            raise HeldOutFileError(
                f"{path}: GRPO trains on prompts of the training splits only; this file is named "
                "as a validation or test split (give it as validation_files instead)"
            )

    def grpo_rows(dataset: Dataset, stats: dict) -> Dataset:
        if max_prompts_per_file is not None and len(dataset) > max_prompts_per_file:
            keep = sorted(np.random.default_rng(seed).permutation(len(dataset))[:max_prompts_per_file].tolist())
            dataset = dataset.select(
                keep, new_fingerprint=fingerprint(dataset._fingerprint, "grpo-sample", max_prompts_per_file, seed)
            )
            stats["sampled"] = max_prompts_per_file
        return dataset.map(
            _to_grpo_row,
            fn_kwargs={"system_prompt": system_prompt, "prompt_id": prompt_id},
            remove_columns=dataset.column_names,
            features=_GRPO_ROW,
            new_fingerprint=fingerprint(dataset._fingerprint, "grpo-rows", system_prompt, prompt_id),
            desc="Building GRPO prompts",
        )

    def rows(files: PathSpec, split: str) -> tuple[Dataset, dict]:
        dataset, stats = map_sources(
            files, split, "chat", skip_bad_rows=skip_bad_rows, cache_dir=cache_dir, prepare=grpo_rows
        )
        references = dataset["reference"]
        order = derangement(len(references), seed)
        shuffled = [references[j] for j in order]
        dataset = dataset.add_column(
            "shuffled_reference",
            shuffled,
            new_fingerprint=fingerprint(dataset._fingerprint, "shuffled-reference", seed),
        )
        return dataset, stats

    return built("grpo", assemble_splits(rows, train_files, validation_files, validation_fraction, seed))


# ---------------------------------------------------------------------------------------------- trainer


class MiniMindGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` with the rewards of :class:`GRPOStageConfig`, zero-signal groups counted and steps timed.

    Each step's wall time is split into generation, scoring and update (logged as ``time/*``).
    """

    def __init__(self, model: Any, args: GRPOStageConfig, reward_funcs: list | None = None, **kwargs: Any) -> None:
        weights = None
        if reward_funcs is None:
            if not isinstance(args, GRPOStageConfig):
                raise TypeError("MiniMindGRPOTrainer: pass reward_funcs, or a GRPOStageConfig that names the rewards")
            reward_funcs, weights = args.reward_setup()
        self.zero_signal_groups = 0
        self.groups_seen = 0
        self._rollout_s = 0.0
        super().__init__(model, reward_funcs=reward_funcs, args=args, **kwargs)
        if weights is not None:  # TRL weighs every function 1.0 unless args.reward_weights says otherwise
            self.reward_weights = torch.tensor(weights, dtype=torch.float32)

    # -- timing: where a step's wall time goes

    def _generate(self, prompts: list):
        start = time.perf_counter()
        try:
            return super()._generate(prompts)
        finally:
            self._metrics["train" if self.model.training else "eval"]["time/generate_s"].append(
                time.perf_counter() - start
            )

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        start = time.perf_counter()
        try:
            return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        finally:
            self._metrics["train" if self.model.training else "eval"]["time/reward_s"].append(
                time.perf_counter() - start
            )

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        start = time.perf_counter()
        output = super()._generate_and_score_completions(inputs)
        elapsed = time.perf_counter() - start
        self._metrics[mode]["time/rollout_s"].append(elapsed)
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        groups = len(inputs) * self.accelerator.num_processes // num_generations
        zero = round(self._metrics[mode]["frac_reward_zero_std"][-1] * groups)
        if mode == "train":
            self._rollout_s += elapsed
            self.groups_seen += groups
            self.zero_signal_groups += zero
            self._metrics[mode]["zero_signal_groups"] = [float(self.zero_signal_groups)]
            self._metrics[mode]["groups_seen"] = [float(self.groups_seen)]
        return output

    def training_step(self, model, inputs, num_items_in_batch):
        start = time.perf_counter()
        self._rollout_s = 0.0
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._metrics["train"]["time/update_s"].append(time.perf_counter() - start - self._rollout_s)
        return loss

    # -- MiniMind's MoE balance loss (TRL adds only the router-logits kind of Mixtral-style configs)

    def _compute_loss(self, model, inputs):
        """TRL's policy loss, plus the load-balancing loss of MiniMind's MoE blocks from the policy forwards.

        TRL reads log-probabilities through the model without labels, so the causal-LM head that adds the
        balance loss in training never does; the blocks keep it in ``aux_loss``, read after each forward (one
        per chunk, averaged as TRL averages its own aux loss) and scaled for gradient accumulation as TRL
        scales the policy loss: its weight is ``aux_loss_alpha`` whatever the accumulation or process count.
        """
        if self.aux_loss_enabled or not getattr(getattr(self.model, "config", None), "use_moe", False):
            return super()._compute_loss(model, inputs)
        balances: list[torch.Tensor] = []
        handle = model.register_forward_hook(lambda module, args, output: balances.append(moe_balance_loss(module)))
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            handle.remove()
        found = [b for b in balances if b is not None]
        if not found:  # evaluation: no block keeps a loss that carries a gradient
            return loss
        mode = "train" if self.model.training else "eval"
        balance = torch.stack(found).mean()
        normalizer = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(balance.detach()).mean().item())
        return loss + balance / normalizer

    # -- the counts survive a resume

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            (folder / COUNTERS_FILE).write_text(json.dumps(self.signal_counts()) + "\n")

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        path = Path(checkpoint) / COUNTERS_FILE if checkpoint is not None else None
        if path is not None and path.exists():
            counts = json.loads(path.read_text())
            self.zero_signal_groups, self.groups_seen = counts["zero_signal_groups"], counts["groups_seen"]

    def signal_counts(self) -> dict[str, Any]:
        """Groups sampled so far and how many of them carried no signal (all completions rewarded alike)."""
        share = self.zero_signal_groups / self.groups_seen if self.groups_seen else None
        return {
            "groups_seen": self.groups_seen,
            "zero_signal_groups": self.zero_signal_groups,
            "zero_signal_share": share,
        }

    def stage_summary(self) -> dict[str, Any]:
        """What the stage runner adds to ``stage_complete.json`` under ``grpo``.

        The rewards, the signal counts, the last logged reward, entropy and completion length, and the mean wall time of
        a step split into generation, rewards and update (seconds).
        """
        train_logs = [entry for entry in self.state.log_history if "reward" in entry]

        def mean(key: str) -> float | None:
            values = [entry[key] for entry in train_logs if isinstance(entry.get(key), (int, float))]
            return sum(values) / len(values) if values else None

        last = train_logs[-1] if train_logs else {}
        rewards = (
            self.args.describe_rewards()
            if isinstance(self.args, GRPOStageConfig)
            else ", ".join(self.reward_func_names)
        )
        return {
            "grpo": {
                "rewards": rewards,
                **self.signal_counts(),
                "final_reward": last.get("reward"),
                "final_entropy": last.get("entropy"),
                "final_mean_completion_length": last.get("completions/mean_length"),
                "first_reward": train_logs[0].get("reward") if train_logs else None,
                "first_entropy": train_logs[0].get("entropy") if train_logs else None,
                "step_time_s": {
                    "total": mean("step_time"),
                    "generate": mean("time/generate_s"),
                    "reward": mean("time/reward_s"),
                    "rollout": mean("time/rollout_s"),
                    "update": mean("time/update_s"),
                },
            }
        }
