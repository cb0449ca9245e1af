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


@pytest.fixture
def saved_tiny(tmp_path, tiny_model, tokenizer):
    """The tiny model saved with the shipped tokenizer, as the stages save a checkpoint."""
    from minimind_hf.tokenization import save_tokenizer

    path = tmp_path / "ckpt"
    tiny_model.save_pretrained(path)
    save_tokenizer(tokenizer, path)
    return path


@pytest.fixture(scope="session")
def byte_tok():
    """No merges: every byte is one token with id 3 + byte value (see tests/data_helpers.py)."""
    from tests.data_helpers import make_byte_tokenizer

    return make_byte_tokenizer()


@pytest.fixture(scope="session")
def bpe_tok():
    """A small trained byte-level BPE with the project's special tokens."""
    from tests.data_helpers import make_bpe_tokenizer

    return make_bpe_tokenizer()


@pytest.fixture(scope="session", params=["bytes", "bpe", "shipped"])
def chat_tok(request, byte_tok, bpe_tok, tokenizer):
    """Each of the three tokenizers the label tests run against."""
    return {"bytes": byte_tok, "bpe": bpe_tok, "shipped": tokenizer}[request.param]
