"""Parity plots (matplotlib, Agg): reference vs artifact outputs, error distributions, metric vs size."""
from __future__ import annotations

from pathlib import Path

import numpy as np

PRECISION_MARKERS = {"fp32": "o", "fp16": "s", "dynamic": "D", "int8": "v", "uint8": "^"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def outputs_scatter(title: str, probe_outputs: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """One panel per artifact: reference output (x) against the artifact's output (y) on the probes."""
    plt = _pyplot()
    keys = list(probe_outputs)
    cols = min(4, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        ref, art = (np.asarray(a, dtype=np.float64).ravel() for a in probe_outputs[key])
        if ref.size > 20000:  # the translator's logits: a fixed subsample keeps the plot light
            idx = np.random.default_rng(0).choice(ref.size, 20000, replace=False)
            ref, art = ref[idx], art[idx]
        ax.scatter(ref, art, s=3, alpha=0.4)
        lo, hi = float(min(ref.min(), art.min())), float(max(ref.max(), art.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("reference"), ax.set_ylabel("artifact")
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    fig.suptitle(f"{title}: outputs on the probe inputs")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def error_distribution(title: str, probe_outputs: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Histogram of |reference - artifact| per artifact (log x), the quantized ones stand out."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, (ref, art) in probe_outputs.items():
        err = np.abs(np.asarray(ref, np.float64) - np.asarray(art, np.float64)).ravel()
        err = np.clip(err, 1e-9, None)
        ax.hist(err, bins=np.logspace(-9, 1, 60), histtype="step", lw=1.5 if "int8" in key else 1, label=key)
    ax.set_xscale("log")
    ax.set_xlabel("absolute error (clipped at 1e-9)"), ax.set_ylabel("count")
    ax.legend(fontsize=7)
    ax.set_title(f"{title}: error distribution on the probes")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def metric_vs_size(collected, path: Path) -> Path:
    """One panel per model: task metric against artifact size, a marker per precision, a colour per route."""
    plt = _pyplot()
    models = sorted({ref["model"] for ref, _ in collected})
    cols = min(3, len(models))
    rows = -(-len(models) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.4 * rows), squeeze=False)
    colors = {("keras", "tflite"): "tab:blue", ("keras", "tfjs"): "tab:cyan",
              ("torch", "tflite"): "tab:red", ("torch", "tfjs"): "tab:orange"}
    for ax, model in zip(axes.ravel(), models):
        for ref, verdicts in collected:
            if ref["model"] != model:
                continue
            if ref["value"] is not None:  # None: a user model without labels (numeric parity only)
                ax.axhline(ref["value"], color="tab:blue" if ref["framework"] == "keras" else "tab:red", lw=0.7, ls="--")
            for v in verdicts:
                if v.artifact_metric is None or v.size_bytes is None:
                    continue
                ax.scatter(v.size_bytes / 1024, v.artifact_metric, marker=PRECISION_MARKERS.get(v.mode, "o"),
                           color=colors.get((v.framework, v.target), "k"),
                           edgecolors="black" if v.status.value == "fail" else "none",
                           label=f"{v.framework} {v.target} {v.mode}")
            ax.set_ylabel(ref["metric"])
        ax.set_xscale("log")
        ax.set_xlabel("size (KiB)")
        ax.set_title(model)
    for ax in axes.ravel()[len(models):]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h), labels.append(lab)
    fig.legend(handles, labels, fontsize=7, loc="lower right", ncol=2)
    fig.suptitle("task metric vs size (dashed: the reference model; blue Keras, red PyTorch)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def attribution_bars(title: str, rows: list[tuple[str, float]], measure: str, path: Path) -> Path:
    """Horizontal bars of the worst layers (or weight tensors) of an 8-bit artifact, worst at the top."""
    plt = _pyplot()
    names, values = [r[0][:48] for r in rows][::-1], [r[1] for r in rows][::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(rows) + 1.2))
    ax.barh(range(len(values)), values, color="#c0504d")
    ax.set_yticks(range(len(values)), names, fontsize=8)
    ax.set_xlabel(measure)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
