"""Per-stage bookkeeping: how many items each stage saw, kept and dropped, and why.

Every stage of the web pipeline owns one :class:`StageStats`. Counts from several worker
processes are merged with :meth:`PipelineStats.merge`, then printed as a table
(:meth:`PipelineStats.format_table`) and written as JSON (:meth:`PipelineStats.to_dict`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageStats:
    """Counts for one stage.

    Attributes:
        name: stage name as printed in the table.
        seen: items that entered the stage.
        kept: items that left it.
        dropped: drop reason -> count (their sum is ``seen - kept``).
        notes: other counts that are not drops (replacements made, lines removed, languages kept...).
        seconds: wall time spent inside the stage.
        last_reason: the reason of the latest drop (to report which item went where).
    """

    name: str
    seen: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    last_reason: str | None = field(default=None, repr=False, compare=False)

    def keep(self) -> None:
        """Count one item that entered and left the stage."""
        self.seen += 1
        self.kept += 1

    def drop(self, reason: str) -> None:
        """Count one item that entered the stage and was dropped for ``reason``."""
        self.seen += 1
        self.dropped[reason] += 1
        self.last_reason = reason

    def note(self, key: str, value: int = 1) -> None:
        """Add ``value`` to a side count that is not a drop."""
        self.notes[key] += value

    @property
    def n_dropped(self) -> int:
        """Total number of dropped items."""
        return sum(self.dropped.values())

    def merge(self, other: StageStats) -> None:
        """Add the counts of ``other`` (same stage, another worker) to this one."""
        if other.name != self.name:
            raise ValueError(f"cannot merge stage {other.name!r} into {self.name!r}")
        self.seen += other.seen
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
class PipelineStats:
    """Ordered collection of :class:`StageStats`, one per stage."""

    stages: dict[str, StageStats] = field(default_factory=dict)

    def stage(self, name: str) -> StageStats:
        """The stats of stage ``name``, created (at the end of the order) on first use."""
        if name not in self.stages:
            self.stages[name] = StageStats(name)
        return self.stages[name]

    def merge(self, other: PipelineStats) -> None:
        """Add another worker's counts, stage by stage."""
        for name, st in other.stages.items():
            self.stage(name).merge(st)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready list of stages in pipeline order."""
        return {"stages": [st.to_dict() for st in self.stages.values()]}

    def format_table(self, max_reasons: int = 12) -> str:
        """A plain-text table: one row per stage, its drop reasons and notes indented below."""
        header = f"{'stage':<32}{'in':>10}{'kept':>10}{'dropped':>10}{'sec':>10}"
        lines = [header, "-" * len(header)]
        for st in self.stages.values():
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
