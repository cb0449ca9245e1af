"""Training that survives what real machines do to it.

* a half-written newest checkpoint is found, moved aside and the previous good one resumed
  (:mod:`.resume_point`);
* SIGTERM / SIGINT finish the optimizer step, save a checkpoint and exit with status 75 (:mod:`.signals`);
* one run per output folder, a stale lock of a dead run taken over (:mod:`.lock`);
* a resume with a changed recipe is refused, listing the changes (:mod:`.fingerprint`);
* an unwritable output folder or too little disk for one checkpoint fails before the first step
  (:mod:`.preflight`);

all applied by :class:`RunGuard` in the stage runner; exit statuses in :mod:`.errors`.
"""

from .errors import (
    EXIT_DONE,
    EXIT_ERROR,
    EXIT_REFUSED,
    EXIT_STOPPED,
    RunRefused,
    TrainingStopped,
    exit_status,
)
from .fingerprint import RECIPE_NAME
from .guard import SUPERSEDED_DIR, RunGuard, load_finished
from .lock import LOCK_NAME, OutputDirLock
from .resume_point import BROKEN_DIR, check_checkpoint, select_resume_point

__all__ = [
    "BROKEN_DIR",
    "EXIT_DONE",
    "EXIT_ERROR",
    "EXIT_REFUSED",
    "EXIT_STOPPED",
    "LOCK_NAME",
    "RECIPE_NAME",
    "SUPERSEDED_DIR",
    "OutputDirLock",
    "RunGuard",
    "RunRefused",
    "TrainingStopped",
    "check_checkpoint",
    "exit_status",
    "load_finished",
    "select_resume_point",
]
