"""``python -m minimind_hf.train RECIPE [overrides]``: the stage runner (:mod:`minimind_hf.training.runner`)."""

import sys

from .training.runner import main
from .training.safety import exit_status

if __name__ == "__main__":
    sys.exit(exit_status(main))
