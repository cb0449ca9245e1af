"""One run per output folder: ``output_dir/.run.lock`` names the host and pid of the run that holds it.

The lock is an ``fcntl.flock`` on that file, so the kernel releases it when its process dies, however it
dies (SIGKILL, OOM killer, power cut of a client): a lock file left by a dead process is recognised
because nobody holds its flock, and is taken over with a warning that names the dead run. While its
process is alive a second run is refused with a message naming it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from .errors import RunRefused

logger = logging.getLogger("minimind_hf.training")

LOCK_NAME = ".run.lock"

__all__ = ["LOCK_NAME", "OutputDirLock", "read_lock"]


def read_lock(path: str | os.PathLike) -> dict:
    """What the lock file says about its holder (``{}`` when it is empty or unreadable)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "a process that left no details"
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder["started"])) if "started" in holder else "?"
    command = holder.get("command", "?")
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} (since {since}: {command})"


class OutputDirLock:
    """Hold ``output_dir/.run.lock`` for the life of a run (a context manager; ``acquire`` / ``release`` too)."""

    def __init__(self, output_dir: str | os.PathLike):
        self.output_dir = Path(output_dir)
        self.path = self.output_dir / LOCK_NAME
        self._fd: int | None = None
        self.took_over: dict | None = None  # what the stale lock said, when one was taken over

    def acquire(self) -> OutputDirLock:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunRefused(
                    f"{self.output_dir} is in use by another run: {_describe(read_lock(self.path))}. "
                    f"Wait for it to finish, stop it, or give this run another output_dir "
                    f"(the lock is {self.path})"
                ) from None
            try:  # the holder may have removed the file between our open and our flock: lock the current one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = read_lock(self.path)
        if previous:
            self.took_over = previous
            logger.warning(
                "%s: taking over a stale lock from %s, which is no longer running", self.path, _describe(previous)
            )
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # still holding the flock, so no other run can be between its open and flock
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputDirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
