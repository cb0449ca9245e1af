"""Shared by the data tests: small tokenizers whose ids can be counted by hand, and jsonl helpers."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from minimind_hf.data import IGNORE_INDEX
from tests import paths

FIXTURES = paths.FIXTURES / "data"

SPECIALS = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}

CHATML = (
    "{%- for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else %}{{ message['content'] + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for every byte (what ByteLevel pre-tokenisation uses)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def _wrap(backend: Tokenizer) -> PreTrainedTokenizerFast:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def make_byte_tokenizer() -> PreTrainedTokenizerFast:
    """No merges: every byte is one token with id 3 + byte value, so positions can be counted by hand."""
    vocab = dict(SPECIALS)
    vocab.update({char: 3 + byte for byte, char in _bytes_to_unicode().items()})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return _wrap(backend)


def make_bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A small trained byte-level BPE (multi-byte tokens, merged whitespace) with the same specials."""
    corpus = [
        "<|im_start|>user\nTranslate the following English text into Traditional Chinese.<|im_end|>\n",
        "<|im_start|>assistant\n每期的利率。<|im_end|>\n",
        "The rate of interest per period. Save the document and close it.   Indented  text\n\n",
        "開啟檔案。儲存文件。然後關閉它。印表機沒有紙了。傳回投資的淨現值。",
    ] * 20
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    return _wrap(backend)


def byte_ids(text: str) -> list[int]:
    """Hand reference for the byte tokenizer: specials by id, everything else byte by byte."""
    ids: list[int] = []
    for piece in re.split(r"(<\|endoftext\|>|<\|im_start\|>|<\|im_end\|>)", text):
        ids.extend([SPECIALS[piece]] if piece in SPECIALS else [3 + b for b in piece.encode("utf-8")])
    return ids


def ignored(text: str) -> list[int]:
    return [IGNORE_INDEX] * len(byte_ids(text))


def write_jsonl(path: Path, rows: list) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
    return path


def chat(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in turns]


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def make_docs(n: int) -> list[dict]:
    return [{"text": f"doc {i}: " + "lorem ipsum " * (i % 9) + "每期的利率" * (i % 4)} for i in range(n)]


def token_stream(tokenizer, docs: list[dict]) -> list[int]:
    stream = []
    for doc in docs:
        if doc["text"].strip():
            stream += tokenizer(doc["text"], add_special_tokens=False)["input_ids"] + [0]
    return stream


MULTI_TURN = chat(
    ("system", "You translate English into Traditional Chinese."),
    ("user", "Save the document."),
    ("assistant", "儲存文件。"),
    ("user", "And close it."),
    ("assistant", "然後關閉它。"),
)

GOOD_CHAT = {"conversations": chat(("user", "Hi"), ("assistant", "你好"))}
