import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

import minimind_hf  # noqa: E402,F401  (registers MiniMind with the Auto classes)

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    from minimind_hf.tokenization import load_tokenizer

    return load_tokenizer()


@pytest.fixture
def tiny_model():
    from minimind_hf import MiniMindConfig, MiniMindForCausalLM

    torch.manual_seed(0)
    return MiniMindForCausalLM(MiniMindConfig.from_preset("tiny")).eval()
