"""The parity report: every verdict under an artifacts folder as JSON, Markdown and HTML, plus plots.

    python -m edgeproof.verify artifacts      # rewrite the report from the parity.json files (__main__.py)
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Optional

from edgeproof._atomic import write_bytes_atomic

from ._verdict import ArtifactVerdict, Status

LEGEND = [
    ("artifact", "target/precision: tflite fp32, fp16, dynamic (int8 weights, float activations), int8 "
                 "(full integer, calibrated); tfjs fp32, fp16, uint8 (8-bit weights)"),
    ("runtime", "where the artifact was run: the TFLite interpreter (ai-edge-litert), or real TF.js under Node"),
    ("metric", "the task metric of the artifact on the whole test split (accuracy %, MSE, BLEU, GAN: % of samples "
               "the project's mnist_cnn classifies with confidence >= 0.9)"),
    ("delta", "artifact metric minus reference metric (the source model on the same data), with its 95 % "
              "paired-bootstrap interval; a verdict is inconclusive when the budget lies inside it"),
    ("max err / cosine", "max absolute error and cosine similarity of the outputs on the spec's fixed probe inputs"),
    ("agree", "share of test examples where the artifact's decision (class, sentiment) equals the reference's"),
    ("latency", "median of 20 batch-1 inferences after 3 warm-up runs, in the artifact's runtime"),
    ("verdict", "pass: within every budget of the ModelSpec; fail: the budget broken, measured vs limit; "
                "unsupported: the converter refused the mode, with its reason"),
]


def collect(artifacts: Path | str) -> list[tuple[dict, list[ArtifactVerdict]]]:
    out = []
    for path in sorted(Path(artifacts).glob("*/*/parity.json")):
        payload = json.loads(path.read_text())
        out.append((payload["reference"], [ArtifactVerdict.from_dict(v) for v in payload["artifacts"]]))
    return out


def _fmt(value: Optional[float], spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _delta(v: ArtifactVerdict) -> str:
    """The metric's change, artifact minus reference, with the 95 % interval of the change when measured."""
    if v.artifact_metric is None or v.reference_metric is None:
        return "-"
    text = f"{v.artifact_metric - v.reference_metric:+.3g}"
    stats = v.details.get("metric_stats")
    if stats:  # the interval is of the drop (positive = worse): the change is its negation
        text += f" [{-stats['high']:+.3g}, {-stats['low']:+.3g}]"
    return text


def _row(v: ArtifactVerdict) -> list[str]:
    size = "-" if v.size_bytes is None else f"{v.size_bytes / 1024:.0f} KiB"
    return [v.model, v.framework, v.cell.replace("/", " ", 1), v.route, v.runtime or "-", size,
            f"{v.metric} {_fmt(v.artifact_metric)}" if v.artifact_metric is not None else
            v.details.get("parity", "-"),  # a user model without labels: "numeric parity only: no labels"
            _delta(v), _fmt(v.probe.get("max_abs_error"), ".2g"),
            _fmt(v.probe.get("cosine"), ".6f"), _fmt(v.test_agreement, ".4f"),
            "-" if v.latency_ms is None else f"{v.latency_ms:.3g} ms", v.summary()]


HEADER = ["model", "framework", "artifact", "route", "runtime", "size", "metric", "delta", "max err", "cosine",
          "agree", "latency", "verdict"]


def markdown(collected) -> str:
    lines = ["Legend: " + "; ".join(f"**{k}**: {d}" for k, d in LEGEND), "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for _, verdicts in collected:
        for v in verdicts:
            cells = _row(v)
            if v.status in (Status.FAIL, Status.INCONCLUSIVE):
                cells[-1] = f"**{cells[-1]}**"
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += ["", side_by_side_markdown(collected)]
    return "\n".join(lines)


def side_by_side(collected) -> dict[str, dict[str, dict[str, Optional[float]]]]:
    """model -> column (reference, tflite fp32, ...) -> framework -> metric."""
    table: dict[str, dict[str, dict[str, Optional[float]]]] = {}
    for reference, verdicts in collected:
        cols = table.setdefault(reference["model"], {})
        cols.setdefault("reference", {})[reference["framework"]] = reference["value"]
        for v in verdicts:
            cols.setdefault(v.cell.replace("/", " ", 1), {})[v.framework] = v.artifact_metric
    return table


def side_by_side_markdown(collected) -> str:
    table = side_by_side(collected)
    columns = []
    for cols in table.values():
        columns += [c for c in cols if c not in columns]
    lines = ["Keras vs PyTorch, task metric on the same test split (Keras / PyTorch):", "",
             "| model | metric | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    metrics = {ref["model"]: ref["metric"] for ref, _ in collected}
    for model, cols in table.items():
        cells = []
        for c in columns:
            by_fw = cols.get(c, {})
            cells.append(" / ".join(_fmt(by_fw.get(f)) for f in ("keras", "torch")))
        lines.append(f"| {model} | {metrics[model]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]], classes: Optional[list[str]] = None) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return "\n".join(out + ["</tbody></table>"])


def html_report(collected, images: list[str]) -> str:
    rows, classes = [], []
    for _, verdicts in collected:
        for v in verdicts:
            rows.append(_row(v))
            classes.append(v.status.value)
    counts = {s: classes.count(s.value) for s in Status}
    legend = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(d)}</dd>" for k, d in LEGEND)
    table = side_by_side(collected)
    columns: list[str] = []
    for cols in table.values():
        columns += [c for c in cols if c not in columns]
    sbs_rows = [[model] + [" / ".join(_fmt(cols.get(c, {}).get(f)) for f in ("keras", "torch")) for c in columns]
                for model, cols in table.items()]
    figures = "".join(f'<figure><img src="{html.escape(p)}" alt="{html.escape(p)}"><figcaption>{html.escape(p)}'
                      f"</figcaption></figure>" for p in images)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgeproof parity report</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; }}
th {{ background: #f0f0f0; }} tr.pass td:last-child {{ color: #176317; }} tr.fail td {{ background: #fde8e8; }}
tr.unsupported td {{ color: #777; }} tr.inconclusive td {{ background: #fff6dd; }} dt {{ font-weight: bold; float: left; clear: left; width: 9em; }}
dd {{ margin-left: 10em; }} img {{ max-width: 100%; border: 1px solid #ddd; }} figure {{ margin: 1em 0; }}
</style></head><body>
<h1>edgeproof parity report</h1>
<p>{counts[Status.PASS]} pass, {counts[Status.FAIL]} fail, {counts[Status.INCONCLUSIVE]} inconclusive,
{counts[Status.UNSUPPORTED]} unsupported.
Every artifact was run in its own runtime and compared with its source model.</p>
<h2>Legend</h2><dl>{legend}</dl>
<h2>Verdicts</h2>
{_html_table(HEADER, rows, classes)}
<h2>Keras vs PyTorch (task metric, Keras / PyTorch)</h2>
{_html_table(["model"] + columns, sbs_rows)}
<h2>Plots</h2>{figures}
</body></html>
"""


def write_report(artifacts: Path | str) -> dict[str, Path]:
    """parity_report.{json,md,html} and metric_vs_size.png in `artifacts`, from every parity.json in it."""
    from ._plots import metric_vs_size

    artifacts = Path(artifacts)
    collected = collect(artifacts)
    if not collected:
        raise FileNotFoundError(f"no parity.json under {artifacts}: run `edgeproof verify` first")
    paths = {"json": artifacts / "parity_report.json", "md": artifacts / "parity_report.md",
             "html": artifacts / "parity_report.html", "png": artifacts / "metric_vs_size.png"}
    metric_vs_size(collected, paths["png"])
    images = [paths["png"].name] + sorted(str(p.relative_to(artifacts))
                                          for p in artifacts.glob("*/*/verification/*.png"))
    payload = [{"reference": ref, "artifacts": [v.to_dict() for v in verdicts]} for ref, verdicts in collected]
    write_bytes_atomic(paths["json"], json.dumps(payload, indent=2).encode())
    write_bytes_atomic(paths["md"], markdown(collected).encode())
    write_bytes_atomic(paths["html"], html_report(collected, images).encode())
    return paths
