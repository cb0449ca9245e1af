"""What batching buys the server: N greedy chat requests one after another, then all at once.

    python benchmarks/serve_throughput.py --model out/sft --requests 8 --max-tokens 32
    python benchmarks/serve_throughput.py --preset mini

Starts the server in-process on 127.0.0.1 (a free port), sends the requests with the official ``openai``
client and prints the wall time, completion tokens per second and the batch sizes the engine ran, for both
ways; the answers of both ways are checked to be identical.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minimind_hf  # noqa: E402,F401


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint directory (default: an untrained --preset)")
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=8)
    args = parser.parse_args(argv)

    import openai
    import uvicorn

    from minimind_hf import MiniMindConfig, MiniMindForCausalLM
    from minimind_hf.checkpoints import load_checkpoint
    from minimind_hf.prompts import translation_messages
    from minimind_hf.serving import ServedModel, create_app
    from minimind_hf.tokenization import load_tokenizer
    from minimind_hf.utils.jsonl import read_jsonl

    if args.model:
        loaded = load_checkpoint(args.model, dtype="float32", device="cpu")
        model, tokenizer, label = loaded.model, loaded.tokenizer, args.model
    else:
        torch.manual_seed(0)
        model = MiniMindForCausalLM(MiniMindConfig.from_preset(args.preset, initializer_range=0.1)).eval()
        tokenizer, label = load_tokenizer(), f"{args.preset} (untrained)"
    served = ServedModel(model, tokenizer, "bench", max_batch_size=args.max_batch_size, batch_wait_s=0.01)
    server = uvicorn.Server(uvicorn.Config(create_app(served), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=600)
    test = Path(__file__).resolve().parents[1] / "data" / "sample" / "sft.test.jsonl"
    sources = [row["en"] for _, row in read_jsonl(test)][: args.requests]

    def ask(source: str):
        return client.chat.completions.create(
            model="bench", messages=translation_messages(source), temperature=0, max_tokens=args.max_tokens
        )

    ask(sources[0])  # warm-up
    rows = []
    for way in ("one at a time", "all at once"):
        before = len(served.engine.batch_sizes)
        start = time.perf_counter()
        if way == "one at a time":
            replies = [ask(s) for s in sources]
        else:
            with ThreadPoolExecutor(len(sources)) as pool:
                replies = list(pool.map(ask, sources))
        seconds = time.perf_counter() - start
        tokens = sum(r.usage.completion_tokens for r in replies)
        rows.append(
            (way, seconds, tokens, served.engine.batch_sizes[before:], [r.choices[0].message.content for r in replies])
        )
    server.should_exit = True
    served.close()
    print(
        f"{label}, {len(sources)} greedy requests of up to {args.max_tokens} tokens, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}\n"
    )
    print("| requests | wall | completion tokens / s | batch sizes |\n|---|---:|---:|---|")
    for way, seconds, tokens, sizes, _ in rows:
        print(f"| {way} | {seconds:.2f} s | {tokens / seconds:.0f} | {', '.join(map(str, sizes))} |")
    same = rows[0][4] == rows[1][4]
    print(f"\nidentical answers both ways: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
