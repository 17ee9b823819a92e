"""Collect training results under an artifacts folder into the README's table.

    python -m edgeproof.train.report artifacts-full            # Markdown table on stdout
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from edgeproof._registry import get_spec


def collect(artifacts: Path | str) -> list[dict]:
    rows = []
    for path in sorted(Path(artifacts).glob("*/*/training/metrics.json")):
        m = json.loads(path.read_text())
        rows.append(m)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | framework | profile | epochs | metric (test split) | quality bar | met | trainable params | "
             "train wall time (s) | reproduce |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        value = r["metric_value"]
        ev = r["evaluation"]
        detail = f"{r['metric']} {value:.4g}"
        if r["model"] == "linreg":
            detail += f" (w {ev['weight']:.3f} vs {ev['lstsq_weight']:.3f}, b {ev['bias']:.3f} vs {ev['lstsq_bias']:.3f})"
        if r["model"] == "mnist_gan":
            detail += f" ({len(ev['classes_present'])}/10 digits)"
        command = f"edgeproof train --model {r['model']} --framework {r['framework']} --profile {r['profile']}"
        if r["epochs"] != get_spec(r["model"]).profile(r["profile"]).epochs:  # run before the profile changed
            command += f" --epochs {r['epochs']}"
        command = f"`{command}`"
        lines.append(f"| {r['model']} | {r['framework']} | {r['profile']} | {r['epochs']} | {detail} | {r['quality_bar']} | "
                     f"{'yes' if r['quality_bar_met'] else '**no**'} | {r['trainable_params']:,} | "
                     f"{r['wall_time_s']:.0f} | {command} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(collect(sys.argv[1] if len(sys.argv) > 1 else "artifacts")))
