"""Evaluate MiniMind checkpoints: validation perplexity and EN -> zh-TW translation quality.

``evaluate_checkpoint`` loads a checkpoint directory (a full model through ``AutoModelForCausalLM``
or a PEFT adapter through ``PeftModel`` on its recorded base), measures perplexity on a validation file
and translates a test file, then writes ``eval.json``, ``eval.md``, ``eval.png`` and
``eval_translations.jsonl`` next to the checkpoint (or into ``output_dir``). The ``eval`` command
compares several checkpoints in one table and one chart::

    minimind eval out/sft out/lora --test data/sample/lora.test.jsonl \\
        --validation data/sample/sft.validation.jsonl --limit 200 --output out/eval
    python -m minimind_hf.evaluation out/sft --test data/sample/sft.test.jsonl

The pieces live in small modules and are re-exported here: :func:`perplexity`
(``eval_perplexity``), :func:`translate` (``eval_translate``), :func:`translation_scores` and COMET
(``eval_scores``), :func:`script_check` (``eval_script``), markdown and :func:`plot_comparison`
(``eval_report``), data files (``eval_data``) and checkpoint loading (``eval_loading``).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .eval_data import load_test_pairs, load_validation_texts, read_jsonl
from .eval_loading import load_for_evaluation
from .eval_perplexity import perplexity
from .eval_report import comparison_markdown, comparison_table, plot_comparison, result_markdown
from .eval_scores import CometUnavailableError, check_comet, comet_model_from_env, translation_scores
from .eval_script import script_check
from .eval_translate import GenerationCheckError, check_cached_generation, translate
from .prompts import FINANCE_SYSTEM_PROMPT, TRANSLATION_PROMPTS

DATA_KEYS = ("validation", "test")


# --------------------------------------------------------------------------- evaluation


def _write_outputs(result: dict[str, Any], translations: list[dict[str, Any]], out_dir: Path) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "eval.json", "markdown": out_dir / "eval.md"}
    if result.get("translation"):
        files["plot"] = plot_comparison([result], out_dir / "eval.png")
        files["translations"] = out_dir / "eval_translations.jsonl"
        with open(files["translations"], "w", encoding="utf-8") as handle:
            for row in translations:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    result["files"] = {k: str(v) for k, v in files.items()}
    files["json"].write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    files["markdown"].write_text(result_markdown(result), encoding="utf-8")
    return result["files"]


def evaluate_checkpoint(
    path_or_model: str | os.PathLike[str] | torch.nn.Module,
    data_files: dict[str, str | os.PathLike[str] | None],
    tokenizer: Any = None,
    *,
    label: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    validation_limit: int | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 128,
    num_beams: int = 1,
    prompt_id: int = 0,
    system: str | None = None,
    block_size: int = 512,
    ppl_batch_size: int = 8,
    packed: bool = False,
    comet_model: str | os.PathLike[str] | None = None,
    num_examples: int = 5,
    device: str | None = None,
    dtype: str | torch.dtype | None = "auto",
    show_progress: bool = True,
    check_generation: bool = True,
) -> dict[str, Any]:
    """Perplexity on ``data_files["validation"]`` and translation scores on ``data_files["test"]``.

    ``path_or_model`` is a checkpoint directory or an already loaded model (then pass ``tokenizer``;
    files are written only if ``output_dir`` is given). ``limit`` caps the test pairs,
    ``validation_limit`` the validation rows. ``comet_model`` (default ``$MINIMIND_COMET_MODEL``)
    is a local COMET checkpoint. Unless ``check_generation`` is off, a few prompts are first generated
    with the KV cache and checked against the uncached model (:func:`check_cached_generation`; raises
    :class:`GenerationCheckError`). Returns the result dict that ``eval.json`` holds.
    """
    unknown = set(data_files) - set(DATA_KEYS)
    if unknown:
        raise ValueError(f"evaluate_checkpoint: unknown data_files keys {sorted(unknown)}; use {DATA_KEYS}")
    if not any(data_files.get(k) for k in DATA_KEYS):
        raise ValueError("evaluate_checkpoint: give a 'validation' and/or a 'test' file")
    for key in DATA_KEYS:
        if data_files.get(key) and not Path(data_files[key]).is_file():
            raise FileNotFoundError(f"evaluate_checkpoint: {key} file {data_files[key]} does not exist")
    comet_model = comet_model or comet_model_from_env()
    if comet_model and data_files.get("test"):
        check_comet(comet_model)  # before loading or translating anything

    base_model = None
    if isinstance(path_or_model, torch.nn.Module):
        model, kind = path_or_model, "model"
        checkpoint = getattr(model.config, "_name_or_path", "") or "<in memory>"
        if tokenizer is None:
            from .tokenization import load_tokenizer

            tokenizer = load_tokenizer()
        out_dir = Path(output_dir) if output_dir else None
    else:
        model, loaded_tokenizer, kind = load_for_evaluation(path_or_model, device=device, dtype=dtype)
        tokenizer = tokenizer or loaded_tokenizer
        checkpoint = str(path_or_model)
        if kind == "peft-adapter":
            base_model = getattr(model.config, "_name_or_path", None)
        out_dir = Path(output_dir) if output_dir else Path(path_or_model)
    label = label or Path(checkpoint).name or "model"
    result: dict[str, Any] = {
        "label": label,
        "checkpoint": checkpoint,
        "kind": kind,
        "base_model": base_model,
        "device": str(next(model.parameters()).device),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "generation_check": None,
        "validation": None,
        "translation": None,
        "examples": [],
    }
    if check_generation:
        result["generation_check"] = check_cached_generation(model, tokenizer, system=system)

    if data_files.get("validation"):
        texts, kind_of_texts, dropped = load_validation_texts(
            data_files["validation"], tokenizer, limit=validation_limit, prompt_id=prompt_id, system=system
        )
        start = time.perf_counter()
        ppl = perplexity(
            model,
            tokenizer,
            texts,
            block_size=block_size,
            batch_size=ppl_batch_size,
            packed=packed,
            split_special_tokens=kind_of_texts == "text",  # plain documents: as pretraining tokenizes them
            show_progress=show_progress,
        )
        ppl.update(
            file=str(data_files["validation"]),
            kind=kind_of_texts,
            dropped=dict(dropped),
            seconds=time.perf_counter() - start,
        )
        result["validation"] = ppl

    translations: list[dict[str, Any]] = []
    if data_files.get("test"):
        pairs, dropped = load_test_pairs(data_files["test"], limit=limit)
        if not pairs:
            raise ValueError(f"{data_files['test']}: no usable en/zh pairs (dropped: {dict(dropped)})")
        sources, references = [p["en"] for p in pairs], [p["zh"] for p in pairs]
        start = time.perf_counter()
        hypotheses = translate(
            model,
            tokenizer,
            sources,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            prompt_id=prompt_id,
            system=system,
            num_beams=num_beams,
            show_progress=show_progress,
        )
        seconds = time.perf_counter() - start
        scores = translation_scores(hypotheses, references, sources=sources, comet_model=comet_model)
        scores.update(
            file=str(data_files["test"]),
            dropped=dict(dropped),
            seconds=seconds,
            generation={
                "max_new_tokens": max_new_tokens,
                "num_beams": num_beams,
                "prompt_id": prompt_id,
                "system": "finance" if system == FINANCE_SYSTEM_PROMPT else system,
                "batch_size": batch_size,
            },
            reference_script=script_check(references),
        )
        result["translation"] = scores
        translations = [{**p, "hypothesis": h} for p, h in zip(pairs, hypotheses, strict=True)]
        result["examples"] = [
            {"source": t["en"], "reference": t["zh"], "hypothesis": t["hypothesis"]}
            for t in translations[:num_examples]
        ]

    if out_dir is not None:
        _write_outputs(result, translations, out_dir)
    return result


# --------------------------------------------------------------------------- command line


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``eval`` options, shared by ``minimind eval`` and ``python -m minimind_hf.evaluation``."""
    parser.add_argument(
        "checkpoints", nargs="+", metavar="CHECKPOINT", help="checkpoint directories (full models or PEFT adapters)"
    )
    parser.add_argument("--test", help="test jsonl of {'en', 'zh'} rows for translation scores")
    parser.add_argument("--validation", help="validation jsonl ({'text'}, chat or {'en','zh'} rows) for perplexity")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N test pairs")
    parser.add_argument("--validation-limit", type=int, default=None, help="use only the first N validation rows")
    parser.add_argument(
        "--output",
        default=None,
        help="where results go (default: next to each checkpoint; the comparison of several "
        "checkpoints goes to their common parent directory)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="translation batch size")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="longest translation, in tokens")
    parser.add_argument("--num-beams", type=int, default=1, help="beam search width (1: greedy)")
    parser.add_argument(
        "--prompt-id",
        type=int,
        default=0,
        choices=range(len(TRANSLATION_PROMPTS)),
        help="which translation prompt phrasing to use",
    )
    parser.add_argument(
        "--system", default=None, help="system prompt for the translation chat; 'finance' selects the finance prompt"
    )
    parser.add_argument("--block-size", type=int, default=512, help="perplexity window length in tokens")
    parser.add_argument("--ppl-batch-size", type=int, default=8, help="perplexity batch size")
    parser.add_argument(
        "--packed",
        action="store_true",
        help="score validation documents as one stream joined by <|endoftext|>, as pretraining packs them "
        "(default: each document on its own)",
    )
    parser.add_argument(
        "--comet-model",
        default=comet_model_from_env(),
        help="local COMET checkpoint (file or directory; default $MINIMIND_COMET_MODEL); "
        "needs the unbabel-comet package",
    )
    parser.add_argument("--examples", type=int, default=5, help="example translations in the report")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument(
        "--no-generation-check",
        dest="check_generation",
        action="store_false",
        help="skip the check that cached greedy generation equals the uncached model on a few prompts",
    )
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
    system = FINANCE_SYSTEM_PROMPT if args.system == "finance" else args.system
    data_files = {"validation": args.validation, "test": args.test}
    labels = _labels(args.checkpoints)
    several = len(args.checkpoints) > 1
    results = []
    for checkpoint, label in zip(args.checkpoints, labels, strict=True):
        if args.output:
            out_dir = Path(args.output) / label if several else Path(args.output)
        else:
            out_dir = None
        try:
            result = evaluate_checkpoint(
                checkpoint,
                data_files,
                label=label,
                output_dir=out_dir,
                limit=args.limit,
                validation_limit=args.validation_limit,
                batch_size=args.batch_size,
                max_new_tokens=args.max_new_tokens,
                num_beams=args.num_beams,
                prompt_id=args.prompt_id,
                system=system,
                block_size=args.block_size,
                ppl_batch_size=args.ppl_batch_size,
                packed=args.packed,
                comet_model=args.comet_model,
                num_examples=args.examples,
                device=args.device,
                dtype=args.dtype,
                check_generation=args.check_generation,
            )
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
        "eval",
        help="perplexity and translation scores of one or more checkpoints",
        description=__doc__.split("\n\n")[0],
    )
    add_eval_arguments(parser)
    parser.set_defaults(func=run_eval_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m minimind_hf.evaluation CHECKPOINT [...] --test FILE --validation FILE``."""
    parser = add_eval_arguments(
        argparse.ArgumentParser(prog="python -m minimind_hf.evaluation", description=__doc__.split("\n\n")[0])
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_eval_command(parser.parse_args(argv))


__all__ = [
    "CometUnavailableError",
    "GenerationCheckError",
    "check_cached_generation",
    "add_eval_arguments",
    "comparison_markdown",
    "comparison_table",
    "evaluate_checkpoint",
    "load_for_evaluation",
    "perplexity",
    "plot_comparison",
    "read_jsonl",
    "register_eval_command",
    "result_markdown",
    "run_eval_command",
    "script_check",
    "load_test_pairs",
    "translate",
    "translation_scores",
    "load_validation_texts",
]

if __name__ == "__main__":
    sys.exit(main())
