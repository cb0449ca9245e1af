r"""Training throughput: MiniMind against transformers' Llama of the same shape, row by row, in one process.

    python benchmarks/train_throughput.py                                   # CPU default: mini, a minute or two
    python benchmarks/train_throughput.py --presets minimind-26m --seq-lens 256 --batch-size 4 \
        --variants minimind:sdpa minimind:sdpa+compile llama:sdpa llama:sdpa+compile
    python benchmarks/train_throughput.py --device cuda                     # GPU: the four presets, seq 512 and 1024
    python benchmarks/train_throughput.py --quick                           # tiny sizes: checks the benchmark runs

One row is one training step -- forward, backward, AdamW step, zero_grad -- of a plain PyTorch loop on a fixed
random batch, in a variant ``MODEL:ATTENTION[+compile][+fused][+liger]``: ``minimind`` or ``llama``
(``LlamaForCausalLM`` converted from the same MiniMind weights by ``minimind_hf.interop.llama.to_llama``), attention
``eager`` / ``sdpa`` / ``flash_attention_2``, ``+compile`` (``torch.compile`` of the model), ``+fused``
(``AdamW(fused=True)``; the default is the foreach AdamW), ``+liger`` (liger-kernel's fused linear + cross-entropy
in place of the LM head and the loss; CUDA only). Rows a machine cannot run (flash-attention or liger not
installed, no CUDA) are listed as skipped with the reason.

All rows of a preset and sequence length are timed in interleaved rounds (every round runs every row, in an
order rotated each round); tokens/s is the median over rounds, and ``vs Llama`` is the median over rounds of
Llama's step time over this row's (> 1: MiniMind is faster), against the Llama row with the same attention and
options where there is one, else ``llama:sdpa``.

FLOPs per token (PaLM appendix B; nanoGPT's MFU): ``6 * N + 12 * L * T * H * d_head``, where ``N`` counts the
weights of every matrix multiply a token goes through -- attention projections, the MLP (for a MoE layer the
router, the shared experts and ``top_k`` routed experts), the LM head (tied to the embedding, so the lookup is
not counted again) -- and the second term is attention's ``QK^T`` and ``AV`` over the full ``T x T`` square
(causal masking is not subtracted). MFU is against the dense matmul rate of this device measured in the same run
(``bf16`` on CUDA, the run's dtype on the CPU), not a datasheet peak.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from common import (  # noqa: E402
    format_table,
    interleaved,
    load_average,
    matmul_tflops,
    paired_ratio,
    settle_arguments,
    write_json,
)

from minimind_hf import MiniMindConfig, MiniMindForCausalLM  # noqa: E402

CPU_DEFAULT = dict(
    presets=["mini"],
    seq_lens=[256],
    batch_size=8,
    rounds=5,
    steps=2,
    variants=[
        "minimind:sdpa",
        "minimind:eager",
        "minimind:sdpa+fused",
        "llama:sdpa",
        "llama:eager",
        "llama:sdpa+fused",
    ],
)
GPU_DEFAULT = dict(
    presets=["minimind-26m", "minimind-3", "minimind-104m", "minimind-moe-145m"],
    seq_lens=[512, 1024],
    batch_size=32,
    rounds=5,
    steps=5,
    variants=[
        "minimind:sdpa",
        "minimind:eager",
        "minimind:flash_attention_2",
        "minimind:sdpa+fused",
        "minimind:sdpa+fused+liger",
        "minimind:sdpa+compile+fused",
        "llama:sdpa",
        "llama:sdpa+fused",
        "llama:sdpa+compile+fused",
    ],
)
QUICK = dict(
    presets=["tiny", "tiny-moe"],
    seq_lens=[32],
    batch_size=2,
    rounds=2,
    steps=1,
    variants=["minimind:sdpa", "minimind:eager", "minimind:sdpa+fused", "llama:sdpa"],
)


def matmul_weights_per_token(config: MiniMindConfig) -> int:
    """``N`` of the FLOPs formula: weights of the matrix multiplies one token goes through."""
    d, heads, kv, hd = config.hidden_size, config.num_attention_heads, config.num_key_value_heads, config.head_dim
    attention = d * heads * hd + 2 * d * kv * hd + heads * hd * d
    mlp = 3 * d * config.intermediate_size
    if config.use_moe:
        mlp = d * config.n_routed_experts + (config.num_experts_per_tok + config.n_shared_experts) * mlp
    return config.num_hidden_layers * (attention + mlp) + config.vocab_size * d


def flops_per_token(config: MiniMindConfig, seq_len: int) -> int:
    attention = 12 * config.num_hidden_layers * seq_len * config.num_attention_heads * config.head_dim
    return 6 * matmul_weights_per_token(config) + attention


def parse_variant(spec: str) -> dict:
    model, _, rest = spec.partition(":")
    attn, *options = (rest or "sdpa").split("+")
    unknown = set(options) - {"compile", "fused", "liger"}
    if model not in ("minimind", "llama") or attn not in ("eager", "sdpa", "flash_attention_2") or unknown:
        raise SystemExit(
            f"bad variant {spec!r}: MODEL:ATTENTION[+compile][+fused][+liger], MODEL minimind or llama, "
            "ATTENTION eager, sdpa or flash_attention_2"
        )
    return {
        "model": model,
        "attn": attn,
        "compile": "compile" in options,
        "fused": "fused" in options,
        "liger": "liger" in options,
    }


def why_not(variant: dict, config: MiniMindConfig, device: str) -> str | None:
    """The reason this machine cannot run a variant, or None."""
    if variant["model"] == "llama" and config.use_moe:
        return "a MoE MiniMind has no Llama equivalent"
    if variant["attn"] == "flash_attention_2" and (device != "cuda" or importlib.util.find_spec("flash_attn") is None):
        return "flash-attn not installed" if device == "cuda" else "flash-attention needs CUDA"
    if variant["liger"] and (device != "cuda" or importlib.util.find_spec("liger_kernel") is None):
        return "liger-kernel not installed" if device == "cuda" else "liger-kernel needs CUDA"
    return None


def build_step(variant: dict, source: MiniMindForCausalLM, ids: torch.Tensor, autocast) -> Callable[[], None]:
    """One training step of the variant, on its own copy of ``source``'s weights."""
    from minimind_hf.interop.llama import to_llama

    if variant["model"] == "llama":
        model = to_llama(source)
    else:
        model = MiniMindForCausalLM(source.config)
        model.load_state_dict(source.state_dict())
    model.config._attn_implementation = variant["attn"]
    model = model.to(ids.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=variant["fused"] or None)
    forward = torch.compile(model) if variant["compile"] else model

    if variant["liger"]:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        fused_loss = LigerFusedLinearCrossEntropyLoss()
        inner = torch.compile(model.model) if variant["compile"] else model.model
        inputs, targets = ids[:, :-1], ids[:, 1:].reshape(-1)

        def loss_fn() -> torch.Tensor:
            hidden = inner(input_ids=inputs).last_hidden_state
            loss = fused_loss(model.lm_head.weight, hidden.reshape(-1, hidden.shape[-1]), targets)
            if getattr(model.config, "use_moe", False):
                loss = loss + sum(layer.mlp.aux_loss for layer in model.model.layers)
            return loss
    else:

        def loss_fn() -> torch.Tensor:
            return forward(input_ids=ids, labels=ids).loss

    def step() -> None:
        with autocast:
            loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def measure(preset: str, seq_len: int, args, device: str, peak_tflops: float) -> list[dict]:
    config = MiniMindConfig.from_preset(preset, max_position_embeddings=max(seq_len, 2048))
    torch.manual_seed(0)
    source = MiniMindForCausalLM(config)
    ids = torch.randint(0, config.vocab_size, (args.batch_size, seq_len), device=device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    fpt = flops_per_token(config, seq_len)
    records, steps = [], {}
    for spec in args.variants:
        variant = parse_variant(spec)
        record = {
            "preset": preset,
            "params": sum(p.numel() for p in source.parameters()),
            "seq_len": seq_len,
            "batch": args.batch_size,
            "variant": spec,
            "flops_per_token": fpt,
        }
        reason = why_not(variant, config, device)
        if reason:
            records.append({**record, "skipped": reason})
            continue
        if device == "cuda":
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        step = build_step(variant, source, ids, autocast)
        for _ in range(args.warmup):  # compiles here, and allocates the optimizer state
            step()
        if device == "cuda":
            torch.cuda.synchronize()
            record["peak_gib"] = (torch.cuda.max_memory_allocated() - base) / 2**30
        steps[spec] = step
        records.append(record)
    samples = interleaved(steps, args.rounds, args.steps, device)
    for record in records:
        spec = record["variant"]
        if spec not in samples:
            continue
        seconds = statistics.median(samples[spec])
        record["ms_per_step"] = 1000 * seconds
        record["tokens_per_s"] = args.batch_size * seq_len / seconds
        record["tflops"] = record["tokens_per_s"] * fpt / 1e12
        record["mfu_pct"] = 100 * record["tflops"] / peak_tflops
        variant = parse_variant(spec)
        if variant["model"] == "minimind":
            twin = "llama:" + spec.split(":", 1)[1]
            baseline = twin if twin in samples else "llama:sdpa" if "llama:sdpa" in samples else None
            if baseline:
                record["vs_llama"] = paired_ratio(samples, spec, baseline)
                record["llama_row"] = baseline
    return records


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--presets", nargs="+")
    parser.add_argument("--seq-lens", nargs="+", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--variants", nargs="+", help="MODEL:ATTENTION[+compile][+fused][+liger] ...")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--steps", type=int, help="timed steps of a row per round")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed steps of each row first (compiling happens here)"
    )
    parser.add_argument(
        "--dtype",
        choices=["fp32", "bf16"],
        help="bf16: autocast; default: the runner's precision auto (bf16 on a bf16 GPU or a CPU with "
        "AMX / AVX-512 BF16, else fp32)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, one step per round: checks the benchmark runs"
    )
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    device, info = settle_arguments(args, QUICK, GPU_DEFAULT, CPU_DEFAULT)
    if args.quick:
        args.warmup = 1
    peak_dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    peak = matmul_tflops(device, peak_dtype, size=256 if args.quick else None)
    info["matmul_tflops"] = peak
    print(
        f"device: {info['device']}; {args.dtype}; measured {args.dtype} matmul {peak:.2f} TFLOP/s; "
        f"load average {info['load_average']}; torch {info['torch']}, transformers {info['transformers']}; "
        f"{info['date']}"
    )
    records = []
    for preset in args.presets:
        for seq_len in args.seq_lens:
            rows = measure(preset, seq_len, args, device, peak)
            records += rows
            print(
                f"\n{preset} ({rows[0]['params']:,} parameters), batch {args.batch_size} x seq {seq_len}, "
                f"{rows[0]['flops_per_token'] / 1e6:.1f} MFLOP/token, {args.rounds} rounds x {args.steps} steps; "
                f"load average {load_average()}"
            )
            print(
                format_table(
                    [
                        ("variant", "variant"),
                        ("ms_per_step", "ms/step"),
                        ("tokens_per_s", "tokens/s"),
                        ("mfu_pct", "MFU %"),
                        ("peak_gib", "peak GiB"),
                        ("vs_llama", "vs Llama"),
                        ("skipped", "skipped"),
                    ],
                    rows,
                )
            )
    write_json(args.json, {"info": info, "args": vars(args), "rows": records})
    return records


if __name__ == "__main__":
    main()
