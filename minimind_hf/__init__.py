"""minimind-hf: MiniMind, a small LLaMA-style model, on the Hugging Face stack.

Importing the package registers MiniMind with ``AutoConfig`` and ``AutoModelForCausalLM``, so
``AutoModelForCausalLM.from_pretrained(path)`` loads a MiniMind checkpoint without ``trust_remote_code``.
Checkpoints also carry ``auto_map`` and the model code, for users who do not have this package.
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .checkpoints import check_tokenizer_fits
from .configuration_minimind import PRESETS, MiniMindConfig
from .modeling_minimind import MiniMindForCausalLM, MiniMindModel, MiniMindPreTrainedModel

__version__ = "0.1.0"

AutoConfig.register(MiniMindConfig.model_type, MiniMindConfig, exist_ok=True)
AutoModel.register(MiniMindConfig, MiniMindModel, exist_ok=True)
AutoModelForCausalLM.register(MiniMindConfig, MiniMindForCausalLM, exist_ok=True)
# save_pretrained then writes ``auto_map`` and copies the two model files next to the weights.
MiniMindConfig.register_for_auto_class()
MiniMindForCausalLM.register_for_auto_class("AutoModelForCausalLM")


__all__ = [
    "PRESETS",
    "MiniMindConfig",
    "MiniMindModel",
    "MiniMindPreTrainedModel",
    "MiniMindForCausalLM",
    "check_tokenizer_fits",
]
