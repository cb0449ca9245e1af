"""Turning cleaned pairs and documents into the four stage formats."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from data_tools.corpus.textutil import cjk_count, word_count
from minimind_hf.prompts import pick_prompt, translation_messages


@dataclass(frozen=True)
class CleanPair:
    """A pair after cleaning, with its domain and split decided."""

    en: str
    zh: str
    source: str
    origin: str
    finance: bool
    split: str
    sentence_like: bool

    @property
    def id(self) -> str:
        return hashlib.blake2b(f"{self.en}\t{self.zh}".encode(), digest_size=6).hexdigest()


def sft_record(pair: CleanPair) -> dict:
    """``{"conversations": [user, assistant]}`` with the pair's stable prompt phrasing."""
    return {"conversations": translation_messages(pair.en, pair.zh, prompt_id=pick_prompt(pair.en))}


def parallel_record(pair: CleanPair) -> dict:
    return {"en": pair.en, "zh": pair.zh, "source": pair.source, "id": pair.id}


def truncate_zh(zh: str) -> str | None:
    """A visibly incomplete translation: about the first half of ``zh`` (None when too short)."""
    if cjk_count(zh) < 6:
        return None
    cut = max(2, int(len(zh) * 0.45))
    return zh[:cut].rstrip("，、；：,;: ")


def dpo_record(pair: CleanPair, simplify) -> dict | None:
    """A preference pair: the reference as ``chosen`` and a systematically worse ``rejected`` answer.

    The kind cycles by a hash of the English side: ``simplified`` (the reference in Simplified
    script, only when that changes it), ``truncated`` (about half the reference), ``copy`` (the English
    source echoed). Falls back to the next kind when one does not apply; None if none does.
    """
    prompt_id = pick_prompt(pair.en)
    kinds = ("simplified", "truncated", "copy")
    start = int(hashlib.blake2b(pair.en.encode(), digest_size=2).hexdigest(), 16) % 3
    for k in range(3):
        kind = kinds[(start + k) % 3]
        if kind == "simplified":
            bad = simplify(pair.zh)
        elif kind == "truncated":
            bad = truncate_zh(pair.zh)
        else:
            bad = pair.en
        if bad and bad.strip() and bad.strip() != pair.zh.strip():
            return {
                "chosen": translation_messages(pair.en, pair.zh, prompt_id=prompt_id),
                "rejected": translation_messages(pair.en, bad, prompt_id=prompt_id),
                "kind": kind,
            }
    return None


def bilingual_docs(pairs: list[CleanPair], per_doc: int) -> list[str]:
    """Pretraining documents that interleave English lines with their translations."""
    docs, chunk = [], []
    for pair in pairs:
        chunk.append(f"{pair.en}\n{pair.zh}")
        if len(chunk) == per_doc:
            docs.append("\n\n".join(chunk))
            chunk = []
    if chunk:
        docs.append("\n\n".join(chunk))
    return docs


def is_short_clean(en: str, zh: str, max_words: int = 24, max_zh: int = 80) -> bool:
    """Short, sentence-sized pairs a tiny model can learn from quickly."""
    return 3 <= word_count(en) <= max_words and 2 <= len(zh) <= max_zh and cjk_count(zh) >= 2
