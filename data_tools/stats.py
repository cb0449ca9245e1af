"""What every data step reports: how many items it kept and dropped, why, and any other counts.

One type for the web pipeline and the corpus build. A :class:`Stats` holds one :class:`StepStats` per
step, in the order the steps are first used; counts from several workers or builds are added with
:meth:`Stats.merge`. Drop reasons are snake_case tags (``exact_duplicate``, ``http_404``); build one from
names and words with :func:`reason_tag`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def reason_tag(*parts: str) -> str:
    """A snake_case reason from words and names.

    ``reason_tag("HTTP", "404")`` is ``http_404``, ``reason_tag("unreadable payload", "KeyError")`` is
    ``unreadable_payload_key_error``.
    """
    text = "_".join(_CAMEL.sub("_", str(part)) for part in parts)
    return _NOT_WORD.sub("_", text.lower()).strip("_")


@dataclass
class StepStats:
    """Counts for one step.

    Attributes:
        name: step name as printed in the table.
        kept: items that left the step.
        dropped: drop reason -> count.
        notes: other counts that are not drops (replacements made, lines removed, items read per source...).
        seconds: wall time spent inside the step.
        last_reason: the reason of the latest drop (to report which item went where).
    """

    name: str
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    last_reason: str | None = field(default=None, repr=False, compare=False)

    def keep(self, n: int = 1) -> None:
        """Count ``n`` items that entered and left the step."""
        self.kept += n

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` items that entered the step and were dropped for ``reason``."""
        self.dropped[reason] += n
        self.last_reason = reason

    def note(self, key: str, n: int = 1) -> None:
        """Add ``n`` to a side count that is not a drop."""
        self.notes[key] += n

    @property
    def n_dropped(self) -> int:
        """Total number of dropped items."""
        return sum(self.dropped.values())

    @property
    def seen(self) -> int:
        """Items that entered the step: the kept and the dropped ones."""
        return self.kept + self.n_dropped

    def merge(self, other: StepStats) -> None:
        """Add the counts of ``other`` (same step, another worker) to this one."""
        if other.name != self.name:
            raise ValueError(f"cannot merge step {other.name!r} into {self.name!r}")
        self.kept += other.kept
        self.dropped.update(other.dropped)
        self.notes.update(other.notes)
        self.seconds += other.seconds

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; reasons sorted by count."""
        return {
            "stage": self.name,
            "in": self.seen,
            "kept": self.kept,
            "dropped": self.n_dropped,
            "drop_reasons": dict(self.dropped.most_common()),
            "notes": dict(self.notes.most_common()),
            "seconds": round(self.seconds, 4),
        }


@dataclass
class Stats:
    """Ordered collection of :class:`StepStats`, one per step.

    ``stats.step(name)`` is one step's counter; ``stats.drop(step, reason)``, ``stats.keep(step)`` and
    ``stats.note(step, key, n)`` count into it directly.
    """

    steps: dict[str, StepStats] = field(default_factory=dict)

    def step(self, name: str) -> StepStats:
        """The stats of step ``name``, created (at the end of the order) on first use."""
        if name not in self.steps:
            self.steps[name] = StepStats(name)
        return self.steps[name]

    def keep(self, step: str, n: int = 1) -> None:
        self.step(step).keep(n)

    def drop(self, step: str, reason: str, n: int = 1) -> None:
        self.step(step).drop(reason, n)

    def note(self, step: str, key: str, n: int = 1) -> None:
        self.step(step).note(key, n)

    def merge(self, other: Stats) -> None:
        """Add another worker's counts, step by step."""
        for name, st in other.steps.items():
            self.step(name).merge(st)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready list of steps in pipeline order."""
        return {"stages": [st.to_dict() for st in self.steps.values()]}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view by kind, steps sorted.

        ``{"kept": {step: n}, "dropped": {step: {reason: n}}, "notes": {step: {key: n}}}``; a step appears under a kind
        only if it counted one.
        """
        steps = sorted(self.steps.values(), key=lambda st: st.name)
        return {
            "kept": {st.name: st.kept for st in steps if st.kept},
            "dropped": {st.name: dict(sorted(st.dropped.items())) for st in steps if st.dropped},
            "notes": {st.name: dict(sorted(st.notes.items())) for st in steps if st.notes},
        }

    def format_table(self, max_reasons: int = 12) -> str:
        """A plain-text table: one row per step, its drop reasons and notes indented below."""
        header = f"{'stage':<32}{'in':>10}{'kept':>10}{'dropped':>10}{'sec':>10}"
        lines = [header, "-" * len(header)]
        for st in self.steps.values():
            lines.append(f"{st.name:<32}{st.seen:>10}{st.kept:>10}{st.n_dropped:>10}{st.seconds:>10.2f}")
            for label, counter in (("drop", st.dropped), ("note", st.notes)):
                items = counter.most_common()
                for reason, n in items[:max_reasons]:
                    lines.append(f"    {label}: {reason:<46}{n:>10}")
                if len(items) > max_reasons:
                    rest = sum(n for _, n in items[max_reasons:])
                    more = f"({len(items) - max_reasons} more)"
                    lines.append(f"    {label}: {more:<46}{rest:>10}")
        return "\n".join(lines)
