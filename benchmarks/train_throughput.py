"""Training throughput of MiniMind presets: tokens/s, ms per optimizer step, peak memory and MFU.

    python benchmarks/train_throughput.py --presets mini minimind-26m --batch-size 16 --seq-len 256 --steps 10
    python benchmarks/train_throughput.py --presets minimind-26m --batch-size 64 --seq-len 512 --dtype bf16 \
        --peak-tflops 989   # an H100's dense bf16 peak, for the MFU column

Random token batches, AdamW, full forward + backward + step, after warm-up steps that are not timed.
MFU follows the PaLM / nanoGPT estimate: 6 * parameters + 12 * layers * hidden * seq FLOPs per token.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from minimind_hf import MiniMindConfig, MiniMindForCausalLM


def flops_per_token(config: MiniMindConfig, params: int, seq_len: int) -> float:
    return 6 * params + 12 * config.num_hidden_layers * config.hidden_size * seq_len


def measure(preset: str, batch: int, seq_len: int, steps: int, warmup: int, dtype: str, attn: str, device: str) -> dict:
    config = MiniMindConfig.from_preset(preset)
    config._attn_implementation = attn
    model = MiniMindForCausalLM(config).to(device).train()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=dtype == "bf16")
    ids = torch.randint(0, config.vocab_size, (batch, seq_len), device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / steps
    tokens_per_s = batch * seq_len / elapsed
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"preset": preset, "params": params, "ms_per_step": elapsed * 1000, "tokens_per_s": tokens_per_s,
            "flops_per_s": tokens_per_s * flops_per_token(config, params, seq_len), "peak_gib": peak / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["mini", "minimind-26m"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--attn", default="sdpa", choices=["eager", "sdpa", "flash_attention_2"])
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for the MFU column")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {args.batch_size} x seq {args.seq_len}, {args.dtype}, attention {args.attn}")
    header = f"{'preset':<20}{'params':>12}{'ms/step':>10}{'tokens/s':>12}{'TFLOP/s':>9}{'MFU':>7}{'peak GiB':>10}"
    print(header)
    print("-" * len(header))
    for preset in args.presets:
        r = measure(preset, args.batch_size, args.seq_len, args.steps, args.warmup, args.dtype, args.attn, device)
        mfu = f"{100 * r['flops_per_s'] / (args.peak_tflops * 1e12):.1f}%" if args.peak_tflops else "-"
        print(f"{r['preset']:<20}{r['params']:>12,}{r['ms_per_step']:>10.1f}{r['tokens_per_s']:>12,.0f}"
              f"{r['flops_per_s'] / 1e12:>9.3f}{mfu:>7}{r['peak_gib']:>10.2f}")


if __name__ == "__main__":
    main()
