"""The bilingual tokenizer: special tokens, chat template, save/load, training."""

import json

import pytest
from transformers import AutoTokenizer

from minimind_hf.tokenization import (
    CHAT_TEMPLATE,
    iter_jsonl_texts,
    load_tokenizer,
    save_tokenizer,
    tokens_per_char,
    train_tokenizer,
)


def test_default_tokenizer_shape(tokenizer):
    assert len(tokenizer) == 6400
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.model_input_names == ["input_ids", "attention_mask"]
    assert set(tokenizer("hi")) == {"input_ids", "attention_mask"}


@pytest.mark.parametrize(
    "text", ["Net present value (NPV) of 1,234.56 USD.", "淨現值（NPV）為新臺幣 1,234 元。", "简体中文也可以"]
)
def test_round_trip_text(tokenizer, text):
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_chat_template_renders_chatml(tokenizer):
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert (
        text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    )
    prompt = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")


def test_assistant_mask_covers_reply_and_im_end(tokenizer):
    messages = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "你好"}]
    out = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    marked = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(marked) == "你好<|im_end|>"


def test_unknown_role_is_rejected(tokenizer):
    with pytest.raises(Exception, match="unknown chat role tool"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_save_and_auto_load(tmp_path, tokenizer):
    save_tokenizer(tokenizer, tmp_path)
    # a class name every transformers version knows (5.x alone would write TokenizersBackend)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again("資產負債表")["input_ids"] == tokenizer("資產負債表")["input_ids"]
    assert again.chat_template == CHAT_TEMPLATE
    assert load_tokenizer(tmp_path).eos_token == "<|im_end|>"


def test_train_small_tokenizer(tmp_path):
    data = tmp_path / "t.jsonl"
    rows = [
        {"text": "the interest rate per period " * 3},
        {"conversations": [{"role": "user", "content": "利率"}]},
        {"en": "asset", "zh": "資產"},
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows * 20))
    tok = train_tokenizer(iter_jsonl_texts([data]), vocab_size=300, show_progress=False)
    assert len(tok) <= 300 and tok.convert_tokens_to_ids("<|im_end|>") == 2
    assert tok.decode(tok("資產 interest")["input_ids"]) == "資產 interest"
    assert tokens_per_char(tok, ["interest rate"]) < 1.0


def test_bad_jsonl_names_file_and_line(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "ok"}\n{"text": broken}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        list(iter_jsonl_texts([data]))
    data.write_text('{"title": "x"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: no 'text'"):
        list(iter_jsonl_texts([data]))
