"""Shared by the benchmarks: the device and its load, the measured matmul rate, paired rounds, tables, JSON.

Only torch and the standard library are imported here, so a bare CUDA machine with torch and transformers
runs every benchmark.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


# stage-runner overrides for a measured run: no evaluation, no checkpoints, no best-model reload
NO_EVAL_NO_SAVE = ["--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"]


def pick_device(name: str) -> str:
    """``auto`` is CUDA where there is one, else the CPU; an explicit ``cuda`` without one is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")
    return name


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def device_info(device: str) -> dict[str, Any]:
    """What a table was measured on: device, threads, load, library versions, date."""
    import transformers

    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = (
            f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads, "
            f"{os.cpu_count()} cores"
        )
    return {
        "device": name,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": load_average(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def describe(info: dict[str, Any]) -> str:
    """The line a benchmark prints first: where and with what it ran."""
    return (
        f"device: {info['device']}; load average {info['load_average']}; torch {info['torch']}, "
        f"transformers {info['transformers']}; {info['date']}"
    )


def repo_path(path: str | Path) -> str:
    """A recipe path as a table shows it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def settle_arguments(
    args, quick: dict[str, Any], gpu: dict[str, Any], cpu: dict[str, Any], weights: bool = False
) -> tuple[str, dict[str, Any]]:
    """Settle the parsed arguments: device, size defaults, dtype and CPU threads.

    The defaults of the device's size (``quick`` with ``--quick``) fill every argument left unset; returns ``(device,
    device_info(device))``. An unset ``--dtype`` means what ``auto`` means to the project: the training precision
    (``minimind_hf.checkpoints.auto_precision``: bf16 where the device computes it natively), or with ``weights`` the
    dtype the loader gives a model's weights (bf16 on such a GPU, float32 on the CPU).
    """
    device = pick_device(args.device)
    defaults = quick if args.quick else gpu if device == "cuda" else cpu
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.dtype is None:
        from minimind_hf.checkpoints import auto_precision, resolve_dtype  # the callers import minimind_hf anyway

        bf16 = resolve_dtype("auto", device) == torch.bfloat16 if weights else auto_precision(device) == "bf16"
        args.dtype = "bf16" if bf16 else "fp32"
    if args.threads:
        torch.set_num_threads(args.threads)
    return device, device_info(device)


def matmul_tflops(device: str, dtype: torch.dtype, size: int | None = None, repeats: int = 10) -> float:
    """The device's own dense matmul rate (TFLOP/s), measured now: the roofline MFU is taken against."""
    size = size or (8192 if device == "cuda" else 1024)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(3):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best / 1e12


def interleaved(rows: dict[str, Callable[[], None]], rounds: int, steps: int, device: str) -> dict[str, list[float]]:
    """Seconds per call of each row, ``rounds`` samples each.

    Every round runs ``steps`` calls of every row, in an order rotated by one each round, so a change of machine load
    falls on all rows alike.
    """
    names = list(rows)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            synchronize(device)
            start = time.perf_counter()
            for _ in range(steps):
                rows[name]()
            synchronize(device)
            samples[name].append((time.perf_counter() - start) / steps)
    return samples


def paired_ratio(samples: dict[str, list[float]], name: str, baseline: str) -> float:
    """Median over rounds of ``time(baseline) / time(name)``: > 1 means ``name`` is faster."""
    return statistics.median(b / a for a, b in zip(samples[name], samples[baseline], strict=True))


def format_table(columns: Sequence[tuple[str, str]], records: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: ``columns`` are ``(key, header)``; floats get thousands separators."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(header for _, header in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(record.get(key)) for key, _ in columns) + " |" for record in records]
    return "\n".join(lines)


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")
