r"""JSON-lines files: the one reader of the project's plain jsonl files, and the one writer.

The reader's errors name the file and line (the stage datasets go through :mod:`minimind_hf.data`, which checks records
per format).

A written line is one JSON object, UTF-8 and not ASCII-escaped, ended by ``\n`` (:func:`jsonl_line`);
:func:`write_jsonl` streams the records into a file that appears complete or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .atomic_files import atomic_write


def json_error_text(err: json.JSONDecodeError) -> str:
    """The decoder's message with its column, e.g. ``Expecting ',' delimiter at column 12``.

    The message may already end in "at" (``Unterminated string starting at column 9``).
    """
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


def jsonl_line(record: Mapping[str, Any]) -> str:
    r"""``record`` as one line of a jsonl file: compact JSON, non-ASCII characters kept, ``\n`` at the end."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]) -> int:
    """Write ``records`` to ``path``, one :func:`jsonl_line` each, and return how many were written.

    ``records`` may be a generator: rows are written as they come, never all held in memory. The file appears
    complete or not at all (:func:`~minimind_hf.utils.atomic_files.atomic_write`): an interrupted writer leaves the
    previous file, or none, never half of a new one. The folder is created if needed.
    """
    count = 0
    with atomic_write(Path(path)) as handle:
        for record in records:
            handle.write(jsonl_line(record))
            count += 1
    return count
