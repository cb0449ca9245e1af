r"""The ``eval`` command: evaluate several checkpoints and compare them in one table and one chart.

For example::

    minimind eval out/sft out/lora --test data/sample/lora.test.jsonl \
        --validation data/sample/sft.validation.jsonl --limit 200 --output out/eval
    python -m minimind_hf.evaluation out/sft --test data/sample/sft.test.jsonl

Its options are the fields of :class:`~minimind_hf.evaluation.run.EvalArguments`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .report import comparison_markdown, comparison_table, plot_comparison
from .run import EvalArguments, evaluate_checkpoint
from .scores import CometUnavailableError
from .translate import GenerationCheckError

DESCRIPTION = "Evaluate MiniMind checkpoints: validation perplexity and EN -> zh-TW translation quality."


def _cli_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(EvalArguments) if f.metadata.get("cli", True)]


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``eval`` options, shared by ``minimind eval`` and ``python -m minimind_hf.evaluation``."""
    parser.add_argument(
        "checkpoints", nargs="+", metavar="CHECKPOINT", help="checkpoint directories (full models or PEFT adapters)"
    )
    parser.add_argument(
        "--config", help="a YAML file of these options (recipes/<scale>/eval.yaml); the command line wins"
    )
    parser.add_argument("--test", help="test jsonl of {'en', 'zh'} rows for translation scores")
    parser.add_argument("--validation", help="validation jsonl ({'text'}, chat or {'en','zh'} rows) for perplexity")
    parser.add_argument(
        "--output",
        default=None,
        help="where results go (default: next to each checkpoint; the comparison of several "
        "checkpoints goes to their common parent directory)",
    )
    for knob in _cli_fields():
        meta = dict(knob.metadata)
        flag = meta.pop("flag", "--" + knob.name.replace("_", "-"))
        options: dict[str, Any] = {"dest": knob.name, "default": knob.default, "help": meta.pop("help")}
        if "action" not in meta:
            options["type"] = meta.pop("type", type(knob.default))
            if "choices" not in meta:
                options["metavar"] = flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(flag, **options, **meta)
    return parser


def _labels(checkpoints: Sequence[str]) -> list[str]:
    """Short unique labels: directory names, or paths relative to the common parent if names clash."""
    names = [Path(c).resolve().name for c in checkpoints]
    if len(set(names)) == len(names):
        return names
    root = os.path.commonpath([str(Path(c).resolve()) for c in checkpoints])
    return [os.path.relpath(Path(c).resolve(), root).replace(os.sep, "/") for c in checkpoints]


def run_eval_command(args: argparse.Namespace) -> int:
    """Evaluate every checkpoint of ``args`` and write the comparison; returns an exit status."""
    if not args.test and not args.validation:
        print("minimind eval: give --test and/or --validation", file=sys.stderr)
        return 2
    knobs = EvalArguments(**{f.name: getattr(args, f.name) for f in _cli_fields()})
    data_files = {"validation": args.validation, "test": args.test}
    several = len(args.checkpoints) > 1
    results = []
    for checkpoint, label in zip(args.checkpoints, _labels(args.checkpoints), strict=True):
        out_dir = (Path(args.output) / label if several else Path(args.output)) if args.output else None
        try:
            result = evaluate_checkpoint(checkpoint, data_files, label=label, output_dir=out_dir, args=knobs)
        except (CometUnavailableError, GenerationCheckError, FileNotFoundError, ValueError, OSError) as err:
            print(f"minimind eval: {checkpoint}: {err}", file=sys.stderr)
            return 1
        results.append(result)
        print(f"\n{comparison_table([result])}\n-> {result['files']['markdown']}", flush=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if several:
        if args.output:
            out = Path(args.output)
        else:
            out = Path(os.path.commonpath([str(Path(c).resolve()) for c in args.checkpoints]))
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.json").write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (out / "comparison.md").write_text(comparison_markdown(results), encoding="utf-8")
        if any(r.get("translation") for r in results):
            plot_comparison(results, out / "comparison.png")
        print(f"\n{comparison_table(results)}\n-> {out / 'comparison.md'}")
    return 0


def register_eval_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an ``argparse`` subparsers object (``args.func`` runs it)."""
    parser = subparsers.add_parser(
        "eval", help="perplexity and translation scores of one or more checkpoints", description=DESCRIPTION
    )
    add_eval_arguments(parser)
    parser.set_defaults(func=run_eval_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m minimind_hf.evaluation CHECKPOINT [...] --test FILE --validation FILE``."""
    parser = argparse.ArgumentParser(prog="python -m minimind_hf.evaluation", description=DESCRIPTION)
    add_eval_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..utils.options_file import expand_config

    return run_eval_command(parser.parse_args(expand_config(list(sys.argv[1:] if argv is None else argv))))
