"""Repeat, at the end of ``make all``, what a stage's own validation said: ``python scripts/stage_warnings.py out``.

Reads ``<run>/<stage>/stage_complete.json`` (``warnings``, written by the stage runner) with the standard library
only; prints nothing when no stage got worse. The exit status is 0 either way: the warning is for the reader.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

STAGES = ("pretrain", "sft", "lora", "dpo")


def stage_warnings(run_dir: Path) -> list[str]:
    found = []
    for stage in STAGES:
        marker = run_dir / stage / "stage_complete.json"
        try:
            found += json.loads(marker.read_text(encoding="utf-8")).get("warnings") or []
        except (OSError, ValueError):
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings = stage_warnings(Path(argv[0] if argv else "out"))
    if warnings:
        bar = "!" * 78
        print(f"\n{bar}\nWARNING: a stage's own validation says it made the model worse:")
        for warning in warnings:
            print(f"  - {warning}")
        print(f"{bar}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
