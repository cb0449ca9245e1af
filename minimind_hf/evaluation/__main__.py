"""``python -m minimind_hf.evaluation CHECKPOINT [...] --test FILE --validation FILE``."""

import sys

from .cli import main

sys.exit(main())
