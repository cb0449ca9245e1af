"""GGUF round trip.

Export a checkpoint with ``minimind export --to gguf``, run it in llama.cpp (``llama-cpp-python``), and compare
llama.cpp's greedy tokens with transformers' on the same prompts.

    python benchmarks/gguf_roundtrip.py --model out/sft --dtypes f32 f16 --prompts 8
    python benchmarks/gguf_roundtrip.py --preset mini --preset minimind-moe-145m     # untrained presets

Prompts are the first English sources of a test file, put through the project's translation prompt.
Prints one Markdown row per (model, dtype): file size, prompts whose greedy tokens are identical, whether
llama.cpp tokenizes the prompt text as the tokenizer does, the largest difference of the next-token logits,
and llama.cpp's reply to the first prompt. A MoE preset is refused at export, and its row says why.
Needs ``pip install 'minimind-hf[gguf,llamacpp]'``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import minimind_hf  # noqa: E402,F401
from minimind_hf.interop.gguf import GGUFExportError, compare_with_llama_cpp, export_gguf  # noqa: E402


def _models(args):
    from minimind_hf import MiniMindConfig, MiniMindForCausalLM
    from minimind_hf.checkpoints import load_checkpoint
    from minimind_hf.tokenization import load_tokenizer

    for path in args.model:
        loaded = load_checkpoint(path, dtype="float32", device="cpu")
        yield path, loaded.model, loaded.tokenizer
    for preset in args.preset:
        torch.manual_seed(0)
        yield f"{preset} (untrained)", MiniMindForCausalLM(MiniMindConfig.from_preset(preset)).eval(), load_tokenizer()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="*", default=[], help="checkpoint directories")
    parser.add_argument("--preset", nargs="*", default=[], help="untrained MiniMind presets")
    parser.add_argument("--dtypes", nargs="+", default=["f32", "f16"], choices=["f32", "f16"])
    parser.add_argument("--test", default=str(ROOT / "data" / "sample" / "lora.test.jsonl"))
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--system", default=None, help="a named system prompt (finance)")
    parser.add_argument("--json", default=None, help="also write the full report here")
    args = parser.parse_args(argv)
    if not args.model and not args.preset:
        parser.error("give --model and/or --preset")
    from minimind_hf.prompts import resolve_system_prompt
    from minimind_hf.utils.jsonl import read_jsonl

    prompts = [row["en"] for _, row in read_jsonl(args.test)][: args.prompts]
    system = resolve_system_prompt(args.system)
    reports = []
    print(
        f"{len(prompts)} prompts from {args.test}, greedy, up to {args.max_new_tokens} new tokens; "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}\n"
    )
    print(
        "| model | dtype | file | identical greedy tokens | tokenization equal | max logit diff "
        "| llama.cpp reply (first prompt) |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, tokenizer in _models(args):
            for dtype in args.dtypes:
                try:
                    path = export_gguf(model, tokenizer, Path(tmp) / f"model-{dtype}.gguf", dtype=dtype)
                except GGUFExportError as err:
                    print(f"| {label} | {dtype} | refused | — | — | — | {err} |")
                    reports.append({"model": label, "dtype": dtype, "refused": str(err)})
                    break
                report = compare_with_llama_cpp(
                    path, model, tokenizer, prompts, max_new_tokens=args.max_new_tokens, system=system
                )
                size = path.stat().st_size
                tokenization = sum(r["tokenization_equal"] for r in report["rows"])
                diff = max(r["max_abs_logit_diff"] for r in report["rows"])
                reply = report["rows"][0]["text"].replace("|", "\\|").replace("\n", " ")[:60]
                print(
                    f"| {label} | {dtype} | {size / 2**20:.1f} MiB | {report['equal']}/{report['prompts']} | "
                    f"{tokenization}/{report['prompts']} | {diff:.2e} | {reply} |",
                    flush=True,
                )
                reports.append({"model": label, "dtype": dtype, "bytes": size, **report})
    if args.json:
        Path(args.json).write_text(json.dumps(reports, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r.get("refused") or r["equal"] == r["prompts"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
