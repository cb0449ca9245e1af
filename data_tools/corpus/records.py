"""The records that flow through the corpus build, and the counter every step reports into."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Literal

Script = Literal["hant", "hans"]


@dataclass(frozen=True)
class Pair:
    """One English -> Chinese pair as an adapter found it.

    ``source`` is the declared source name, ``origin`` says where in it (``file:id`` or
    ``file:line``) so a bad pair can be traced back; ``script`` is ``"hans"`` when the Chinese side is
    Simplified and must go through OpenCC before use.
    """

    en: str
    zh: str
    source: str
    origin: str = ""
    script: Script = "hant"
    origin_script: Script | None = None  # set when the Chinese side was converted from another script

    def __post_init__(self) -> None:
        if self.origin_script is None:
            object.__setattr__(self, "origin_script", self.script)


@dataclass(frozen=True)
class Doc:
    """One monolingual (or bilingual) document for pretraining; ``lang`` is ``en``, ``zh`` or ``mix``."""

    text: str
    source: str
    lang: str
    origin: str = ""


class CorpusError(ValueError):
    """A source could not be read; the message names the file and the line or record."""


@dataclass
class Tally:
    """Kept / dropped counts per step and reason, so nothing is lost silently.

    ``tally.drop("parallel.script", "zh_no_cjk")`` counts one dropped item; ``tally.keep(step)`` one
    kept item; ``tally.note(step, key, n)`` any other figure (e.g. items read per source).
    """

    kept: Counter = field(default_factory=Counter)
    dropped: defaultdict = field(default_factory=lambda: defaultdict(Counter))
    notes: defaultdict = field(default_factory=lambda: defaultdict(Counter))

    def keep(self, step: str, n: int = 1) -> None:
        self.kept[step] += n

    def drop(self, step: str, reason: str, n: int = 1) -> None:
        self.dropped[step][reason] += n

    def note(self, step: str, key: str, n: int = 1) -> None:
        self.notes[step][key] += n

    def dropped_total(self, step: str) -> int:
        return sum(self.dropped[step].values())

    def merge(self, other: "Tally") -> None:
        self.kept.update(other.kept)
        for step, reasons in other.dropped.items():
            self.dropped[step].update(reasons)
        for step, keys in other.notes.items():
            self.notes[step].update(keys)

    def as_dict(self) -> dict:
        """A JSON-ready view: ``{"kept": {...}, "dropped": {step: {reason: n}}, "notes": {...}}``."""
        return {
            "kept": dict(sorted(self.kept.items())),
            "dropped": {s: dict(sorted(r.items())) for s, r in sorted(self.dropped.items())},
            "notes": {s: dict(sorted(k.items())) for s, k in sorted(self.notes.items())},
        }
