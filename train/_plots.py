"""Training-curve PNGs (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path


def training_curve(history: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in history[0] if k != "epoch"] if history else []
    loss_keys = [k for k in keys if "loss" in k]
    other = [k for k in keys if k not in loss_keys]
    fig, axes = plt.subplots(1, 2 if other else 1, figsize=(10 if other else 5.5, 3.8), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for k in loss_keys:
        axes[0][0].plot(epochs, [row[k] for row in history], label=k)
    axes[0][0].set_xlabel("epoch"), axes[0][0].set_ylabel("loss"), axes[0][0].legend()
    if len(epochs) > 50:
        axes[0][0].set_yscale("log")
    if other:
        for k in other:
            axes[0][1].plot(epochs, [row[k] for row in history], label=k, marker="o" if len(epochs) < 30 else None)
        axes[0][1].set_xlabel("epoch"), axes[0][1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
