"""The records that flow through the corpus build (the counter every step reports into is :mod:`data_tools.stats`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from data_tools.stats import Stats

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


Tally = Stats
"""The corpus build's name for :class:`data_tools.stats.Stats`: ``tally.drop("parallel.scripts", "zh_no_cjk")``."""
