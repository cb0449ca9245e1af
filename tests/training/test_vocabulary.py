"""A model trained from scratch takes its tokenizer's vocabulary, or the run refuses naming both sizes."""

import json

import pytest

from minimind_hf.tokenization import save_tokenizer
from minimind_hf.training import runner as train_module
from minimind_hf.training.runner import parse_args
from minimind_hf.training.vocabulary import vocabulary_overrides
from tests.paths import ROOT


def test_the_babylm_preset_follows_the_shipped_tokenizer(tokenizer):
    """llama2-42m names the course's 32,000 pieces; with the shipped 6,400-piece tokenizer it gets 6,400 rows."""
    assert vocabulary_overrides("llama2-42m", {}, tokenizer) == {"vocab_size": 6400}


def test_an_explicit_vocab_size_other_than_the_tokenizer_is_refused(tokenizer):
    with pytest.raises(ValueError, match="vocab_size 32000 but the tokenizer has 6400 pieces"):
        vocabulary_overrides("tiny", {"vocab_size": 32000}, tokenizer)


def test_pretraining_with_a_small_course_tokenizer_builds_that_vocabulary(bpe_tok, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    save_tokenizer(bpe_tok, tmp_path / "tok")
    stage_args, _ = parse_args(
        [
            "recipes/tiny/pretrain.yaml",
            "--tokenizer_name_or_path",
            str(tmp_path / "tok"),
            "--output_dir",
            str(tmp_path / "out"),
        ]
    )
    model, tokenizer = train_module._load_model(stage_args)
    assert model.config.vocab_size == len(tokenizer) == len(bpe_tok) < 6400
    stage_args.model.model_config_overrides = json.dumps({"vocab_size": 6400})
    with pytest.raises(ValueError, match=f"vocab_size 6400 but the tokenizer has {len(bpe_tok)} pieces"):
        train_module._load_model(stage_args)
