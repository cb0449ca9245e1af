"""Quality filters for web text, one class per rule family.

==================== ============================================== ============================
stage name           class                                          source of the defaults
==================== ============================================== ============================
gopher_repetition    :class:`GopherRepetitionFilter`                Gopher (Rae et al. 2021), A1
gopher_quality       :class:`GopherQualityFilter`                   Gopher (Rae et al. 2021), A
fineweb_quality      :class:`FineWebQualityFilter`                  FineWeb (Penedo et al. 2024)
c4_quality           :class:`C4QualityFilter` (edits lines)         C4 (Raffel et al. 2020)
badwords             :class:`BadWordsFilter`                        C4 (block list)
==================== ============================================== ============================
"""

from __future__ import annotations

from .badwords import BadWordsFilter, load_word_list
from .base import DocumentFilter, FilterResult
from .c4 import C4QualityFilter
from .fineweb import FineWebQualityFilter
from .gopher import GopherQualityFilter, GopherRepetitionFilter

FILTER_CLASSES: dict[str, type[DocumentFilter]] = {
    cls.name: cls
    for cls in (GopherRepetitionFilter, GopherQualityFilter, FineWebQualityFilter, C4QualityFilter, BadWordsFilter)
}


def default_filters() -> list[DocumentFilter]:
    """The pipeline's filters in the order they run.

    The line-editing C4 rules come after the rules that measure lines, so those see the page as extracted.
    """
    return [cls() for cls in FILTER_CLASSES.values()]


__all__ = [
    "BadWordsFilter",
    "C4QualityFilter",
    "DocumentFilter",
    "FILTER_CLASSES",
    "FilterResult",
    "FineWebQualityFilter",
    "GopherQualityFilter",
    "GopherRepetitionFilter",
    "default_filters",
    "load_word_list",
]
