"""Generation throughput: MiniMind against ``LlamaForCausalLM`` on the same weights, and eval's translation rate.

    python benchmarks/generate_throughput.py                          # CPU default: mini, batch 1 and 32
    python benchmarks/generate_throughput.py --model out/sft          # a trained checkpoint (translations end at EOS)
    python benchmarks/generate_throughput.py --device cuda            # GPU: minimind-26m and minimind-104m
    python benchmarks/generate_throughput.py --quick                  # tiny sizes: checks the benchmark runs

``generate`` rows: greedy, a fixed random prompt of ``--prompt-len`` tokens, exactly ``--new-tokens`` new tokens
(no stop token), batch 1 and 32; the KV cache ``dynamic`` or ``static``, and ``static+compile`` (the forward pass
compiled by ``generate``'s own compile path). tokens/s counts new tokens of the whole batch. Every row of a
size is timed in interleaved rounds; ``vs Llama`` is the median over rounds of Llama's time over MiniMind's for
the same cache (> 1: MiniMind is faster), and ``same tokens`` says whether both produced the same tokens.

The ``translate`` rows time ``minimind_hf.evaluation.translate`` -- what ``minimind eval`` and the
preference-pair generator run -- on the first ``--sentences`` English sentences of the LoRA test split with
eval's defaults (batch 16, at most 128 new tokens): sentences/s. An untrained model (no ``--model``) rarely
stops, so its translations run to the length cap: a lower bound on a trained model's rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from common import format_table, interleaved, load_average, paired_ratio, settle_arguments, write_json  # noqa: E402
from transformers import CompileConfig  # noqa: E402

from minimind_hf import MiniMindConfig, MiniMindForCausalLM  # noqa: E402
from minimind_hf.interop.llama import to_llama  # noqa: E402

CPU_DEFAULT = dict(
    presets=["mini"],
    batch_sizes=[1, 32],
    prompt_len=32,
    new_tokens=32,
    rounds=3,
    caches=["dynamic", "static"],
    sentences=32,
)
GPU_DEFAULT = dict(
    presets=["minimind-26m", "minimind-104m"],
    batch_sizes=[1, 32],
    prompt_len=128,
    new_tokens=128,
    rounds=5,
    caches=["dynamic", "static", "static+compile"],
    sentences=256,
)
QUICK = dict(
    presets=["tiny"],
    batch_sizes=[1, 4],
    prompt_len=8,
    new_tokens=4,
    rounds=2,
    caches=["dynamic", "static"],
    sentences=4,
)


def generate_call(model, ids: torch.Tensor, new_tokens: int, cache: str, out: dict, key: str):
    options = dict(
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=0,
        eos_token_id=None,
    )
    if cache.startswith("static"):
        options["cache_implementation"] = "static"
    if cache == "static+compile":
        compile_config = CompileConfig()
        compile_config._compile_all_devices = True  # generate compiles on CUDA only unless told
        options["compile_config"] = compile_config
    else:
        options["disable_compile"] = True
    attention_mask = torch.ones_like(ids)

    def call() -> None:
        with torch.inference_mode():
            out[key] = model.generate(input_ids=ids, attention_mask=attention_mask, **options)

    return call


def measure_generate(preset: str, args, device: str) -> list[dict]:
    torch.manual_seed(0)
    minimind = MiniMindForCausalLM(MiniMindConfig.from_preset(preset)).to(device).eval()
    minimind.config._attn_implementation = "sdpa"
    llama = to_llama(minimind).to(device).eval()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    minimind, llama = minimind.to(dtype), llama.to(dtype)
    records = []
    for batch in args.batch_sizes:
        ids = torch.randint(3, minimind.config.vocab_size, (batch, args.prompt_len), device=device)
        outputs: dict = {}
        calls = {}
        for cache in args.caches:
            for name, model in (("minimind", minimind), ("llama", llama)):
                key = f"{name} {cache}"
                calls[key] = generate_call(model, ids, args.new_tokens, cache, outputs, key)
                calls[key]()  # warm-up (compiles here)
        samples = interleaved(calls, args.rounds, 1, device)
        for cache in args.caches:
            for name in ("minimind", "llama"):
                key = f"{name} {cache}"
                seconds = statistics.median(samples[key])
                record = {
                    "preset": preset,
                    "batch": batch,
                    "model": name,
                    "cache": cache,
                    "ms": 1000 * seconds,
                    "tokens_per_s": batch * args.new_tokens / seconds,
                }
                if name == "minimind":
                    record["vs_llama"] = paired_ratio(samples, key, f"llama {cache}")
                    record["same_tokens"] = bool(torch.equal(outputs[key], outputs[f"llama {cache}"]))
                records.append(record)
    return records


def measure_translate(args, device: str) -> list[dict]:
    from minimind_hf.checkpoints import load_checkpoint
    from minimind_hf.evaluation.translate import translate
    from minimind_hf.tokenization import load_tokenizer

    if args.model:
        loaded = load_checkpoint(args.model, dtype=torch.float32)
        model, tokenizer = loaded.model, loaded.tokenizer
    else:
        torch.manual_seed(0)
        model, tokenizer = MiniMindForCausalLM(MiniMindConfig.from_preset(args.presets[0])), load_tokenizer(None)
    model = model.to(device).eval()
    llama = to_llama(model).to(device).eval()
    test = ROOT / "data" / "sample" / "lora.test.jsonl"
    sources = [json.loads(line)["en"] for line in test.read_text(encoding="utf-8").splitlines()[: args.sentences]]
    results: dict = {}

    def call(name, m):
        def run() -> None:
            results[name] = translate(
                m, tokenizer, sources, batch_size=16, max_new_tokens=args.translate_tokens, show_progress=False
            )

        return run

    calls = {"minimind": call("minimind", model), "llama": call("llama", llama)}
    samples = interleaved(calls, max(args.rounds - 1, 1), 1, device)
    rows = []
    for name in calls:
        seconds = statistics.median(samples[name])
        row = {
            "model": name,
            "checkpoint": args.model or f"untrained {args.presets[0]}",
            "sentences": len(sources),
            "s": seconds,
            "sentences_per_s": len(sources) / seconds,
        }
        if name == "minimind":
            row["vs_llama"] = paired_ratio(samples, "minimind", "llama")
            row["same_output"] = results["minimind"] == results["llama"]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--presets", nargs="+")
    parser.add_argument("--batch-sizes", nargs="+", type=int)
    parser.add_argument("--prompt-len", type=int)
    parser.add_argument("--new-tokens", type=int)
    parser.add_argument("--caches", nargs="+", choices=["dynamic", "static", "static+compile"])
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], help="default: bf16 on CUDA, fp32 on the CPU")
    parser.add_argument("--model", help="a checkpoint for the translate rows (default: an untrained preset)")
    parser.add_argument("--sentences", type=int)
    parser.add_argument("--translate-tokens", type=int, default=128, help="max_new_tokens of the translate rows")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmark runs")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    device, info = settle_arguments(args, QUICK, GPU_DEFAULT, CPU_DEFAULT, weights=True)
    if args.quick:
        args.translate_tokens = 8
    print(
        f"device: {info['device']}; {args.dtype}; load average {info['load_average']}; torch {info['torch']}, "
        f"transformers {info['transformers']}; {info['date']}"
    )
    generate_rows = []
    for preset in args.presets:
        rows = measure_generate(preset, args, device)
        generate_rows += rows
        print(
            f"\ngenerate, {preset}: prompt {args.prompt_len} + {args.new_tokens} new tokens, greedy, "
            f"{args.rounds} rounds; load average {load_average()}"
        )
        print(
            format_table(
                [
                    ("batch", "batch"),
                    ("model", "model"),
                    ("cache", "cache"),
                    ("ms", "ms"),
                    ("tokens_per_s", "new tokens/s"),
                    ("vs_llama", "vs Llama"),
                    ("same_tokens", "same tokens"),
                ],
                rows,
            )
        )
    translate_rows = measure_translate(args, device)
    print(
        f"\ntranslate (minimind eval's path), {translate_rows[0]['sentences']} sentences of the LoRA test split, "
        f"batch 16, at most {args.translate_tokens} new tokens, {translate_rows[0]['checkpoint']}; "
        f"load average {load_average()}"
    )
    print(
        format_table(
            [
                ("model", "model"),
                ("s", "s"),
                ("sentences_per_s", "sentences/s"),
                ("vs_llama", "vs Llama"),
                ("same_output", "same output"),
            ],
            translate_rows,
        )
    )
    payload = {"info": info, "args": vars(args), "generate": generate_rows, "translate": translate_rows}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
