"""Web text pipeline: WARC/ARC archives -> clean, PII-free, quality-filtered, de-duplicated text.

Each stage is a small function, usable alone, and a counted pipeline step:

=================  ==========================================  =================================
stage              function                                    module
=================  ==========================================  =================================
read               :func:`read_html_pages`                     :mod:`.read`
extract            :func:`html_to_text`, :func:`decode_html`   :mod:`.extract`
clean              :func:`clean_text`                          :mod:`.clean`
language           :func:`detect_language`,                    :mod:`.langid`
                   :func:`is_english_text`
quality filters    Gopher, FineWeb, C4, bad words              :mod:`.filters`
pii                :func:`replace_pii`                         :mod:`.pii`
dedup              :func:`dedup_texts`, :func:`dedup_topics`   :mod:`.dedup`
=================  ==========================================  =================================

Every step counts what it kept and dropped, and why, in a :class:`~data_tools.stats.StepStats`.
:func:`run_pipeline` runs them all (``python -m data_tools.web`` on the command line), and
:mod:`.datatrove_steps` offers the same steps as datatrove pipeline blocks.
"""

from ..stats import Stats, StepStats
from .clean import clean_text
from .dedup import dedup_texts, dedup_topics, exact_key, minhash_signature
from .extract import decode_html, html_to_text
from .langid import detect_language, is_english_text
from .pii import replace_pii, replace_pii_counted
from .pipeline import WebPipelineConfig, process_file, run_pipeline, write_jsonl
from .read import HtmlPage, read_html_pages
from .steps import WebDocument

PipelineStats, StageStats = Stats, StepStats  # the names this package used before data_tools.stats

__all__ = [
    "HtmlPage",
    "PipelineStats",
    "StageStats",
    "Stats",
    "StepStats",
    "WebDocument",
    "WebPipelineConfig",
    "clean_text",
    "decode_html",
    "dedup_texts",
    "dedup_topics",
    "detect_language",
    "exact_key",
    "html_to_text",
    "is_english_text",
    "minhash_signature",
    "process_file",
    "read_html_pages",
    "replace_pii",
    "replace_pii_counted",
    "run_pipeline",
    "write_jsonl",
]
