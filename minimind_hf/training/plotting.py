"""Loss curves (and GRPO's reward curves) from a ``Trainer``'s log history, saved as PNG next to the model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def loss_points(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """``{"train": [(step, loss)], "validation": [(step, eval_loss)]}`` from ``trainer.state.log_history``."""
    points: dict[str, list[tuple[int, float]]] = {"train": [], "validation": []}
    for entry in log_history:
        step = entry.get("step")
        if step is None:
            continue
        if "loss" in entry and math.isfinite(entry["loss"]):
            points["train"].append((step, float(entry["loss"])))
        if "eval_loss" in entry and math.isfinite(entry["eval_loss"]):
            points["validation"].append((step, float(entry["eval_loss"])))
    return points


def plot_loss_curve(log_history: list[dict[str, Any]], path: str | Path, title: str = "loss") -> Path | None:
    """Training and validation loss against steps; returns the PNG path, or ``None`` with nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = loss_points(log_history)
    if not points["train"] and not points["validation"]:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for name, style in (("train", "-"), ("validation", "o-")):
        if points[name]:
            steps, losses = zip(*points[name], strict=True)
            ax.plot(steps, losses, style, label=f"{name} loss", markersize=4)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)" if "dpo" not in title.lower() else "DPO loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def reward_points(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """GRPO's logged rewards against steps.

    The weighted total (``reward``), each reward's mean (``rewards/<name>/mean``), and the validation reward
    (``eval_reward``) where it was measured.
    """
    points: dict[str, list[tuple[int, float]]] = {}
    for entry in log_history:
        step = entry.get("step")
        if step is None:
            continue
        for key, value in entry.items():
            name = key.removeprefix("rewards/").removesuffix("/mean") if key.startswith("rewards/") else key
            if (
                (key in ("reward", "eval_reward") or (key.startswith("rewards/") and key.endswith("/mean")))
                and isinstance(value, (int, float))
                and math.isfinite(value)
            ):
                points.setdefault(name, []).append((step, float(value)))
    return points


def plot_reward_curve(log_history: list[dict[str, Any]], path: str | Path, title: str = "reward") -> Path | None:
    """GRPO's rewards against steps (see :func:`reward_points`).

    Returns the PNG path, or ``None`` with nothing to plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = reward_points(log_history)
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for name, series in points.items():
        steps, values = zip(*series, strict=True)
        style = "o-" if name == "eval_reward" or len(series) == 1 else "-"
        ax.plot(steps, values, style, label=name, markersize=4, linewidth=2 if name == "reward" else 1)
    ax.set_xlabel("step")
    ax.set_ylabel("reward (mean over completions)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
