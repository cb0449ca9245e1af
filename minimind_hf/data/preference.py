"""DPO data: preference rows in TRL's conversational form (``prompt`` / ``chosen`` / ``rejected``)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from datasets import Dataset, Features, Value

from ..prompts import parse_prompt_id, prompt_index, translation_messages
from .loading import map_sources
from .splits import BuiltDataset, PathSpec, assemble_splits, built, check_split_args, fingerprint

_MESSAGE = {"role": Value("string"), "content": Value("string")}
_PREFERENCE = Features({"prompt": [_MESSAGE], "chosen": [_MESSAGE], "rejected": [_MESSAGE]})


def _plain(messages: Iterable[dict]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _to_preference(row: dict, system_prompt: str | None, prompt_id: int | str) -> dict[str, list]:
    """One DPO record -> ``{"prompt": [...], "chosen": [reply], "rejected": [reply]}``."""
    if row.get("en") is not None:
        prompt = translation_messages(row["en"], prompt_id=prompt_index(prompt_id, row["en"]), system=system_prompt)
        chosen = [{"role": "assistant", "content": row["chosen"].strip()}]
        rejected = [{"role": "assistant", "content": row["rejected"].strip()}]
    elif row.get("prompt") is not None:
        prompt, chosen, rejected = _plain(row["prompt"]), _plain(row["chosen"]), _plain(row["rejected"])
    else:
        prompt, chosen, rejected = _plain(row["chosen"][:-1]), _plain(row["chosen"][-1:]), _plain(row["rejected"][-1:])
    if system_prompt and prompt[0]["role"] != "system":
        prompt.insert(0, {"role": "system", "content": system_prompt})
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def build_dpo_dataset(
    train_files: PathSpec,
    validation_files: PathSpec | None = None,
    *,
    system_prompt: str | None = None,
    prompt_id: int | str = 0,
    validation_fraction: float = 0.0,
    seed: int = 42,
    skip_bad_rows: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> BuiltDataset:
    """Preference rows in TRL's conversational form: ``prompt`` / ``chosen`` / ``rejected`` messages.

    ``{"chosen": [...], "rejected": [...]}`` rows must share every turn but the last (checked per
    line: :class:`~minimind_hf.data.checks.DataFormatError` names the line otherwise); the shared turns
    become ``prompt`` and the final assistant turns ``chosen`` / ``rejected``. Explicit ``{"prompt",
    "chosen", "rejected"}`` rows pass through, and parallel ``{"en", "chosen", "rejected"}`` rows get the
    project's translation prompt. ``system_prompt`` is put first in prompts that have no system
    turn. Tokenisation is left to TRL's ``DPOTrainer``.
    """
    check_split_args(validation_files, validation_fraction)
    prompt_id = parse_prompt_id(prompt_id)

    def preference_rows(dataset: Dataset, stats: dict) -> Dataset:
        return dataset.map(
            _to_preference,
            fn_kwargs={"system_prompt": system_prompt, "prompt_id": prompt_id},
            remove_columns=dataset.column_names,
            features=_PREFERENCE,
            new_fingerprint=fingerprint(dataset._fingerprint, "preference", system_prompt, prompt_id),
            desc="Building preference rows",
        )

    def rows(files: PathSpec, split: str) -> tuple[Dataset, dict]:
        return map_sources(
            files, split, "dpo", skip_bad_rows=skip_bad_rows, cache_dir=cache_dir, prepare=preference_rows
        )

    return built("dpo", assemble_splits(rows, train_files, validation_files, validation_fraction, seed))
