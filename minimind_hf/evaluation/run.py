"""One evaluation run: validation perplexity and EN -> zh-TW translation scores of one checkpoint.

:func:`evaluate_checkpoint` loads a checkpoint directory (a full model, or a PEFT adapter on its base,
through :func:`minimind_hf.checkpoints.load_checkpoint`), first checks that cached generation follows the
uncached model, measures perplexity on a validation file and translates a test file, then writes
``eval.json``, ``eval.md``, ``eval.png`` and ``eval_translations.jsonl`` next to the checkpoint (or into
``output_dir``), and adds the scores to the checkpoint's model card (``README.md``, see
:mod:`minimind_hf.hub.model_card`). Its knobs are the fields of :class:`EvalArguments`, which the ``eval`` command
line is also built from.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import default_device, load_checkpoint
from ..data.layout import COMPLETE_MARKER, DEFAULT_SEQUENCE_LENGTH
from ..hub.model_card import record_evaluation
from ..prompts import TRANSLATION_PROMPTS, resolve_system_prompt, system_prompt_name
from ..tokenization import load_tokenizer
from ..utils.jsonl import write_jsonl
from .perplexity import load_validation_texts, perplexity, reply_perplexity
from .quality import derangement, floors, output_flags, output_health
from .report import plot_comparison, result_markdown
from .scores import check_comet, comet_model_from_env, corpus_scores, sentence_scores, translation_scores
from .script_check import script_check
from .test_sets import load_test_pairs
from .translate import check_cached_generation, translate

DATA_KEYS = ("validation", "test")
FALLBACK_BLOCK_SIZE = DEFAULT_SEQUENCE_LENGTH  # the pretraining block and longest chat every stage defaults to


def trained_block_size(path: str | os.PathLike[str] | None) -> int | None:
    """The sequence length a checkpoint was trained at, from the ``run_recipe.json`` its stage wrote.

    The pretraining ``block_size``, or the chat stages' ``max_length``; ``None`` without a record.
    """
    from ..training.safety.fingerprint import load_recipe

    if path is None or not Path(path).is_dir():
        return None
    recipe = load_recipe(path) or {}
    if recipe.get("stage") == "pretrain":
        return (recipe.get("data") or {}).get("block_size")
    return (recipe.get("training") or {}).get("max_length") or (recipe.get("data") or {}).get("block_size")


def _knob(default: Any, help: str, **cli: Any) -> Any:
    """A field of :class:`EvalArguments`.

    ``cli`` holds its command-line spelling (``flag``, ``type``, ``choices``, ``action``), ``cli=False`` keeps it off
    the command line.
    """
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class EvalArguments:
    """The knobs of an evaluation run, written once.

    :func:`evaluate_checkpoint` takes them as keywords and the ``eval`` command line
    (:func:`minimind_hf.evaluation.cli.add_eval_arguments`) is built from them.
    """

    limit: int | None = _knob(None, "score only the first N test pairs", type=int)
    validation_limit: int | None = _knob(None, "use only the first N validation rows", type=int)
    batch_size: int = _knob(16, "translation batch size")
    max_new_tokens: int = _knob(128, "longest translation, in tokens")
    num_beams: int = _knob(1, "beam search width (1: greedy)")
    length_ratio: float | None = _knob(
        3.0,
        "cap each translation at this many times its source's tokens, plus 8 (0: only --max-new-tokens)",
        type=float,
    )
    repetition_penalty: float = _knob(1.0, "generate's repetition penalty (1.0: off)")
    no_repeat_ngram_size: int = _knob(0, "forbid repeating any n-gram of this many tokens (0: off)")
    prompt_id: int = _knob(0, "which translation prompt phrasing to use", choices=range(len(TRANSLATION_PROMPTS)))
    system: str | None = _knob(
        None, "system prompt for the translation chat; 'finance' selects the finance prompt", type=str
    )
    block_size: int | None = _knob(
        None,
        "perplexity window length in tokens (default: the length the checkpoint trained at, from its "
        f"run_recipe.json; {FALLBACK_BLOCK_SIZE} without one)",
        type=int,
    )
    ppl_batch_size: int = _knob(8, "perplexity batch size")
    packed: bool = _knob(
        False,
        "score validation documents as one stream joined by <|endoftext|>, as pretraining packs them "
        "(default: each document on its own)",
        action="store_true",
    )
    comet_model: str | None = _knob(
        None,
        "local COMET checkpoint (file or directory; default $MINIMIND_COMET_MODEL); needs the unbabel-comet package",
        type=str,
    )
    num_examples: int = _knob(5, "example translations in the report (first, best and worst each)", flag="--examples")
    semantic: bool = _knob(
        True, "skip the sentence-encoder similarity score", flag="--no-semantic", action="store_false"
    )
    test_config: str | None = _knob(None, "configuration of a Hub test dataset (e.g. eng_Latn-zho_Hant)", type=str)
    test_split: str | None = _knob(None, "split of a Hub test dataset (default: devtest, test or validation)", type=str)
    device: str | None = _knob(None, "cpu, cuda, cuda:1, ... (default: cuda if available)", type=str)
    dtype: str = _knob("auto", "model dtype", choices=["auto", "float32", "bfloat16", "float16"])
    show_progress: bool = _knob(True, "progress bars", cli=False)
    check_generation: bool = _knob(
        True,
        "skip the check that cached greedy generation equals the uncached model on a few prompts",
        flag="--no-generation-check",
        action="store_false",
    )


def _write_outputs(result: dict[str, Any], translations: list[dict[str, Any]], out_dir: Path) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "eval.json", "markdown": out_dir / "eval.md"}
    if result.get("translation"):
        files["plot"] = plot_comparison([result], out_dir / "eval.png")
        files["translations"] = out_dir / "eval_translations.jsonl"
        write_jsonl(files["translations"], translations)
    result["files"] = {k: str(v) for k, v in files.items()}
    files["json"].write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    files["markdown"].write_text(result_markdown(result), encoding="utf-8")
    return result["files"]


def _check_data_files(data_files: dict[str, str | os.PathLike[str] | None]) -> None:
    unknown = set(data_files) - set(DATA_KEYS)
    if unknown:
        raise ValueError(f"evaluate_checkpoint: unknown data_files keys {sorted(unknown)}; use {DATA_KEYS}")
    if not any(data_files.get(k) for k in DATA_KEYS):
        raise ValueError("evaluate_checkpoint: give a 'validation' and/or a 'test' file")
    for key in DATA_KEYS:
        if key == "validation" and data_files.get(key) and not Path(data_files[key]).is_file():
            raise FileNotFoundError(f"evaluate_checkpoint: {key} file {data_files[key]} does not exist")


def _validation(model, tokenizer, path, args: EvalArguments, system: str | None, checkpoint=None) -> dict[str, Any]:
    texts, kind_of_texts, dropped, conversations = load_validation_texts(
        path, tokenizer, limit=args.validation_limit, prompt_id=args.prompt_id, system=system
    )
    if args.block_size:
        block_size, block_size_from = args.block_size, "argument"
    elif trained := trained_block_size(checkpoint):
        block_size, block_size_from = int(trained), "run_recipe.json"
    else:
        block_size, block_size_from = FALLBACK_BLOCK_SIZE, "default (no run_recipe.json with the training length)"
    start = time.perf_counter()
    if kind_of_texts == "chat":  # the reply tokens, as SFT trains and reports them
        result = reply_perplexity(
            model,
            tokenizer,
            list(conversations),
            block_size=block_size,
            batch_size=args.ppl_batch_size,
            show_progress=args.show_progress,
        )
    else:  # plain documents are tokenized as pretraining tokenizes them (control-token text stays text)
        result = perplexity(
            model,
            tokenizer,
            texts,
            block_size=block_size,
            batch_size=args.ppl_batch_size,
            packed=args.packed,
            split_special_tokens=True,
            show_progress=args.show_progress,
        )
    result.update(
        file=str(path),
        kind=kind_of_texts,
        dropped=dict(dropped),
        seconds=time.perf_counter() - start,
        block_size_from=block_size_from,
    )
    return result


def _generation_settings(args: EvalArguments, system: str | None) -> dict[str, Any]:
    return {
        "decoding": f"beam search ({args.num_beams} beams)" if args.num_beams > 1 else "greedy",
        "max_new_tokens": args.max_new_tokens,
        "length_ratio": args.length_ratio or None,
        "repetition_penalty": args.repetition_penalty,
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "num_beams": args.num_beams,
        "prompt_id": args.prompt_id,
        "system": system_prompt_name(system),
        "batch_size": args.batch_size,
    }


def _semantic(hypotheses, sources, references) -> dict[str, Any]:
    """Sentence-encoder similarity of outputs to references, its floors, and how it separates pairs.

    The separation is between matched and mismatched (source, reference) pairs of this test set.
    """
    from .semantic import separation, similarities

    perm = derangement(len(references))
    per_example = similarities(hypotheses, references)
    return {
        "score": float(per_example.mean()),
        "per_example": [float(x) for x in per_example],
        "floors": {
            "copy_source": float(similarities(sources, references).mean()),
            "shuffled_references": float(similarities(hypotheses, [references[j] for j in perm]).mean()),
        },
        "separation": separation(sources, references, perm),
    }


def _translation(model, tokenizer, path, args: EvalArguments, system: str | None, comet_model):
    pairs, dropped, notes = load_test_pairs(path, limit=args.limit, config=args.test_config, split=args.test_split)
    if not pairs:
        raise ValueError(f"{path}: no usable en/zh pairs (dropped: {dict(dropped)})")
    sources, references = [p["en"] for p in pairs], [p["zh"] for p in pairs]
    start = time.perf_counter()
    hypotheses = translate(
        model,
        tokenizer,
        sources,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        prompt_id=args.prompt_id,
        system=system,
        num_beams=args.num_beams,
        length_ratio=args.length_ratio or None,
        repetition_penalty=args.repetition_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        show_progress=args.show_progress,
    )
    seconds = time.perf_counter() - start
    scores = translation_scores(hypotheses, references, sources=sources, comet_model=comet_model)
    scores["notes"] += notes
    scores.update(
        file=str(path),
        dropped=dict(dropped),
        seconds=seconds,
        sentences_per_second=len(hypotheses) / seconds if seconds else None,
        generation=_generation_settings(args, system),
        reference_script=script_check(references),
        health=output_health(hypotheses, sources, references),
        floors=floors(corpus_scores, hypotheses, sources, references),
    )
    per_example = [{"chrf": row["chrf"]} for row in sentence_scores(hypotheses, references)]  # no chrF++ for Chinese
    for row, value in zip(per_example, scores.pop("comet_segments", None) or [], strict=False):
        row["comet"] = value
    if args.semantic:
        semantic = _semantic(hypotheses, sources, references)
        for row, value in zip(per_example, semantic.pop("per_example"), strict=True):
            row["semantic"] = value
        scores["semantic"] = semantic
    rows = [
        {
            **pair,
            "hypothesis": hyp,
            **row,
            "flags": [k for k, v in output_flags(hyp, pair["en"], pair["zh"]).items() if v],
        }
        for pair, hyp, row in zip(pairs, hypotheses, per_example, strict=True)
    ]
    return scores, rows


def _examples(rows: list[dict[str, Any]], n: int) -> dict[str, list[dict[str, Any]]]:
    """The first ``n`` translations, and the ``n`` best and worst by sentence chrF."""

    def view(row):
        return {
            "source": row["en"],
            "reference": row["zh"],
            "hypothesis": row["hypothesis"],
            "chrf": round(row["chrf"], 1),
            "flags": row["flags"],
        }

    ranked = sorted(rows, key=lambda r: r["chrf"], reverse=True)
    return {
        "first": [view(r) for r in rows[:n]],
        "best": [view(r) for r in ranked[:n]],
        "worst": [view(r) for r in ranked[::-1][:n]],
    }


def evaluate_checkpoint(
    path_or_model: str | os.PathLike[str] | torch.nn.Module,
    data_files: dict[str, str | os.PathLike[str] | None],
    tokenizer: Any = None,
    *,
    label: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    args: EvalArguments | None = None,
    **knobs: Any,
) -> dict[str, Any]:
    """Perplexity on ``data_files["validation"]`` and translation scores on ``data_files["test"]``.

    ``path_or_model`` is a checkpoint directory or an already loaded model (then pass ``tokenizer``;
    files are written only if ``output_dir`` is given). The knobs are :class:`EvalArguments` fields, given
    as ``args`` and/or as keywords (``limit=200, batch_size=8``; keywords win): ``limit`` caps the test
    pairs, ``validation_limit`` the validation rows, ``comet_model`` (default ``$MINIMIND_COMET_MODEL``)
    is a local COMET checkpoint. Unless ``check_generation`` is off, a few prompts are first generated
    with the KV cache and checked against the uncached model (:func:`check_cached_generation`; raises
    :class:`~minimind_hf.evaluation.translate.GenerationCheckError`). Returns the result dict that
    ``eval.json`` holds.
    """
    args = dataclasses.replace(args or EvalArguments(), **knobs)
    _check_data_files(data_files)
    comet_model = args.comet_model or comet_model_from_env()
    if comet_model and data_files.get("test"):
        check_comet(comet_model)  # before loading or translating anything
    system = resolve_system_prompt(args.system)

    base_model = None
    if isinstance(path_or_model, torch.nn.Module):
        model, kind = path_or_model, "model"
        checkpoint = getattr(model.config, "_name_or_path", "") or "<in memory>"
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
        out_dir = Path(output_dir) if output_dir else None
    else:
        loaded = load_checkpoint(
            path_or_model, device=args.device or default_device(), dtype=args.dtype, tokenizer=tokenizer
        )
        model, tokenizer, kind, base_model = loaded
        checkpoint = str(path_or_model)
        out_dir = Path(output_dir) if output_dir else Path(path_or_model)
    result: dict[str, Any] = {
        "label": label or Path(checkpoint).name or "model",
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
        "stage": _stage_of(path_or_model),
    }
    if args.check_generation:
        result["generation_check"] = check_cached_generation(model, tokenizer, system=system)
    if data_files.get("validation"):
        checkpoint_dir = None if isinstance(path_or_model, torch.nn.Module) else path_or_model
        result["validation"] = _validation(model, tokenizer, data_files["validation"], args, system, checkpoint_dir)
    translations: list[dict[str, Any]] = []
    if data_files.get("test"):
        result["translation"], translations = _translation(
            model, tokenizer, data_files["test"], args, system, comet_model
        )
        examples = _examples(translations, args.num_examples)
        result["examples"] = examples["first"]
        result["best_examples"], result["worst_examples"] = examples["best"], examples["worst"]
    if out_dir is not None:
        _write_outputs(result, translations, out_dir)
    if not isinstance(path_or_model, torch.nn.Module):  # the checkpoint's model card gets the scores
        record_evaluation(path_or_model, result)
    return result


def _stage_of(path_or_model: Any) -> str | None:
    """The training stage recorded next to a checkpoint (``stage_complete.json``), if any."""
    if isinstance(path_or_model, torch.nn.Module):
        return None
    marker = Path(path_or_model) / COMPLETE_MARKER
    try:
        return json.loads(marker.read_text()).get("stage")
    except (OSError, ValueError):
        return None


def load_for_evaluation(
    path: str | os.PathLike[str],
    device: str | None = None,
    dtype: str | torch.dtype | None = "auto",
    merge_adapter: bool = True,
) -> tuple[Any, Any, str]:
    """``(model, tokenizer, kind)`` of a checkpoint on the evaluation device (default: cuda if available).

    :func:`minimind_hf.checkpoints.load_checkpoint` does the loading.
    """
    loaded = load_checkpoint(path, device=device or default_device(), dtype=dtype, merge_adapter=merge_adapter)
    return loaded.model, loaded.tokenizer, loaded.kind
