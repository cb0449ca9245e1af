"""``python -m minimind_hf.train RECIPE [overrides]``: the stage runner (:mod:`minimind_hf.training.runner`)."""

import sys

from .training.runner import build_datasets, main, parse_args  # noqa: F401  (their names before the move)
from .training.safety import exit_status

if __name__ == "__main__":
    sys.exit(exit_status(main))
