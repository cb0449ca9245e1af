"""The stage contract: the names every command of the pipeline writes and reads, in one place.

A data folder (``data/`` or the shipped ``data/sample/``) holds one file per stage and split --
``<stage>.jsonl`` for training rows, ``<stage>.validation.jsonl`` and ``<stage>.test.jsonl`` beside it -- and
its data card. A run folder (``out/``) holds one folder per stage, named as the stage, in which the runner
writes the model, ``stage_complete.json`` (the finished stage's summary, also its completion marker), the loss
curve and the model card.
"""

from __future__ import annotations

from pathlib import Path

#: The training stages, in pipeline order; :data:`minimind_hf.training.stages.STAGES` has one row per name.
STAGE_NAMES: tuple[str, ...] = ("pretrain", "sft", "lora", "dpo", "grpo")
#: The stages whose data a data folder holds (GRPO's prompts are the SFT and LoRA training files).
DATA_STAGES: tuple[str, ...] = ("pretrain", "sft", "lora", "dpo")
#: The record kind (:data:`minimind_hf.data.checks.RECORD_KINDS`) of each data stage's files.
STAGE_RECORD_KINDS: dict[str, str] = {"pretrain": "pretrain", "sft": "chat", "lora": "chat", "dpo": "dpo"}
#: Run folders beside the stages': GRPO's control run (the same stage, its reference-based rewards reading
#: another prompt's reference).
CONTROL_RUNS: tuple[str, ...] = ("grpo-control",)
#: Splits of a stage's data; ``train`` is the plain ``<stage>.jsonl``.
SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Written into a stage's output folder when it has finished: its summary, and the marker a rerun skips on.
COMPLETE_MARKER = "stage_complete.json"
#: The loss curve each stage draws next to its model.
LOSS_CURVE = "loss_curve.png"
#: GRPO's reward curve, beside its loss curve.
REWARD_CURVE = "reward_curve.png"
#: The model card (Hub ``README.md``) and the facts it is rendered from, next to each saved model.
CARD_FILE = "README.md"
CARD_FACTS = "model_card.json"
#: The data card a corpus build writes into its data folder, and the one the shipped sample carries.
DATA_CARD = "card.md"
SAMPLE_CARD = "README.md"
#: A data folder's card, in the order they are looked for.
DATA_CARDS: tuple[str, ...] = (DATA_CARD, SAMPLE_CARD)
#: The corpus build's counts (per file, source and filter) beside its data card; the sample's card quotes them.
DATA_STATS = "stats.json"
#: A training sequence's length in tokens where none is given: the pretraining block (``block_size``) and the longest
#: chat (``max_length``) alike; every recipe sets its own.
DEFAULT_SEQUENCE_LENGTH = 512
#: The run folder of the pipeline; each stage writes ``<RUN_DIR>/<stage>``.
RUN_DIR = "out"


def split_file(stage: str, split: str = "train") -> str:
    """The file name of one split of a stage's data: ``sft.jsonl``, ``sft.validation.jsonl``, ``sft.test.jsonl``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return f"{stage}.jsonl" if split == "train" else f"{stage}.{split}.jsonl"


def stage_dir(stage: str, run_dir: str | Path = RUN_DIR) -> Path:
    """The output folder of one stage in a run folder: ``out/sft``."""
    return Path(run_dir) / stage
