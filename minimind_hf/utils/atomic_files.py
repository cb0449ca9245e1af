"""Files that are either complete or absent: write to a temporary name in the same folder, fsync, rename.

A process killed while writing leaves at most a hidden ``.NAME.tmp-PID`` file next to the target, never
a half-written target; the next write of that target removes it (its process is gone) and replaces the
target in one ``os.replace`` (atomic on POSIX and Windows within one file system).

    with atomic_write(path) as fh:          # text; mode="wb" for bytes
        fh.write(...)
    atomic_write_text(path, text)
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_text", "check_can_write", "temporary_name"]


def temporary_name(path: str | os.PathLike) -> Path:
    """The name :func:`atomic_write` writes ``path`` under before renaming it (same folder, hidden)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_dead_temporaries(path: Path) -> None:
    """Temporaries of ``path`` left by writers that were killed (their pid no longer runs)."""
    prefix = f".{path.name}.tmp-"
    for leftover in path.parent.glob(f"{glob.escape(prefix)}*"):
        pid = leftover.name[len(prefix) :]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8", **open_kwargs: Any
) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces ``path``, on an error it is removed."""
    if not mode.startswith(("w", "x")):
        raise ValueError(f"atomic_write writes a whole file; mode {mode!r} is not a write mode")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temporaries(path)
    tmp = temporary_name(path)
    if "b" in mode:
        encoding = None
    try:
        with open(tmp, mode.replace("x", "w"), encoding=encoding, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if "x" in mode and path.exists():
            raise FileExistsError(f"{path} exists")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """``Path.write_text`` that never leaves a half-written file."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def check_can_write(path: str | os.PathLike) -> None:
    """Fail now, before any work, if ``path`` could not be written later.

    Its folder is created if needed and a probe file is written there and removed. Raises the ``OSError`` (it names the
    path).
    """
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    probe = temporary_name(Path(path))
    try:
        with open(probe, "w", encoding="utf-8"):
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            probe.unlink()
