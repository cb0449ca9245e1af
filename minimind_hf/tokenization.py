"""The bilingual byte-level BPE tokenizer (vocabulary 6400) with a ChatML chat template.

``train_tokenizer`` learns the merges with the ``tokenizers`` library from jsonl text; the result is a
``PreTrainedTokenizerFast`` that round-trips through ``save_pretrained`` / ``AutoTokenizer``.
``load_tokenizer()`` returns the default one shipped inside the package (trained on English and
Chinese text, Traditional and Simplified).

Special tokens, fixed ids: ``<|endoftext|>`` = 0 (padding, unknown, document separator),
``<|im_start|>`` = 1 (bos), ``<|im_end|>`` = 2 (eos, ends every chat turn).

Generation stops at eos and at ``<|endoftext|>`` (:func:`stop_token_ids`): a base model that greedily emits the
document separator it learned in pretraining ends there instead of running on through special tokens that
decode to nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .utils.jsonl import read_jsonl

logger = logging.getLogger(__name__)

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
DEFAULT_VOCAB_SIZE = 6400
DEFAULT_TOKENIZER_DIR = Path(__file__).parent / "tokenizer"

# ChatML. Each assistant reply and its closing <|im_end|> sit inside {% generation %} so that
# ``apply_chat_template(..., return_assistant_tokens_mask=True)`` marks exactly the tokens that carry loss.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{- raise_exception('unknown chat role ' ~ message['role'] ~ ': expected system, user or assistant') }}"
    "{%- endif %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


# Chat text with control-token look-alikes in it. The chat template's own markers are control tokens; text inside
# a message that spells one ("<|im_end|>") is text, as pretraining tokenizes it (split_special_tokens). A chat is
# rendered with a placeholder for each message's content, the rendering is split at the placeholders, and the
# template's pieces and the contents are tokenized apart: the contents with split_special_tokens. Byte-level BPE
# pre-tokenizes at the template's "\n" and special tokens anyway, so an ordinary chat gets exactly the ids of
# apply_chat_template (tests/test_chat_control_tokens.py checks it).
_HOLE = "\ue000{}\ue001"
_HOLES = re.compile("\ue000(\\d+)\ue001")


def hole_messages(messages: list[dict]) -> tuple[list[dict], list[str]]:
    """Split a chat's contents out of its messages: ``(messages, contents)``.

    The messages hold a placeholder for each content (see :func:`split_chat_pieces`); the contents come in order.
    """
    contents, holed = [], []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            if "\ue000" in content or "\ue001" in content:
                raise ValueError(
                    "a chat message holds the private-use characters U+E000/U+E001, which the "
                    "tokenizer's chat rendering reserves"
                )
            message = {**message, "content": _HOLE.format(len(contents))}
            contents.append(content)
        holed.append(message)
    return holed, contents


def render_chat_pieces(
    tokenizer: Any,
    messages: list[dict],
    add_generation_prompt: bool = False,
) -> tuple[str, list[str]]:
    """The chat template's text with placeholders for the contents: ``(rendering, contents)``.

    A placeholder stands where each message's content goes; the contents come in order.
    """
    holed, contents = hole_messages(messages)
    return tokenizer.apply_chat_template(holed, tokenize=False, add_generation_prompt=add_generation_prompt), contents


def split_chat_pieces(text: str, contents: list[str]) -> list[tuple[str, bool]]:
    """``[(text, is_content), ...]`` of a rendering from :func:`render_chat_pieces` (or a part of one)."""
    pieces, position = [], 0
    for match in _HOLES.finditer(text):
        pieces.append((text[position : match.start()], False))
        pieces.append((contents[int(match.group(1))], True))
        position = match.end()
    pieces.append((text[position:], False))
    return [(piece, is_content) for piece, is_content in pieces if piece]


def encode_chat_pieces(tokenizer: Any, pieced: list[list[tuple[str, bool]]]) -> list[list[list[int]]]:
    """Token ids of each piece of each list of pieces.

    Template text with its control tokens, message contents with control-token text split (two tokenizer calls in all).
    """
    ids: dict[bool, list[list[int]]] = {}
    for is_content in (False, True):
        texts = [text for pieces in pieced for text, content in pieces if content is is_content]
        ids[is_content] = (
            tokenizer(texts, add_special_tokens=False, split_special_tokens=is_content, verbose=False)["input_ids"]
            if texts
            else []
        )
    taken = {False: 0, True: 0}
    out = []
    for pieces in pieced:
        row = []
        for _, is_content in pieces:
            row.append(ids[is_content][taken[is_content]])
            taken[is_content] += 1
        out.append(row)
    return out


def chat_ids(tokenizer: Any, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
    """The token ids of a chat, as ``apply_chat_template(..., tokenize=True)`` gives them.

    Except that text in a message spelling a control token stays text. The one way the project tokenizes a chat prompt
    (evaluation, command line, server).
    """
    return chat_ids_batch(tokenizer, [messages], add_generation_prompt)[0]


def chat_ids_batch(tokenizer: Any, chats: list[list[dict]], add_generation_prompt: bool = True) -> list[list[int]]:
    """:func:`chat_ids` of many chats in two tokenizer calls."""
    pieced = [split_chat_pieces(*render_chat_pieces(tokenizer, messages, add_generation_prompt)) for messages in chats]
    return [[token for piece in row for token in piece] for row in encode_chat_pieces(tokenizer, pieced)]


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The ids generation ends at: eos, then ``<|endoftext|>`` where the vocabulary has it."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    endoftext = tokenizer.get_vocab().get(ENDOFTEXT)
    if endoftext is not None and endoftext not in ids:
        ids.append(int(endoftext))
    return ids


def iter_jsonl_texts(files: Iterable[str | Path], field: str = "text", max_chars: int | None = None) -> Iterator[str]:
    """Yield the text of every jsonl row; chat rows (``conversations``) yield their message contents.

    Stops after ``max_chars`` characters in all, if given. Raises ``ValueError`` naming file and line on
    a malformed row.
    """
    seen = 0
    for file in files:
        for line_no, row in read_jsonl(file):
            if field in row:
                texts = [row[field]]
            elif "conversations" in row:
                texts = [m.get("content", "") for m in row["conversations"]]
            elif "en" in row and "zh" in row:
                texts = [row["en"], row["zh"]]
            else:
                raise ValueError(f"{file}:{line_no}: no '{field}', 'conversations' or 'en'/'zh' field")
            for text in texts:
                if not isinstance(text, str):
                    raise ValueError(f"{file}:{line_no}: expected a string, got {type(text).__name__}")
                yield text
                seen += len(text)
                if max_chars is not None and seen >= max_chars:
                    return


def wrap_tokenizer(tokenizer: Tokenizer, model_max_length: int = 32768) -> PreTrainedTokenizerFast:
    """Give a raw ``tokenizers.Tokenizer`` the project's special tokens, chat template and input names."""
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != expected_id:
            raise ValueError(
                f"tokenizer: special token {token} must have id {expected_id}, has {tokenizer.token_to_id(token)}"
            )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=IM_START,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=ENDOFTEXT,
        chat_template=CHAT_TEMPLATE,
        model_input_names=["input_ids", "attention_mask"],
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    min_frequency: int = 2,
    show_progress: bool = True,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` (an iterable of strings, e.g. :func:`iter_jsonl_texts`)."""
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + special tokens)")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(tokenizer)


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, directory: str | Path) -> Path:
    """``save_pretrained`` that both transformers 4.x and 5.x can load back.

    transformers 5 records ``tokenizer_class: TokenizersBackend``, a name 4.x does not know;
    ``PreTrainedTokenizerFast`` means the same there and loads in both.
    """
    directory = Path(directory)
    tokenizer.save_pretrained(directory)
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    loaded_state = {k: config.pop(k) for k in ("is_local", "local_files_only") if k in config}  # load-time only
    if config.get("tokenizer_class") != "PreTrainedTokenizerFast" or loaded_state:
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return directory


def load_tokenizer(path: str | Path | None = None) -> PreTrainedTokenizerFast:
    """Load a tokenizer directory (or Hub name); ``None`` gives the default shipped with the package.

    A tokenizer saved under a class name the installed transformers does not know (transformers 5 writes
    ``TokenizersBackend``, which 4.x cannot read) is read as the ``PreTrainedTokenizerFast`` it is. A
    SentencePiece ``*.model`` file (llama2.c, Llama 2) is converted (:mod:`minimind_hf.spm`). The ChatML
    template is added only to a tokenizer that has the ChatML tokens.
    """
    path = DEFAULT_TOKENIZER_DIR if path is None else path
    if str(path).endswith(".model") and Path(path).is_file():
        from .spm import convert_sentencepiece

        return convert_sentencepiece(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except ValueError as err:
        logger.warning("AutoTokenizer could not load %s (%s); reading tokenizer.json directly", path, err)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path))
    if tokenizer.chat_template is None and IM_START in tokenizer.get_vocab():
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tokens_per_char(tokenizer: PreTrainedTokenizerFast, texts: Iterable[str]) -> float:
    """Tokens per character over ``texts`` (lower is better compression)."""
    chars = tokens = 0
    for text in texts:
        chars += len(text)
        tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return tokens / max(chars, 1)
