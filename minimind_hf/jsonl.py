"""Reading jsonl files with errors that name the file and line: the one reader of the project's plain
jsonl files (the stage datasets go through :mod:`minimind_hf.data`, which checks records per format)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from tqdm.auto import tqdm


def json_error_text(err: json.JSONDecodeError) -> str:
    """``Expecting ',' delimiter at column 12``; ``Unterminated string starting at column 9`` (the decoder's own
    message may already end in "at")."""
    where = "column" if err.msg.endswith(" at") else "at column"
    return f"{err.msg} {where} {err.colno}"


def read_jsonl(
    path: str | os.PathLike[str],
    *,
    error: type[Exception] = ValueError,
    with_blank_lines: bool = False,
    progress: str | None = None,
) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Yield ``(line_number, row)`` for each non-blank line of ``path``.

    A line that is not UTF-8, not JSON or not a JSON object raises ``error`` (``ValueError`` or a subclass
    such as a tool's own input error) naming file and line. With ``with_blank_lines`` a blank line yields
    ``(line_number, None)`` so that callers can count them; ``progress`` is the description of a byte
    progress bar (shown on a terminal only).
    """
    with (
        open(path, "rb") as handle,
        tqdm(
            total=os.path.getsize(path),
            unit="B",
            unit_scale=True,
            desc=progress,
            leave=False,
            disable=True if progress is None else None,
        ) as bar,
    ):
        for line_no, raw in enumerate(handle, 1):
            bar.update(len(raw))
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise error(f"{path}:{line_no}: not UTF-8 text ({err.reason})") from None
            if not line.strip():
                if with_blank_lines:
                    yield line_no, None
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{path}:{line_no}: not valid JSON ({json_error_text(err)})") from None
            if not isinstance(row, dict):
                raise error(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            yield line_no, row
