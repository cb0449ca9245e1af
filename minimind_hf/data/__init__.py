"""Stage datasets and collators: pretraining blocks, SFT / LoRA chats, DPO preference rows.

Every stage reads JSON-lines files (or a Hub dataset) through :mod:`datasets`, checks each record
before anything is tokenised, and tokenises once with :meth:`datasets.Dataset.map` under a fingerprint
of its inputs, so a second run reads the arrow cache. One module per job:

* :mod:`.checks` -- the record formats (documented there) and :class:`DataFormatError`;
* :mod:`.loading` -- files, globs, dataset directories and Hub names, checked line by line;
* :mod:`.splits` -- fingerprints, the train / validation split, :class:`BuiltDataset`;
* :mod:`.pretrain` -- tokenise and pack documents into blocks;
* :mod:`.sft` -- chats with the loss on assistant replies only, and :class:`SFTCollator`;
* :mod:`.preference` -- DPO rows for TRL's ``DPOTrainer``.
"""

from .checks import CHAT_ROLES, CONTROL_TOKENS, RECORD_KINDS, DataFormatError
from .loading import load_jsonl_dataset
from .preference import build_dpo_dataset
from .pretrain import build_pretrain_dataset
from .sft import IGNORE_INDEX, SFTCollator, build_sft_dataset, chat_segments, encode_chat
from .splits import BuiltDataset, PathSpec

__all__ = [
    "CHAT_ROLES",
    "CONTROL_TOKENS",
    "IGNORE_INDEX",
    "RECORD_KINDS",
    "BuiltDataset",
    "DataFormatError",
    "PathSpec",
    "SFTCollator",
    "build_dpo_dataset",
    "build_pretrain_dataset",
    "build_sft_dataset",
    "chat_segments",
    "encode_chat",
    "load_jsonl_dataset",
]
