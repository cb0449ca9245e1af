"""Loss curves from a ``Trainer``'s log history, saved as PNG next to the model."""

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
