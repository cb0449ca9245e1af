"""minimind-hf: MiniMind, a small LLaMA-style model, on the Hugging Face stack.

Importing the package registers MiniMind with ``AutoConfig`` and ``AutoModelForCausalLM``, so
``AutoModelForCausalLM.from_pretrained(path)`` loads a MiniMind checkpoint without ``trust_remote_code``.
Checkpoints also carry ``auto_map`` and the model code, for users who do not have this package.
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .configuration_minimind import PRESETS, MiniMindConfig
from .modeling_minimind import MiniMindForCausalLM, MiniMindModel, MiniMindPreTrainedModel

__version__ = "0.1.0"

AutoConfig.register(MiniMindConfig.model_type, MiniMindConfig, exist_ok=True)
AutoModel.register(MiniMindConfig, MiniMindModel, exist_ok=True)
AutoModelForCausalLM.register(MiniMindConfig, MiniMindForCausalLM, exist_ok=True)
# save_pretrained then writes ``auto_map`` and copies the two model files next to the weights.
MiniMindConfig.register_for_auto_class()
MiniMindForCausalLM.register_for_auto_class("AutoModelForCausalLM")


def check_tokenizer_fits(model_or_config, tokenizer) -> None:
    """Raise ``ValueError`` if the tokenizer can emit ids the model's embedding table does not have."""
    config = getattr(model_or_config, "config", model_or_config)
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}; "
            "retrain the tokenizer with a smaller vocabulary or build the model with "
            f"vocab_size>={len(tokenizer)}"
        )


__all__ = [
    "PRESETS",
    "MiniMindConfig",
    "MiniMindModel",
    "MiniMindPreTrainedModel",
    "MiniMindForCausalLM",
    "check_tokenizer_fits",
]
