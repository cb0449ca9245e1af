"""What a stage run ends with, as an exception and as a process exit status.

| status | meaning |
|---|---|
| 0 | done (or already done: the stage was skipped) |
| 75 | stopped by SIGTERM / SIGINT after saving a checkpoint; run the same command again to continue |
| 3 | refused before training: the folder is held, the recipe changed, no good checkpoint, or a preflight failed |
| 1 | any other error (a Python traceback) |

75 is ``EX_TEMPFAIL`` of ``sysexits.h``: "try again later", what a scheduler's requeue logic looks for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("minimind_hf.training")

EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_REFUSED = 3
EXIT_STOPPED = 75

__all__ = ["EXIT_DONE", "EXIT_ERROR", "EXIT_REFUSED", "EXIT_STOPPED", "RunRefused", "TrainingStopped", "exit_status"]


class RunRefused(RuntimeError):
    """The run did not start: the message says what was found and what to do."""

    exit_code = EXIT_REFUSED


class TrainingStopped(RuntimeError):
    """A signal stopped training after the current optimizer step; ``checkpoint`` holds the saved state."""

    exit_code = EXIT_STOPPED

    def __init__(self, message: str, checkpoint: str | None = None, signal_name: str | None = None):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.signal_name = signal_name


def exit_status(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Call ``fn`` and map its outcome to the exit status above (other exceptions propagate: status 1)."""
    try:
        fn(*args, **kwargs)
    except RunRefused as err:
        logger.error("refused: %s", err)
        return err.exit_code
    except TrainingStopped as err:
        logger.warning("%s", err)
        return err.exit_code
    return EXIT_DONE
