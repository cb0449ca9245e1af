r"""The ``minimind`` command: generate, translate, train, eval, export, import, serve, push, tokenizer, info.

minimind generate out/sft "Translate to zh-TW:\nThe interest rate per period." --chat
minimind translate out/sft "The interest rate per period."
minimind train recipes/tiny/pretrain.yaml --max_steps 50
minimind eval out/sft out/dpo --test data/sample/sft.test.jsonl
minimind export out/sft --to llama out/sft-llama
minimind import stories42M.pt out/stories42m --tokenizer tokenizer.model
minimind export out/dpo out/dpo.gguf --to gguf --gguf-dtype f16
minimind serve out/dpo --port 8000
minimind push out/dpo --repo-id USER/minimind-dpo --base-model USER/minimind-sft
minimind tokenizer train data/pretrain.jsonl --output minimind_hf/tokenizer
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

import torch

from .utils.command_errors import DEBUG_ENV, DEBUG_FLAG, one_line_errors


def _load(path: str, dtype: str = "float32"):
    """Model and tokenizer of a checkpoint dir (a full model or a PEFT adapter, merged into its base)."""
    from .checkpoints import load_checkpoint

    loaded = load_checkpoint(path, dtype=dtype)
    return loaded.model, loaded.tokenizer


def _generation_kwargs(args: argparse.Namespace, tokenizer, temperature: float | None = None) -> dict:
    """``generate`` arguments: greedy at temperature 0.

    Top-k / top-p only when asked for (``0`` / ``1.0`` switch them off explicitly, so a library default cannot narrow
    plain temperature sampling).
    """
    from .tokenization import stop_token_ids

    temperature = args.temperature if temperature is None else temperature
    sample = temperature > 0
    kwargs = dict(
        max_new_tokens=args.max_new_tokens,
        do_sample=sample,
        repetition_penalty=args.repetition_penalty,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stop_token_ids(tokenizer),
    )
    if sample:
        kwargs.update(
            temperature=temperature,
            top_k=args.top_k if args.top_k is not None else 0,
            top_p=args.top_p if args.top_p is not None else 1.0,
        )
    return kwargs


def _settings(args: argparse.Namespace, temperature: float) -> dict:
    """What decided a generation, as written into its file."""
    settings = {
        "model": args.model,
        "temperature": temperature,
        "decoding": "sampling" if temperature > 0 else "greedy",
        "max_new_tokens": args.max_new_tokens,
        "repetition_penalty": args.repetition_penalty,
        "seed": args.seed,
        "chat": bool(args.chat or args.system),
    }
    if temperature > 0:
        settings.update(top_k=args.top_k, top_p=args.top_p)
    return settings


EMPTY_NOTE = "(empty: the model ended at once -- its first token was a stop token -- or produced only special tokens)"


def _stream(model, tokenizer, prompt_ids: torch.Tensor, gen_kwargs: dict) -> str:
    """Generate with tokens printed to stdout as they arrive; returns the full reply.

    An empty reply is said so on stderr, never left as a blank line.
    """
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    worker = threading.Thread(
        target=model.generate,
        kwargs=dict(input_ids=prompt_ids, attention_mask=torch.ones_like(prompt_ids), streamer=streamer, **gen_kwargs),
    )
    worker.start()
    pieces = []
    for piece in streamer:
        pieces.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()
    worker.join()
    sys.stdout.write("\n")
    text = "".join(pieces)
    if not text.strip():
        print(f"minimind: the generation is {EMPTY_NOTE}", file=sys.stderr)
    return text


def cmd_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .tokenization import chat_ids

    model, tokenizer = _load(args.model)
    if args.chat or args.system:
        messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
            {"role": "user", "content": args.prompt}
        ]
        ids = torch.tensor([chat_ids(tokenizer, messages)])  # text that spells a control token stays text
    else:
        ids = tokenizer(args.prompt, return_tensors="pt")["input_ids"]
    out_dir = Path(args.output_dir) if args.output_dir else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for temperature in args.temperature:
        if len(args.temperature) > 1:
            print(f"--- temperature {temperature:g} ---")
        torch.manual_seed(args.seed)  # each temperature from the same seed
        text = _stream(model, tokenizer, ids, _generation_kwargs(args, tokenizer, temperature))
        if out_dir is not None:
            path = out_dir / f"temperature_{temperature:g}.txt"
            settings = "\n".join(f"{key}: {value}" for key, value in _settings(args, temperature).items())
            empty = "" if text.strip() else f"generation: {EMPTY_NOTE}\n"
            path.write_text(
                f"prompt: {args.prompt}\n{settings}\n{empty}\n--- prompt + generation ---\n{args.prompt}{text}\n",
                encoding="utf-8",
            )
            print(f"wrote {path}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from .prompts import resolve_system_prompt, translation_messages
    from .tokenization import chat_ids

    model, tokenizer = _load(args.model)
    system = resolve_system_prompt("finance" if args.finance else None)
    sources = args.text or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for source in sources:
        messages = translation_messages(source, system=system)
        ids = torch.tensor([chat_ids(tokenizer, messages)])  # text that spells a control token stays text
        _stream(model, tokenizer, ids, _generation_kwargs(args, tokenizer))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if not args.recipe_args or args.recipe_args[0] in ("-h", "--help"):
        from .training.recipe_help import recipe_keys_help

        print(recipe_keys_help())
        return 0 if args.recipe_args else 2
    from .training.runner import main as train_main
    from .training.safety import exit_status

    return exit_status(train_main, args.recipe_args)


def cmd_export(args: argparse.Namespace) -> int:
    from .interop.llama import export_llama

    model, tokenizer = _load(args.model)
    if args.to == "gguf":
        from pathlib import Path

        from .interop.gguf import GGUFExportError, export_gguf

        output = Path(args.output)
        if output.is_dir() or not output.suffix:
            output = output / f"{Path(args.model).resolve().name}-{args.gguf_dtype}.gguf"
        try:
            out = export_gguf(model, tokenizer, output, dtype=args.gguf_dtype, name=Path(args.model).resolve().name)
        except GGUFExportError as err:
            raise SystemExit(f"minimind export: {args.model}: {err}") from err
        print(f"wrote a GGUF file ({args.gguf_dtype}) for llama.cpp / ollama to {out}")
        return 0
    if model.config.use_moe:
        raise SystemExit(
            f"minimind export: {args.model}: a MoE MiniMind has no Llama equivalent; "
            "only dense checkpoints export to Llama or GGUF"
        )
    out = export_llama(model, args.output, tokenizer)
    print(f"wrote a LlamaForCausalLM checkpoint to {out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .interop.importer import import_checkpoint

    config = json.loads(args.config) if args.config else None
    what, out = import_checkpoint(
        args.checkpoint, args.output, tokenizer=args.tokenizer, to=args.to, base=args.base, config=config
    )
    print(f"imported {what}: {out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .serving import serve
    except ImportError as err:
        raise SystemExit(f"minimind serve needs the serve extra (pip install 'minimind-hf[serve]'): {err}") from err
    serve(
        args.model,
        adapter=args.adapter,
        host=args.host,
        port=args.port,
        served_model_name=args.served_model_name,
        device=args.device,
        dtype=args.dtype,
        max_model_len=args.max_model_len,
        max_batch_size=args.max_batch_size,
        batch_wait_ms=args.batch_wait_ms,
    )
    return 0


def cmd_tokenizer_train(args: argparse.Namespace) -> int:
    from .tokenization import iter_jsonl_texts, save_tokenizer, train_tokenizer

    tokenizer = train_tokenizer(iter_jsonl_texts(args.files, max_chars=args.max_chars), vocab_size=args.vocab_size)
    save_tokenizer(tokenizer, args.output)
    print(f"saved a {len(tokenizer)}-token tokenizer to {args.output}")
    return 0


def cmd_tokenizer_report(args: argparse.Namespace) -> int:
    from .tokenization import load_tokenizer, tokens_per_char
    from .utils.jsonl import read_jsonl

    tokenizer = load_tokenizer(args.tokenizer)
    report = {}
    for name, path, field in (("en", args.parallel, "en"), ("zh-TW", args.parallel, "zh")):
        texts = [row[field] for _, row in read_jsonl(path)]
        report[name] = {
            "texts": len(texts),
            "chars": sum(map(len, texts)),
            "tokens_per_char": round(tokens_per_char(tokenizer, texts), 4),
        }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Config and parameter count of a model; for a PEFT adapter, its own settings and trainable parameters too."""
    from .checkpoints import load_checkpoint

    loaded = load_checkpoint(args.model, merge_adapter=False, dtype="float32")
    model = loaded.model
    info: dict = {}
    if loaded.kind == "peft-adapter":
        adapter = model.peft_config[model.active_adapter]
        info.update(
            kind="peft-adapter",
            base_model=loaded.base,
            adapter={
                "peft_type": str(adapter.peft_type.value),
                "r": adapter.r,
                "lora_alpha": adapter.lora_alpha,
                "target_modules": sorted(adapter.target_modules or []),
            },
            adapter_parameters=sum(p.numel() for n, p in model.named_parameters() if "lora_" in n),
        )
        model = model.get_base_model()
    config = model.config
    total = sum(p.numel() for p in model.parameters()) - info.get("adapter_parameters", 0)  # the base model's
    print(
        json.dumps(
            {"model_type": config.model_type, "parameters": total, **info, **config.to_diff_dict()},
            indent=2,
            default=str,
        )
    )
    return 0


def _add_sampling(parser: argparse.ArgumentParser, several_temperatures: bool = False) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=128)
    if several_temperatures:
        parser.add_argument(
            "--temperature",
            type=float,
            nargs="+",
            default=[0.0],
            help="0 = greedy; several values give one generation each (e.g. --temperature 0 0.5)",
        )
    else:
        parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=None, help="sample from the k most likely tokens (default: all)")
    parser.add_argument("--top-p", type=float, default=None, help="nucleus sampling (default: off)")
    parser.add_argument("--repetition-penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minimind", description="MiniMind on the Hugging Face stack")
    parser.add_argument(
        DEBUG_FLAG,
        action="store_true",
        help=f"show the traceback of an error (also: {DEBUG_ENV}=1); without it an error is one line",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="continue a prompt, streaming tokens")
    p.add_argument("model")
    p.add_argument("prompt")
    p.add_argument("--chat", action="store_true", help="wrap the prompt as a user turn (chat template)")
    p.add_argument("--system", default=None, help="a system turn (implies --chat)")
    p.add_argument(
        "--output-dir",
        default=None,
        help="also write each generation to DIR/temperature_<t>.txt with the prompt and settings",
    )
    _add_sampling(p, several_temperatures=True)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("translate", help="English -> zh-TW with the project's prompt (text args or stdin lines)")
    p.add_argument("model")
    p.add_argument("text", nargs="*")
    p.add_argument("--finance", action="store_true", help="add the finance system prompt")
    _add_sampling(p)
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser(
        "train", help="run a stage recipe (same as python -m minimind_hf.train); --help lists the keys", add_help=False
    )  # --help reaches cmd_train: the recipe keys, or with a recipe all of its stage's
    p.add_argument("recipe_args", nargs=argparse.REMAINDER, help="recipe.yaml [--field value ...]")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="write a checkpoint in another layout")
    p.add_argument("model")
    p.add_argument("output")
    p.add_argument(
        "--to",
        default="llama",
        choices=["llama", "gguf"],
        help="llama: a LlamaForCausalLM directory; gguf: one file for llama.cpp / ollama",
    )
    p.add_argument("--gguf-dtype", default="f16", choices=["f32", "f16"], help="weight type of a GGUF file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="write an original checkpoint (llama2.c .pt, MiniMind2/3 .pth, LoRA .pth) as HF")
    p.add_argument(
        "checkpoint", help="a llama2.c / course .pt, a MiniMind2 or MiniMind-3 .pth, or an original LoRA .pth"
    )
    p.add_argument("output")
    p.add_argument("--tokenizer", default=None, help="SentencePiece tokenizer.model or a tokenizer directory")
    p.add_argument("--to", default="minimind", choices=["minimind", "llama"])
    p.add_argument("--base", default=None, help="LoRA: the HF checkpoint the adapter belongs to")
    p.add_argument("--config", default=None, help="JSON of the original's config fields (default: from the file)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("serve", help="an OpenAI-compatible HTTP server with a translation page at /")
    p.add_argument("model", help="checkpoint directory (a full model)")
    p.add_argument("--adapter", default=None, help="a PEFT adapter merged on the model")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", default=None, help="the model id clients send (default: the directory name)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--max-model-len", type=int, default=None, help="context limit (default: the model's)")
    p.add_argument("--max-batch-size", type=int, default=8, help="requests sharing one generate call")
    p.add_argument("--batch-wait-ms", type=float, default=10.0, help="how long to gather requests into a batch")
    p.set_defaults(func=cmd_serve)

    from .hub.push import add_push_arguments, run_push_command

    p = sub.add_parser("push", help="push a model or adapter to the Hub with its model card")
    add_push_arguments(p)
    p.set_defaults(func=run_push_command)

    p = sub.add_parser("tokenizer", help="train or measure the tokenizer")
    tsub = p.add_subparsers(dest="tokenizer_command", required=True)
    t = tsub.add_parser("train", help="train a byte-level BPE on jsonl files")
    t.add_argument("files", nargs="+")
    t.add_argument("--output", required=True)
    t.add_argument("--vocab-size", type=int, default=6400)
    t.add_argument("--max-chars", type=int, default=None)
    t.set_defaults(func=cmd_tokenizer_train)
    t = tsub.add_parser("report", help="tokens per character on the en and zh sides of a parallel jsonl")
    t.add_argument("parallel")
    t.add_argument("--tokenizer", default=None)
    t.set_defaults(func=cmd_tokenizer_report)

    p = sub.add_parser("info", help="config and parameter count of a checkpoint")
    p.add_argument("model")
    p.set_defaults(func=cmd_info)

    try:
        from .evaluation import register_eval_command

        register_eval_command(sub)
    except ImportError as err:  # pragma: no cover - evaluation extras missing
        e = sub.add_parser("eval", help=f"unavailable: {err}")
        e.set_defaults(func=lambda _a, err=err: sys.exit(f"minimind eval is unavailable: {err}"))
    return parser


@one_line_errors("minimind")
def main(argv: list[str] | None = None) -> int:
    import minimind_hf  # noqa: F401  (registers the Auto classes)

    from .utils.options_file import expand_config

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["eval"]:  # `train` reads its recipe's --config itself (TRL's parser)
        argv = expand_config(argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "train":  # argparse keeps a leading option (`minimind train --help`) out of REMAINDER
        args.recipe_args = unknown + args.recipe_args
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
