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

from importlib import import_module
from typing import Any

# The names below are imported from their modules on first use (PEP 562), not when the package is: running a
# module of this package as a command (``python -m data_tools.web.dedup``) must not import that module first.
_HOMES = {
    "Stats": "..stats",
    "StepStats": "..stats",
    "PipelineStats": "..stats",
    "StageStats": "..stats",
    "clean_text": ".clean",
    "dedup_texts": ".dedup",
    "dedup_topics": ".dedup",
    "exact_key": ".dedup",
    "minhash_signature": ".dedup",
    "decode_html": ".extract",
    "html_to_text": ".extract",
    "detect_language": ".langid",
    "is_english_text": ".langid",
    "replace_pii": ".pii",
    "replace_pii_counted": ".pii",
    "WebPipelineConfig": ".pipeline",
    "process_file": ".pipeline",
    "run_pipeline": ".pipeline",
    "write_jsonl": ".pipeline",
    "HtmlPage": ".read",
    "read_html_pages": ".read",
    "WebDocument": ".steps",
}
_RENAMED = {"PipelineStats": "Stats", "StageStats": "StepStats"}  # the names this package used before data_tools.stats


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name], __name__), _RENAMED.get(name, name))
    globals()[name] = value
    return value


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
