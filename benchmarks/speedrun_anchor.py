"""The speedrun's anchor: a same-size encoder-decoder (transformers' ``MarianMTModel``) on the same pairs and budget.

A baseline for the benchmark, not a feature of the project: what a user would pick instead of a decoder-only
model for this job. ``MarianConfig``: d_model 256, 3 + 3 layers, 4 heads, FFN 704, the project's 6,400-token
vocabulary shared by encoder, decoder and output layer (tied). The pairs are the SFT chats' own pairs
(:func:`speedrun_data.pairs`), source ``English <|im_end|>``, target ``Chinese <|im_end|>``, without a prompt.
The loop follows the speedrun baseline's settings by default (the SFT recipe's, with a constant learning rate
after 10 warmup steps) -- batch 64 rows in length-grouped batches, AdamW, learning rate 1.5e-3, no weight
decay, clipping at 1.0 -- and stops
after ``--budget`` CPU seconds of this process (one thread), saving at the same fractions as the speedrun's
decoder-only runs; each saved model is then scored as they are (:mod:`speedrun_eval`: same 300 test rows,
greedy, batch 16, the same length cap).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import speedrun_eval
import torch
from speedrun_data import pairs
from transformers import MarianConfig, MarianMTModel, get_scheduler, set_seed

from minimind_hf.tokenization import load_tokenizer
from minimind_hf.training.cpu_budget import budget_fractions

RESULT = "anchor.json"
MAX_TOKENS = 128
MEGABATCH = 50  # batches per length-sorted group, as transformers' LengthGroupedSampler


def anchor_config(tokenizer, dropout: float) -> MarianConfig:
    return MarianConfig(
        vocab_size=len(tokenizer),
        d_model=256,
        encoder_layers=3,
        decoder_layers=3,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=704,
        decoder_ffn_dim=704,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        forced_eos_token_id=None,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        dropout=dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )


def encode(tokenizer, rows: list[dict[str, str]], chunk: int = 4096) -> list[tuple[np.ndarray, np.ndarray]]:
    """Source and target ids (cut to ``MAX_TOKENS`` with the end token) as int32 arrays, tokenized in chunks.

    Python lists of ints cost ~36 bytes a token, and the whole corpus at once held several GB.
    """
    eos = tokenizer.eos_token_id

    def ids(texts: list[str]) -> list[np.ndarray]:
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [np.array(t[: MAX_TOKENS - 1] + [eos], dtype=np.int32) for t in encoded]

    examples = []
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        examples.extend(zip(ids([r["en"] for r in part]), ids([r["zh"] for r in part]), strict=True))
    return examples


def batches(examples, batch_size: int, seed: int):
    """Length-grouped batches in a seeded order, epoch after epoch."""
    rng = random.Random(seed)
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        group = batch_size * MEGABATCH
        chunks = []
        for start in range(0, len(order), group):
            mega = sorted(order[start : start + group], key=lambda i: -(len(examples[i][0]) + len(examples[i][1])))
            chunks.extend(mega[k : k + batch_size] for k in range(0, len(mega), batch_size))
        yield from chunks


def collate(examples, index: list[int], pad: int) -> dict[str, torch.Tensor]:
    src_len = max(len(examples[i][0]) for i in index)
    tgt_len = max(len(examples[i][1]) for i in index)
    input_ids = torch.full((len(index), src_len), pad)
    labels = torch.full((len(index), tgt_len), -100)
    for row, i in enumerate(index):
        s, t = examples[i]
        input_ids[row, : len(s)] = torch.from_numpy(s)
        labels[row, : len(t)] = torch.from_numpy(t)
    return {"input_ids": input_ids, "attention_mask": (input_ids != pad).long(), "labels": labels}


@torch.inference_mode()
def validation_loss(model, examples, pad: int, batch_size: int = 64) -> float:
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples, list(range(start, min(start + batch_size, len(examples)))), pad)
        logits = model(
            **{k: v for k, v in batch.items() if k != "labels"},
            decoder_input_ids=model.prepare_decoder_input_ids_from_labels(labels=batch["labels"]),
        ).logits
        keep = batch["labels"] != -100
        total += torch.nn.functional.cross_entropy(logits[keep].float(), batch["labels"][keep], reduction="sum").item()
        count += int(keep.sum())
    model.train()
    return round(total / count, 4)


@torch.inference_mode()
def translate(model, tokenizer, sources: list[str], batch_size: int = speedrun_eval.BATCH_SIZE) -> list[str]:
    """Greedy, batches sorted by length, each capped at ``LENGTH_RATIO`` x its longest source + 8 tokens."""
    model.eval()
    encoded = [
        ids[: MAX_TOKENS - 1] + [tokenizer.eos_token_id]
        for ids in tokenizer(sources, add_special_tokens=False)["input_ids"]
    ]
    order = sorted(range(len(sources)), key=lambda i: -len(encoded[i]))
    out = [""] * len(sources)
    pad = tokenizer.pad_token_id
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        longest = max(len(encoded[i]) for i in index)
        input_ids = torch.full((len(index), longest), pad)
        for row, i in enumerate(index):
            input_ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
        cap = int(speedrun_eval.LENGTH_RATIO * (longest - 1)) + 8
        generated = model.generate(
            input_ids=input_ids,
            attention_mask=(input_ids != pad).long(),
            num_beams=1,
            do_sample=False,
            max_new_tokens=cap,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=pad,
            decoder_start_token_id=pad,
        )
        for row, i in enumerate(index):
            out[i] = tokenizer.decode(generated[row], skip_special_tokens=True).strip()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, required=True, help="CPU seconds of training")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train-file", default="data/sft.jsonl")
    parser.add_argument("--validation-file", default="data/sft.validation.jsonl")
    parser.add_argument("--validation-rows", type=int, default=600)
    parser.add_argument("--test-file", default="data/sft.test.jsonl")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1.5e-3)
    parser.add_argument("--scheduler", default="constant_with_warmup", help="as the speedrun's baseline")
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--schedule-steps", type=int, default=2200, help="length of a decaying schedule")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.1)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    set_seed(args.seed)
    tokenizer = load_tokenizer()
    train = encode(tokenizer, list(pairs(Path(args.train_file))))
    validation = encode(tokenizer, list(pairs(Path(args.validation_file)))[: args.validation_rows])
    model = MarianMTModel(anchor_config(tokenizer, args.dropout))
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = get_scheduler(
        args.scheduler,
        optimizer,
        num_warmup_steps=args.warmup_steps,
        num_training_steps=args.schedule_steps,
        scheduler_specific_kwargs={"min_lr_rate": 0.1} if "min_lr" in args.scheduler else None,
    )
    fractions = budget_fractions(args.fractions)
    pad = tokenizer.pad_token_id
    marks, done, step, tokens = [], set(), 0, 0
    model.train()
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for index in batches(train, args.batch_size, args.seed):
        batch = collate(train, index, pad)
        logits = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=model.prepare_decoder_input_ids_from_labels(labels=batch["labels"]),
        ).logits
        keep = batch["labels"] != -100
        loss = torch.nn.functional.cross_entropy(
            logits[keep], batch["labels"][keep], label_smoothing=args.label_smoothing
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += int(batch["attention_mask"].sum()) + int(keep.sum())
        spent = time.process_time() - start_cpu
        reached = [f for f in fractions if spent >= f * args.budget and f not in done]
        if reached:
            done.update(reached)
            marks.append(
                {
                    "fraction": reached[-1],
                    "step": step,
                    "cpu_s": round(spent, 2),
                    "wall_s": round(time.perf_counter() - start_wall, 2),
                    "tokens_seen": tokens,
                    "checkpoint": f"checkpoint-{step}",
                    "train_loss": round(loss.item(), 4),
                }
            )
            model.save_pretrained(args.out / marks[-1]["checkpoint"])
            print(json.dumps(marks[-1]), flush=True)
            if reached[-1] >= 1.0:
                break
    test = speedrun_eval.test_slice(args.test_file)
    checkpoints = []
    for mark in marks:
        model = MarianMTModel.from_pretrained(args.out / mark["checkpoint"])
        scores = speedrun_eval.score_translations(
            lambda sources, model=model: translate(model, tokenizer, sources), test
        )
        checkpoints.append({**mark, "val_loss": validation_loss(model, validation, pad), **scores})
        print(json.dumps({k: checkpoints[-1][k] for k in ("checkpoint", "chrf", "bleu", "val_loss")}), flush=True)
    (args.out / RESULT).write_text(
        json.dumps({"params": params, "steps": step, "checkpoints": checkpoints}, ensure_ascii=False, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
