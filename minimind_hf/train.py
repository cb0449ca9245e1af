"""``python -m minimind_hf.train RECIPE [overrides]``: the stage runner (:mod:`minimind_hf.training.runner`)."""

import sys

from .training.runner import build_datasets, main, parse_args  # noqa: F401  (their names before the move)
from .training.safety import exit_status
from .utils.command_errors import one_line_errors

if __name__ == "__main__":
    sys.exit(one_line_errors("python -m minimind_hf.train")(lambda argv: exit_status(main, argv))())
