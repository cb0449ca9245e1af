"""Translation quality per CPU second: train a variant for a fixed CPU budget, score it, add a leaderboard row.

    python benchmarks/speedrun.py run --name baseline --budget 300                     # SFT from scratch
    python benchmarks/speedrun.py run --name lr3e-3 --budget 300 -- --learning_rate 3e-3
    python benchmarks/speedrun.py run --name pt25 --budget 300 --pretrain-share 0.25   # pretrain -> SFT chain
    python benchmarks/speedrun.py anchor --name marian --budget 300                    # encoder-decoder anchor
    python benchmarks/speedrun.py decode --run baseline --name baseline-beam4 --num-beams 4
    python benchmarks/speedrun.py board                                                # leaderboard.md + PNGs

A variant is a recipe (default ``recipes/small/sft.yaml``) plus command-line overrides, trained through the
real stage runner (``python -m minimind_hf.train``) with ``--max_cpu_seconds``: the budget is CPU seconds of
the training process (:mod:`minimind_hf.training.cpu_budget`), one thread (``OMP_NUM_THREADS=1``), so runs side by side
on a shared machine get the same budget. Without ``--pretrain-share`` the SFT stage starts from a randomly
initialised model in the pretraining recipe's shape (``--model-config`` overrides it); with it, the pretraining
recipe runs first for that share of the budget and SFT gets the rest. During training there is no evaluation
and no checkpoint but the ones at the budget fractions (``--fractions``, default 1/4, 1/2, 1), each scored
afterwards (outside the budget) by :mod:`speedrun_eval`: chrF and BLEU on 300 rows of ``data/sft.test.jsonl``
(greedy, batch 16) and the loss on 600 validation chats built as training builds them.

Rows go to ``benchmarks/speedrun/leaderboard.jsonl``; ``leaderboard.md`` and one PNG of chrF against CPU
seconds per comparison (``--comparison``) are rebuilt from it (:mod:`speedrun_board`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speedrun_board  # noqa: E402
import speedrun_eval  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "benchmarks" / "speedrun"
RUNS = ROOT / "out" / "speedrun"
SFT_RECIPE = "recipes/small/sft.yaml"
PRETRAIN_RECIPE = "recipes/small/pretrain.yaml"
TEST_FILE = "data/sft.test.jsonl"
VALIDATION_ROWS = 600

# every run: no evaluation or checkpoint inside the budget but the budget's own, tokens counted, no reporting
COMMON = [
    "--eval_strategy",
    "no",
    "--save_strategy",
    "no",
    "--load_best_model_at_end",
    "false",
    "--save_only_model",
    "true",
    "--save_total_limit",
    "100",
    "--report_to",
    "none",
    "--max_eval_samples",
    str(VALIDATION_ROWS),
    "--logging_steps",
    "10",
    "--dataloader_num_workers",
    "0",
    "--preprocessing_num_proc",
    "1",
    "--skip_if_done",
    "false",
]


def single_thread_env() -> dict[str, str]:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        PYTHONPATH=str(ROOT),
    )
    return env


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device() -> str:
    return f"{platform.processor() or platform.machine()} CPU, 1 thread, {os.cpu_count()} cores shared"


def model_shape(recipe: str, overrides: str | None) -> tuple[str, dict[str, Any]]:
    """``(preset, config overrides)`` of the pretraining recipe, with ``overrides`` (JSON) on top."""
    with open(ROOT / recipe, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    shape = spec.get("model_config_overrides") or {}
    shape = json.loads(shape) if isinstance(shape, str) else dict(shape)
    shape.update(json.loads(overrides) if overrides else {})
    return spec.get("preset", "mini"), shape


def write_initial_model(directory: Path, preset: str, shape: dict[str, Any], seed: int) -> int:
    """A randomly initialised MiniMind (seeded) with the shipped tokenizer; returns its parameter count."""
    from transformers import set_seed

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM
    from minimind_hf.tokenization import load_tokenizer, save_tokenizer

    set_seed(seed)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset(preset, **shape))
    model.save_pretrained(directory)
    save_tokenizer(load_tokenizer(), directory)
    return sum(p.numel() for p in model.parameters())


def run_stage(argv: list[str], log: Path) -> float:
    """Run ``python -m minimind_hf.train ARGV`` single-threaded, output to ``log``; returns its wall seconds."""
    command = [sys.executable, "-m", "minimind_hf.train", *argv]
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        out.write("$ " + shlex.join(command) + "\n")
        out.flush()
        done = subprocess.run(command, cwd=ROOT, env=single_thread_env(), stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"stage failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - start


def _stage_argv(argv: list[str]) -> list[str]:
    """The runner's argv as a user would type it: the machine's absolute paths made relative to the checkout."""
    return [os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) else a for a in argv]


def score_checkpoints(
    stage_dir: Path,
    sft_argv: list[str],
    prompt_id: int,
    system: str | None,
    test_file: str,
    cpu_offset: float = 0.0,
    **generate_kwargs: Any,
) -> list[dict[str, Any]]:
    """Score every checkpoint the budget saved in ``stage_dir`` (see :mod:`minimind_hf.training.cpu_budget`)."""
    import torch

    from minimind_hf.checkpoints import load_checkpoint
    from minimind_hf.training.runner import build_datasets, parse_args

    torch.set_num_threads(1)
    report = json.loads((stage_dir / "cpu_budget.json").read_text())
    stage_args, training_args = parse_args(sft_argv)
    pairs = speedrun_eval.test_slice(ROOT / test_file)
    rows, validation = [], None
    for mark in report["marks"]:
        loaded = load_checkpoint(stage_dir / mark["checkpoint"], dtype=torch.float32)
        if validation is None:
            _, validation, collator, _ = build_datasets(stage_args, training_args, loaded.tokenizer)
        scores = speedrun_eval.score_causal_lm(
            loaded.model, loaded.tokenizer, pairs, prompt_id=prompt_id, system=system, **generate_kwargs
        )
        val_loss = speedrun_eval.validation_loss(loaded.model, validation, collator) if validation else None
        rows.append({**mark, "cpu_s": round(mark["cpu_s"] + cpu_offset, 1), "val_loss": val_loss, **scores})
        print(
            f"  {mark['checkpoint']}: {rows[-1]['cpu_s']} CPU s, {mark['tokens_seen']:,} tokens, "
            f"chrF {scores['chrf']}, BLEU {scores['bleu']}, val loss {val_loss}",
            flush=True,
        )
    return rows


def command_run(args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    run_dir = RUNS / args.name
    if run_dir.exists():
        if not args.force:
            raise SystemExit(f"{run_dir} exists: pick another --name or pass --force to start over")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    preset, shape = model_shape(args.pretrain_recipe, args.model_config)
    seed = ["--seed", str(args.seed)]
    fractions = ["--budget_fractions", *map(str, args.fractions)]
    cache = ["--cache_dir", str(RUNS / "datasets-cache")]
    commands, wall, pretrain_cpu = [], 0.0, 0.0
    if args.pretrain_share > 0:
        pretrain_cpu = args.budget * args.pretrain_share
        argv = [
            args.pretrain_recipe,
            "--output_dir",
            str(run_dir / "pretrain"),
            "--max_cpu_seconds",
            str(pretrain_cpu),
            "--budget_fractions",
            "1.0",
            "--model_config_overrides",
            json.dumps(shape),
            *COMMON,
            *seed,
            *cache,
            *shlex.split(args.pretrain_args),
        ]
        commands.append(shlex.join(["python", "-m", "minimind_hf.train", *_stage_argv(argv)]))
        print(f"[{args.name}] pretraining for {pretrain_cpu:.0f} CPU s", flush=True)
        wall += run_stage(argv, run_dir / "pretrain.log")
        start = run_dir / "pretrain"
    else:
        start = run_dir / "init"
        write_initial_model(start, preset, shape, args.seed)
        commands.append(f"(random init, seed {args.seed}: preset {preset}, {json.dumps(shape)})")
    sft_argv = [
        args.recipe,
        "--output_dir",
        str(run_dir / "sft"),
        "--model_name_or_path",
        str(start),
        "--max_cpu_seconds",
        str(args.budget - pretrain_cpu),
        *fractions,
        *COMMON,
        *seed,
        *cache,
        *extra,
    ]
    commands.append(shlex.join(["python", "-m", "minimind_hf.train", *_stage_argv(sft_argv)]))
    print(f"[{args.name}] SFT for {args.budget - pretrain_cpu:.0f} CPU s", flush=True)
    wall += run_stage(sft_argv, run_dir / "sft.log")
    system = None
    checkpoints = score_checkpoints(
        run_dir / "sft", sft_argv, args.eval_prompt_id, system, args.test_file, cpu_offset=pretrain_cpu
    )
    summary = json.loads((run_dir / "sft" / "stage_complete.json").read_text())
    row = make_row(
        args,
        commands,
        checkpoints,
        wall,
        kind="decoder-only",
        params=_parameters(run_dir / "sft"),
        steps=summary["global_step"],
        pretrain_cpu_s=pretrain_cpu,
    )
    return row


def _parameters(directory: Path) -> int:
    """Parameters of a saved model, the tied output layer counted once."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(directory / "model.safetensors"), framework="pt") as handle:
        for key in handle.keys():
            if key != "lm_head.weight":
                n = 1
                for size in handle.get_slice(key).get_shape():
                    n *= size
                total += n
    return total


def make_row(
    args: argparse.Namespace, commands: list[str], checkpoints: list[dict[str, Any]], wall: float, **fields: Any
) -> dict[str, Any]:
    last = checkpoints[-1] if checkpoints else {}
    train_cpu = last.get("cpu_s") or 0
    tokens = sum(c["tokens_seen"] for c in checkpoints[-1:])
    return {
        "name": args.name,
        "comparison": args.comparison,
        "change": args.change,
        "commit": git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device(),
        "budget_cpu_s": args.budget,
        "seed": getattr(args, "seed", None),
        "commands": commands,
        "tokens_seen": tokens,
        "tokens_per_cpu_s": round(tokens / (train_cpu - fields.get("pretrain_cpu_s", 0.0)), 1)
        if train_cpu and tokens
        else None,
        "train_wall_s": round(wall, 1),
        "checkpoints": checkpoints,
        "chrf": last.get("chrf"),
        "bleu": last.get("bleu"),
        "val_loss": last.get("val_loss"),
        **fields,
    }


def _generate_settings(args: argparse.Namespace) -> dict[str, Any]:
    generate = {"num_beams": args.num_beams}
    if args.no_repeat_ngram_size:
        generate["no_repeat_ngram_size"] = args.no_repeat_ngram_size
    return generate


def command_decode_model(args: argparse.Namespace) -> dict[str, Any]:
    """Score a trained model folder (a quality run's ``out/sft``, say) on the slice with the given decoding."""
    import torch

    from minimind_hf.checkpoints import load_checkpoint

    torch.set_num_threads(1)
    generate = _generate_settings(args)
    loaded = load_checkpoint(args.model, dtype=torch.float32)
    pairs = speedrun_eval.test_slice(ROOT / args.test_file)
    scores = speedrun_eval.score_causal_lm(
        loaded.model, loaded.tokenizer, pairs, prompt_id=args.eval_prompt_id, **generate
    )
    print(f"  {args.model}: chrF {scores['chrf']}, BLEU {scores['bleu']}", flush=True)
    args.budget, args.seed = None, None
    checkpoint = {"checkpoint": str(args.model), "cpu_s": None, "tokens_seen": 0, "val_loss": None, **scores}
    return make_row(
        args,
        [
            f"benchmarks/speedrun.py decode --model {args.model} "
            + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in generate.items())
        ],
        [checkpoint],
        0.0,
        kind="decoder-only",
        params=sum(p.numel() for p in loaded.model.parameters()),
        decoding=generate,
    )


def command_decode(args: argparse.Namespace) -> dict[str, Any]:
    """Score the last checkpoint of an earlier run again with other decoding settings (a new row)."""
    if args.model:
        return command_decode_model(args)
    source = next((r for r in speedrun_board.read_rows(BOARD) if r["name"] == args.run), None)
    if source is None:
        raise SystemExit(f"no leaderboard row named {args.run!r}")
    run_dir = RUNS / args.run / "sft"
    report = json.loads((run_dir / "cpu_budget.json").read_text())
    report["marks"] = report["marks"][-1:]
    scratch = RUNS / args.name
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "cpu_budget.json").write_text(json.dumps(report))
    for mark in report["marks"]:
        link = scratch / mark["checkpoint"]
        if not link.exists():
            link.symlink_to(run_dir / mark["checkpoint"])
    generate = _generate_settings(args)
    sft_argv = shlex.split(source["commands"][-1])[3:]
    sft_argv = [str(ROOT / a) if a.startswith(("out/", "data/")) else a for a in sft_argv]
    pretrain_cpu = source.get("pretrain_cpu_s") or 0.0
    checkpoints = score_checkpoints(
        scratch, sft_argv, args.eval_prompt_id, None, args.test_file, cpu_offset=pretrain_cpu, **generate
    )
    args.budget, args.seed = source["budget_cpu_s"], source["seed"]
    command = f"benchmarks/speedrun.py decode --run {args.run} " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in generate.items()
    )
    return make_row(
        args,
        [*source["commands"], command],
        checkpoints,
        0.0,
        kind=source.get("kind"),
        params=source.get("params"),
        steps=source.get("steps"),
        pretrain_cpu_s=pretrain_cpu,
        decoding=generate,
    )


def command_record(args: argparse.Namespace) -> dict[str, Any]:
    """A row for a run whose scoring did not happen (stopped for time).

    Its budget marks -- steps, CPU seconds, tokens seen -- without scores, and the training command from its log.
    """
    run_dir = RUNS / args.name
    report = json.loads((run_dir / "sft" / "cpu_budget.json").read_text())
    commands = []
    for log in ("pretrain.log", "sft.log"):
        if (run_dir / log).exists():
            first = (run_dir / log).read_text(encoding="utf-8").splitlines()[0].removeprefix("$ ")
            argv = shlex.split(first)[3:]
            commands.append(shlex.join(["python", "-m", "minimind_hf.train", *_stage_argv(argv)]))
    pretrain = run_dir / "pretrain" / "cpu_budget.json"
    pretrain_cpu = json.loads(pretrain.read_text())["max_cpu_seconds"] if pretrain.exists() else 0.0
    args.budget, args.seed = report["max_cpu_seconds"] + pretrain_cpu, None
    checkpoints = [{**m, "cpu_s": round(m["cpu_s"] + pretrain_cpu, 1)} for m in report["marks"]]
    return make_row(
        args,
        commands,
        checkpoints,
        0.0,
        kind="decoder-only",
        scored=False,
        steps=checkpoints[-1]["step"] if checkpoints else 0,
        pretrain_cpu_s=pretrain_cpu,
    )


def command_anchor(args: argparse.Namespace) -> dict[str, Any]:
    import speedrun_anchor

    run_dir = RUNS / args.name
    if run_dir.exists():
        if not args.force:
            raise SystemExit(f"{run_dir} exists: pick another --name or pass --force to start over")
        shutil.rmtree(run_dir)
    command = shlex.join(
        [
            "OMP_NUM_THREADS=1",
            "python",
            "benchmarks/speedrun_anchor.py",
            "--budget",
            str(args.budget),
            "--seed",
            str(args.seed),
            *shlex.split(args.anchor_args),
        ]
    )
    env = single_thread_env()
    start = time.perf_counter()
    log = run_dir.parent / f"{args.name}.log"
    run_dir.mkdir(parents=True)
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "speedrun_anchor.py"),
                "--out",
                str(run_dir),
                "--budget",
                str(args.budget),
                "--seed",
                str(args.seed),
                "--test-file",
                args.test_file,
                "--fractions",
                *map(str, args.fractions),
                *shlex.split(args.anchor_args),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        raise SystemExit(f"anchor failed (exit {done.returncode}); see {log}")
    result = json.loads((run_dir / speedrun_anchor.RESULT).read_text())
    return make_row(
        args,
        [command],
        result["checkpoints"],
        time.perf_counter() - start,
        kind="encoder-decoder",
        params=result["params"],
        steps=result["steps"],
    )


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "anchor", "decode"):
        p = sub.add_parser(name)
        p.add_argument("--name", required=True, help="the row's name (and its folder under out/speedrun/)")
        p.add_argument("--comparison", default="levers", help="rows of one comparison share a PNG")
        p.add_argument("--change", default="", help="what this row changes against its baseline, in words")
        p.add_argument("--test-file", default=TEST_FILE)
        p.add_argument("--eval-prompt-id", type=int, default=0, help="the prompt phrasing of the evaluation")
        p.add_argument("--board", type=Path, default=BOARD)
        if name != "decode":
            p.add_argument("--budget", type=float, required=True, help="CPU seconds of training")
            p.add_argument("--seed", type=int, default=42)
            p.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
            p.add_argument("--force", action="store_true", help="delete an earlier run of this name first")
    run = sub.choices["run"]
    run.add_argument("--recipe", default=SFT_RECIPE)
    run.add_argument("--pretrain-recipe", default=PRETRAIN_RECIPE, help="also the model shape of a run from scratch")
    run.add_argument("--pretrain-share", type=float, default=0.0, help="share of the budget pretraining gets first")
    run.add_argument("--pretrain-args", default="", help="overrides for the pretraining stage, one string")
    run.add_argument("--model-config", help="JSON of MiniMindConfig fields over the recipe's shape")
    sub.choices["anchor"].add_argument("--anchor-args", default="", help="speedrun_anchor.py options, one string")
    decode = sub.choices["decode"]
    which = decode.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="the leaderboard row whose last checkpoint is decoded again")
    which.add_argument("--model", type=Path, help="or a trained model folder (e.g. a quality run's out/sft)")
    decode.add_argument("--num-beams", type=int, default=1)
    decode.add_argument("--no-repeat-ngram-size", type=int, default=0)
    record = sub.add_parser("record", help="a row without scores for a run whose scoring did not happen")
    record.add_argument("--name", required=True)
    record.add_argument("--comparison", default="levers")
    record.add_argument("--change", default="")
    record.add_argument("--board", type=Path, default=BOARD)
    sub.add_parser("board")
    args = parser.parse_args(argv)
    if args.command == "board":
        speedrun_board.rebuild(BOARD)
        return
    if args.command == "run":
        row = command_run(args, extra)
    elif args.command == "record":
        row = command_record(args)
    elif args.command == "anchor":
        row = command_anchor(args)
    else:
        row = command_decode(args)
    row["command"] = shlex.join(["python", "benchmarks/speedrun.py", *argv, *(["--", *extra] if extra else [])])
    speedrun_board.add_row(args.board, row)
    print(json.dumps({k: row[k] for k in ("name", "chrf", "bleu", "val_loss", "tokens_seen", "tokens_per_cpu_s")}))


if __name__ == "__main__":
    main()
