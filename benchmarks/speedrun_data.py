"""Data files the speedrun's data levers train on, derived from the corpus's SFT chats.

``data/sft*.jsonl`` holds the general pairs as chats, each asked with one of the project's prompt phrasings
(:data:`minimind_hf.prompts.TRANSLATION_PROMPTS`). The levers need the pairs themselves:

* ``pairs``: ``{"en", "zh"}`` rows, so that the stage runner's ``prompt_id`` picks the phrasing (the short
  prompt lever);
* ``pretrain-pairs``: ``{"text"}`` rows of a pair in both orders (English, then Chinese, and the reverse),
  for pretraining on the parallel text itself instead of running text;
* ``both-directions``: the chats plus the reverse task (zh -> en) as extra chats;
* ``sentences``: only the sentence-like pairs (English side of 6+ words, the data card's definition).

A chat whose user turn matches no phrasing is an error naming the file and line.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

from minimind_hf.prompts import TRANSLATION_PROMPTS
from minimind_hf.utils.jsonl import read_jsonl, write_jsonl

REVERSE_PROMPT = "Translate to English:\n{zh}"
SENTENCE_WORDS = 6
_PHRASINGS = [
    re.compile("^" + re.escape(p).replace(re.escape("{en}"), "(?P<en>.*)") + "$", re.S) for p in TRANSLATION_PROMPTS
]


def chat_pair(row: dict, where: str) -> dict[str, str]:
    """``{"en", "zh"}`` of a one-turn translation chat (any system turn is ignored)."""
    turns = row.get("conversations")
    if turns is None and "en" in row and "zh" in row:
        return {"en": row["en"], "zh": row["zh"]}
    user = next((t["content"] for t in turns or [] if t["role"] == "user"), None)
    reply = next((t["content"] for t in turns or [] if t["role"] == "assistant"), None)
    if user is None or reply is None:
        raise ValueError(f"{where}: not a translation chat (needs a user and an assistant turn)")
    for phrasing in _PHRASINGS:
        match = phrasing.match(user)
        if match:
            return {"en": match["en"].strip(), "zh": reply.strip()}
    raise ValueError(f"{where}: the user turn matches none of the project's translation prompts: {user[:80]!r}")


def pairs(path: Path) -> Iterator[dict[str, str]]:
    for line_no, row in read_jsonl(path):
        yield chat_pair(row, f"{path}:{line_no}")


def is_sentence(en: str) -> bool:
    return len(en.split()) >= SENTENCE_WORDS


def derive(kind: str, source: Path, target: Path) -> int:
    """Write ``target`` (the ``kind`` of file above) from the chats of ``source``; returns its row count."""
    if kind == "pairs":
        return write_jsonl(target, pairs(source))
    if kind == "sentences":
        return write_jsonl(target, (p for p in pairs(source) if is_sentence(p["en"])))
    if kind == "pretrain-pairs":

        def texts():
            for p in pairs(source):
                yield {"text": f"{p['en']}\n{p['zh']}"}
                yield {"text": f"{p['zh']}\n{p['en']}"}

        return write_jsonl(target, texts())
    if kind == "both-directions":

        def chats():
            for line_no, row in read_jsonl(source):
                yield row
                p = chat_pair(row, f"{source}:{line_no}")
                yield {
                    "conversations": [
                        {"role": "user", "content": REVERSE_PROMPT.format(zh=p["zh"])},
                        {"role": "assistant", "content": p["en"]},
                    ]
                }

        return write_jsonl(target, chats())
    raise ValueError(f"unknown kind {kind!r}: pairs, sentences, pretrain-pairs or both-directions")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["pairs", "sentences", "pretrain-pairs", "both-directions"])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    print(f"{args.target}: {derive(args.kind, args.source, args.target):,} rows")


if __name__ == "__main__":
    main()
