"""CPU seconds per real token of one SFT training step: padded length-grouped batches against pad-free packing.

    OMP_NUM_THREADS=1 python benchmarks/speedrun_packing.py [--batches 6] [--batch-size 64]

Batches of real chats from ``data/sft.jsonl`` (tokenised as the stage runner does, the small recipe's
``max_length`` 128), grouped by length as ``train_sampling_strategy: group_by_length`` does, then timed
(forward + backward, the small recipe's 5.9M model, one thread) three ways:

* ``padded``: the project's ``SFTCollator`` (right padding to a multiple of 8), the baseline;
* ``padded, labelled logits``: the same batch through
  :func:`minimind_hf.training.labelled_loss.labelled_positions_loss`;
* ``packed``: transformers' ``DataCollatorWithFlattening`` (one row, ``position_ids`` restart per chat, no
  padding); MiniMind's mask builder turns the positions into a block-diagonal mask for sdpa, which still
  computes attention over the whole packed row.

Prints a Markdown table: real tokens per step, padded share, CPU ms per step and CPU seconds per 1,000 real tokens.
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from transformers import DataCollatorWithFlattening

from minimind_hf import MiniMindConfig, MiniMindForCausalLM
from minimind_hf.data import SFTCollator, build_sft_dataset
from minimind_hf.prompts import resolve_system_prompt
from minimind_hf.tokenization import load_tokenizer
from minimind_hf.training.labelled_loss import labelled_positions_loss

SHAPE = dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=2)


def grouped_batches(lengths: list[int], batch_size: int, count: int, seed: int) -> list[list[int]]:
    """``count`` batches drawn as the length-grouped sampler draws them (megabatches of 50, longest first)."""
    rng = random.Random(seed)
    order = rng.sample(range(len(lengths)), batch_size * 50)
    order.sort(key=lambda i: -lengths[i])
    batches = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    return rng.sample(batches, count)


def time_step(model, loss_fn, batch, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        start = time.process_time()
        loss_fn(batch).backward()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cache-dir", default="out/speedrun/datasets-cache")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = load_tokenizer()
    # the small SFT recipe's settings, so that the speedrun's tokenised cache is reused
    dataset, _ = build_sft_dataset(
        tokenizer,
        ["data/sft.jsonl"],
        max_length=128,
        system_prompt=resolve_system_prompt("finance"),
        prompt_id=0,
        system_prompt_fraction=0.15,
        cache_dir=args.cache_dir,
    )
    train = dataset["train"]
    lengths = [len(ids) for ids in train["input_ids"]]
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig.from_preset("mini", **SHAPE))
    model.config._attn_implementation = "sdpa"
    model.train()
    padded, packed = SFTCollator(tokenizer, pad_to_multiple_of=8), DataCollatorWithFlattening()
    totals = {"padded": [0.0, 0, 0], "padded, labelled logits": [0.0, 0, 0], "packed": [0.0, 0, 0]}
    for index in grouped_batches(lengths, args.batch_size, args.batches, seed=0):
        rows = [train[i] for i in index]
        real = sum(len(r["input_ids"]) for r in rows)
        pad_batch = padded(rows)
        pack_batch = packed([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
        runs = {
            "padded": (lambda b: model(**b).loss, pad_batch, pad_batch["input_ids"].numel()),
            "padded, labelled logits": (
                lambda b: labelled_positions_loss(model, b),
                pad_batch,
                pad_batch["input_ids"].numel(),
            ),
            "packed": (lambda b: model(**b).loss, pack_batch, pack_batch["input_ids"].numel()),
        }
        for name, (fn, batch, slots) in runs.items():
            totals[name][0] += time_step(model, fn, batch, args.repeats)
            totals[name][1] += real
            totals[name][2] += slots
    print(
        f"{args.batches} length-grouped batches of {args.batch_size} chats, forward + backward, 1 thread, "
        f"best of {args.repeats}\n"
    )
    print("| layout | real tokens / step | padding | CPU ms / step | CPU s / 1,000 real tokens |")
    print("|---|---|---|---|---|")
    for name, (seconds, real, slots) in totals.items():
        print(
            f"| {name} | {real / args.batches:,.0f} | {1 - real / slots:.1%} | {1000 * seconds / args.batches:,.0f} "
            f"| {1000 * seconds / real:.3f} |"
        )


if __name__ == "__main__":
    main()
