"""The old name of :mod:`data_tools.publish`: ``python -m data_tools.hub push ...`` and
``import data_tools.hub`` still work and mean exactly that module (the corpus adapter that *reads* Hub
datasets is :mod:`data_tools.corpus.adapters.hub`)."""

import sys

from data_tools import publish

if __name__ == "__main__":
    sys.exit(publish.main())
sys.modules[__name__] = publish
