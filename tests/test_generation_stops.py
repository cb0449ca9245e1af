"""Generation never ends in silent empty output.

Base models stop at <|endoftext|>, an empty reply is said so, and ids the tokenizer cannot decode are never generated.
"""

import logging

import torch

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.checkpoints import load_checkpoint
from minimind_hf.cli import main
from minimind_hf.tokenization import save_tokenizer, stop_token_ids


def _favouring(token_id: int, vocab_size: int = 6400) -> MiniMindForCausalLM:
    """A tiny model whose every next token is ``token_id``.

    The layers add nothing to the residual stream, every token embeds to the same vector, and only ``token_id``'s
    lm_head row points along it.
    """
    torch.manual_seed(0)
    model = MiniMindForCausalLM(
        MiniMindConfig.from_preset("tiny", vocab_size=vocab_size, tie_word_embeddings=False)
    ).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                param.zero_()
        model.model.embed_tokens.weight.fill_(1.0)
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[token_id] = 1.0
    return model


def _saved(model, tokenizer, path):
    model.save_pretrained(path)
    save_tokenizer(tokenizer, path)
    return path


def test_stop_ids_include_endoftext(tokenizer):
    assert stop_token_ids(tokenizer) == [tokenizer.eos_token_id, 0]


def test_a_base_model_emitting_endoftext_stops_and_says_the_output_is_empty(tokenizer, tmp_path, capsys):
    path = _saved(_favouring(0), tokenizer, tmp_path / "base")
    model = load_checkpoint(path).model
    ids = tokenizer("Hello", return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0, eos_token_id=stop_token_ids(tokenizer))
    assert out.shape[1] == ids.shape[1] + 1  # ended at the first <|endoftext|>
    generations = tmp_path / "generations"
    assert main(["generate", str(path), "Hello", "--max-new-tokens", "8", "--output-dir", str(generations)]) == 0
    captured = capsys.readouterr()
    assert "the generation is (empty" in captured.err
    assert "generation: (empty" in (generations / "temperature_0.txt").read_text()


def test_a_larger_vocabulary_than_the_tokenizer_is_never_sampled(tokenizer, tmp_path, caplog):
    """A 7,000-row model with the 6,400-piece tokenizer: ids 6400.. decode to nothing and are suppressed."""
    path = _saved(_favouring(6900, vocab_size=7000), tokenizer, tmp_path / "wide")
    with caplog.at_level(logging.WARNING, logger="minimind_hf.checkpoints"):
        model = load_checkpoint(path).model
    assert "7000 vocabulary rows but its tokenizer only 6400 pieces" in caplog.text
    ids = tokenizer("Hello", return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None)
    assert out[0, ids.shape[1] :].max().item() < len(tokenizer)
    torch.manual_seed(0)
    sampled = model.generate(
        ids, max_new_tokens=6, do_sample=True, temperature=1.0, top_k=0, pad_token_id=0, eos_token_id=None
    )
    assert sampled[0, ids.shape[1] :].max().item() < len(tokenizer)
