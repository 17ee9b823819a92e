"""The PNG charts of RESULTS.md (matplotlib, Agg): one function per chart, each given the results and its path."""
from __future__ import annotations

from pathlib import Path
from typing import Any

CHARTS = {"latency_vs_size.png": "Latency (1 thread, p50) against file size, every timed TFLite bundle",
          "peer_ratios.png": "Peer time / our time, 1 thread (right of 1: the TFLite bundle is faster)",
          "fraction_of_peak.png": "Fraction of the machine's compute limit reached by invoke()",
          "browser.png": "Browser runtimes against native TFLite on the same model (p50, 1 thread)"}
MODE_ORDER = ("fp32", "fp16", "dynamic", "int8", "uint8")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_bars(fig, ax, path: Path) -> bool:
    """A horizontal bar chart's common end: first bar on top, laid out, written, closed."""
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return True


def _latency_vs_size(results: dict[str, Any], path: Path) -> bool:
    plt = _pyplot()
    colors = {m: plt.cm.tab10(i) for i, m in enumerate(sorted({r["model"] for r in results["artifacts_table"]}))}
    markers = {"fp32": "o", "fp16": "s", "dynamic": "^", "int8": "D", "uint8": "v"}
    fig, ax = plt.subplots(figsize=(8, 5.5))
    points = [r for r in results["artifacts_table"] if (r.get("timing") or {}).get("1", {}).get("p50_ms")]
    for r in points:
        ax.scatter(r["size_bytes"] / 1024, r["timing"]["1"]["p50_ms"], color=colors[r["model"]],
                   marker=markers.get(r["mode"], "o"), s=50, edgecolor="black" if r["framework"] == "torch" else "none")
    for m, c in colors.items():
        ax.scatter([], [], color=c, label=m)
    for mode, mk in markers.items():
        ax.scatter([], [], color="grey", marker=mk, label=mode)
    ax.set(xscale="log", yscale="log", xlabel="file size (KiB)", ylabel="p50 latency, 1 thread (ms)",
           title="TFLite bundles: latency vs size (black edge: torch route)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _peer_ratios(results: dict[str, Any], path: Path) -> bool:
    plt = _pyplot()
    ratios = [p for p in results["peers"] if p["threads"] == 1 and p["ratio"] and p["mode"] in ("fp32", "int8")]
    fig, ax = plt.subplots(figsize=(8, max(3, 0.28 * len(ratios) + 1)))
    labels = [f"{p['model']}/{p['framework']}: {p['peer']} / tflite {p['mode']}" for p in ratios]
    ax.barh(range(len(ratios)), [p["ratio"] for p in ratios],
            color=["tab:green" if p["ratio"] >= 1 else "tab:red" for p in ratios])
    ax.set_yticks(range(len(ratios)), labels, fontsize=7)
    ax.axvline(1, color="black", lw=1)
    if ratios:
        ax.set_xscale("log")
    ax.set(xlabel="peer p50 / our p50 (1 thread, log scale)", title="Peers vs TFLite bundles")
    return _save_bars(fig, ax, path)


def _fraction_of_peak(results: dict[str, Any], path: Path) -> bool:
    plt = _pyplot()
    big = [r for r in results["limit_rows"] if not r["tiny"] and r.get("fraction_of_limit") is not None]
    keys = sorted({(r["model"], r["framework"], r["mode"]) for r in big},
                  key=lambda k: (k[0], k[1], MODE_ORDER.index(k[2]) if k[2] in MODE_ORDER else 9))
    threads = sorted({r["threads"] for r in big})
    fig, ax = plt.subplots(figsize=(8, max(3, 0.3 * len(keys) + 1)))
    width = 0.8 / max(1, len(threads))
    for i, t in enumerate(threads):
        vals = [next((r["fraction_of_limit"] for r in big if (r["model"], r["framework"], r["mode"]) == k
                      and r["threads"] == t), 0) for k in keys]
        ax.barh([y + i * width for y in range(len(keys))], vals, height=width, label=f"{t} thread(s)")
    ax.set_yticks([y + width * (len(threads) - 1) / 2 for y in range(len(keys))], [" / ".join(k) for k in keys], fontsize=7)
    ax.set(xlabel="compute limit / measured invoke() time", title="Fraction of the measured peak reached")
    ax.axvline(1, color="black", lw=1)
    ax.legend(fontsize=8)
    return _save_bars(fig, ax, path)


def _browser(results: dict[str, Any], path: Path) -> bool:
    plt = _pyplot()
    b = [r for r in (results.get("browser") or {}).get("rows", []) if r.get("steady") and r["threads_requested"] == 1]
    if not b:
        return False
    native = {(r["model"], r["framework"], r["mode"]): (r.get("timing") or {}).get("1", {}).get("p50_ms")
              for r in results["artifacts_table"] if r["target"] == "tflite"}
    bars = [(f"{r['framework']} {r['mode']} {r['runtime_label']}", r["steady"]["p50_ms"]) for r in b]
    bars += [(f"{fw} {mode} native TFLite", v) for (m, fw, mode), v in sorted(native.items())
             if v and m in {r["model"] for r in b}]
    fig, ax = plt.subplots(figsize=(8, max(3, 0.3 * len(bars) + 1)))
    ax.barh(range(len(bars)), [v for _, v in bars],
            color=["tab:blue" if "native" in n else "tab:orange" for n, _ in bars])
    ax.set_yticks(range(len(bars)), [n for n, _ in bars], fontsize=7)
    ax.set(xscale="log", xlabel="p50 per run, ms (log scale)", title=f"Browser vs native: {', '.join(sorted({r['model'] for r in b}))}")
    return _save_bars(fig, ax, path)


PLOTS = {"latency_vs_size.png": _latency_vs_size, "peer_ratios.png": _peer_ratios,
         "fraction_of_peak.png": _fraction_of_peak, "browser.png": _browser}


def plot_charts(results: dict[str, Any], out: Path) -> list[str]:
    """Every chart that has data, written into `out`; returns the file names written."""
    return [name for name, plot in PLOTS.items() if plot(results, Path(out) / name)]
