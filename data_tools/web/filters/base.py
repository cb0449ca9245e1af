"""The interface every quality filter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar


@dataclass
class FilterResult:
    """What a filter decided about one document.

    Attributes:
        text: the (possibly edited) text when kept, ``None`` when dropped.
        reason: why it was dropped (``None`` when kept).
        notes: side counts, e.g. lines removed by a line-level rule.
    """

    text: str | None
    reason: str | None = None
    notes: Counter = field(default_factory=Counter)

    @property
    def kept(self) -> bool:
        """True when the document passes."""
        return self.reason is None


class DocumentFilter(ABC):
    """A quality rule family. Thresholds are dataclass fields (defaults = published values).

    Two ways to use one:

    * ``rule(text, lang)`` returns the drop reason, or ``None`` to keep the document;
    * ``rule.apply(text, lang)`` returns a :class:`FilterResult`, which also carries the edited
      text for filters that remove lines (C4) and side counts.

    ``lang`` is the document's language code; Chinese/Japanese text is measured with CJK
    characters as words (see :mod:`data_tools.web.filters.text`).
    """

    #: Name used for the pipeline stage and in the stats table.
    name: ClassVar[str] = "filter"

    @abstractmethod
    def reason(self, text: str, lang: str = "en") -> str | None:
        """The reason to drop ``text``, or ``None`` to keep it."""

    def apply(self, text: str, lang: str = "en") -> FilterResult:
        """Run the rule; the default keeps the text unchanged when it passes."""
        why = self.reason(text, lang)
        return FilterResult(None if why else text, why)

    def __call__(self, text: str, lang: str = "en") -> str | None:
        return self.apply(text, lang).reason

    def with_options(self, **overrides: Any) -> DocumentFilter:
        """A copy with some thresholds changed; unknown names raise ``TypeError``."""
        known = {f.name for f in fields(self)}  # type: ignore[arg-type]
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"{self.name}: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        return replace(self, **overrides)  # type: ignore[type-var]
