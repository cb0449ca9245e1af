"""Repeat, at the end of ``make all``, what a stage's own validation said: ``python scripts/stage_warnings.py out``.

Reads ``<run>/<stage>/stage_complete.json`` (``warnings``, written by the stage runner) of every stage and
control run the stage contract names (``minimind_hf/data/layout.py``, loaded by its path so that neither torch nor
transformers is imported); prints nothing when no stage got worse. The exit status is 0 either way: the warning
is for the reader.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

_LAYOUT_FILE = Path(__file__).resolve().parents[1] / "minimind_hf" / "data" / "layout.py"
_spec = importlib.util.spec_from_file_location("stage_contract", _LAYOUT_FILE)
layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layout)


def stage_warnings(run_dir: Path) -> list[str]:
    found = []
    for stage in (*layout.STAGE_NAMES, *layout.CONTROL_RUNS):
        marker = run_dir / stage / layout.COMPLETE_MARKER
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
