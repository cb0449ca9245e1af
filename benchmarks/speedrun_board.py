"""The speedrun leaderboard: ``leaderboard.jsonl`` (one row per run) -> ``leaderboard.md`` and a PNG per comparison.

``leaderboard.md`` lists every row, best chrF at the full budget first within each comparison, with its
scores at each budget fraction, validation loss, tokens seen, tokens per CPU second and the command that
made it. ``chrf_<comparison>.png`` draws chrF against CPU seconds for the rows of that comparison.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

from minimind_hf.utils.atomic_files import atomic_write_text
from minimind_hf.utils.jsonl import read_jsonl, write_jsonl

ROWS = "leaderboard.jsonl"


def read_rows(board: Path) -> list[dict[str, Any]]:
    path = board / ROWS
    if not path.exists():
        return []
    return [row for _, row in read_jsonl(path)]


def add_row(board: Path, row: dict[str, Any]) -> None:
    """Append ``row`` (a row of the same name is replaced) and rebuild the table and the plots.

    Runs finishing side by side take turns (a lock file next to the rows).
    """
    board.mkdir(parents=True, exist_ok=True)
    with open(board / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [r for r in read_rows(board) if r["name"] != row["name"]] + [row]
        write_jsonl(board / ROWS, rows)
        rebuild(board)


def _curve(row: dict[str, Any], key: str) -> str:
    return " / ".join("-" if c.get(key) is None else f"{c[key]:g}" for c in row["checkpoints"])


def _value(row: dict[str, Any], key: str) -> str:
    return "not scored" if row.get(key) is None else f"{row[key]:g}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| comparison | run | change | params | budget CPU s | chrF | BLEU | val loss | chrF at 1/4 / 1/2 / 1 "
        "| val loss at 1/4 / 1/2 / 1 | steps | tokens seen | tokens / CPU s | train wall s | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = sorted(rows, key=lambda r: (r.get("comparison") or "", -(r.get("chrf") or 0)))
    for r in order:
        params = f"{r['params'] / 1e6:.2f}M" if r.get("params") else "-"
        tps = f"{r['tokens_per_cpu_s']:,.0f}" if r.get("tokens_per_cpu_s") else "-"
        budget = "-" if r.get("budget_cpu_s") is None else f"{r['budget_cpu_s']:g}"
        lines.append(
            f"| {r.get('comparison', '')} | {r['name']} | {r.get('change', '')} | {params} | {budget} "
            f"| {_value(r, 'chrf')} | {_value(r, 'bleu')} | {_value(r, 'val_loss')} "
            f"| {_curve(r, 'chrf')} | {_curve(r, 'val_loss')} "
            f"| {r.get('steps', '-')} | {r.get('tokens_seen', 0):,} | {tps} | {r.get('train_wall_s', '-')} "
            f"| {r.get('commit', '')} |"
        )
    return "\n".join(lines)


def commands(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        out.append(f"- **{r['name']}** ({r.get('date', '')}, {r.get('device', '')}): `{r.get('command', '')}`")
        out.extend(f"  - `{c}`" for c in r.get("commands", []))
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        points = [(c["cpu_s"], c["chrf"]) for c in r["checkpoints"] if None not in (c.get("chrf"), c.get("cpu_s"))]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=r["name"])
    if not ax.get_lines():  # rows without a CPU-second axis (decoding rows of a trained model): no chart
        plt.close(fig)
        return None
    ax.set_xlabel("training CPU seconds (one thread)")
    ax.set_ylabel("chrF, 300 rows of the general test (greedy)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rebuild(board: Path) -> None:
    rows = read_rows(board)
    comparisons = sorted({r.get("comparison") or "levers" for r in rows})
    charts = [
        name
        for name in comparisons
        if plot(
            [r for r in rows if (r.get("comparison") or "levers") == name],
            board / f"chrf_{name}.png",
            f"speedrun: {name}",
        )
    ]
    text = (
        "# Speedrun leaderboard\n\nBuilt by `python benchmarks/speedrun.py board` from `leaderboard.jsonl`; "
        "see `benchmarks/speedrun.py` for the method. chrF / BLEU (sacrebleu, BLEU tokenize=zh): 300 rows spread "
        "over the own general test, greedy, batch 16; val loss: 600 validation chats (per labelled token); "
        "tokens seen: non-padding input tokens.\n\n"
        + table(rows)
        + "\n\n## Commands\n\n"
        + commands(rows)
        + "\n\n"
        + "".join(f"![{n}](chrf_{n}.png)\n" for n in charts)
    )
    atomic_write_text(board / "leaderboard.md", text)
