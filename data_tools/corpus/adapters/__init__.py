"""Source adapters: each turns one kind of file tree into corpus records.

The records are :class:`~data_tools.corpus.records.Pair` (parallel) or :class:`~data_tools.corpus.records.Doc`
(monolingual).

Every adapter is a plain function over explicit paths, so it can be tested on small fixtures; the
build maps a ``sources.yaml`` entry onto a call through :data:`ADAPTERS`.
"""

from __future__ import annotations

from data_tools.corpus.adapters.cldr import read_cldr
from data_tools.corpus.adapters.gettext_catalog import read_catalog, read_catalogs
from data_tools.corpus.adapters.gnucash_accounts import read_account_templates
from data_tools.corpus.adapters.html_by_id import read_html_by_id
from data_tools.corpus.adapters.html_by_order import read_html_by_order
from data_tools.corpus.adapters.hub import read_hub_parallel, read_hub_text
from data_tools.corpus.adapters.mediawiki_json import read_i18n_json, read_i18n_tree
from data_tools.corpus.adapters.text import read_text_files

__all__ = [
    "read_account_templates",
    "read_catalog",
    "read_catalogs",
    "read_cldr",
    "read_html_by_id",
    "read_html_by_order",
    "read_hub_parallel",
    "read_hub_text",
    "read_i18n_json",
    "read_i18n_tree",
    "read_text_files",
]
