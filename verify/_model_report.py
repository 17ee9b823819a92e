"""report.md in a model's folder, beside parity.json, for every model (zoo or user's own): where it came
from, its tensors, how it reached TensorFlow, the verdict table; plus the outputs / errors plots."""
from __future__ import annotations

import json
from pathlib import Path

from edgeproof._atomic import write_bytes_atomic
from edgeproof._metrics import NO_LABELS
from edgeproof.convert import Source
from edgeproof.convert._records import read_about

from ._api import ModelVerification, load_verdicts
from . import _attribution
from ._attribution import TOP
from ._plots import attribution_bars, error_distribution, outputs_scatter
from ._report import markdown

REPORT_MD = "report.md"


def _header(source: Source, verification: ModelVerification) -> list[str]:
    contract, ref, about = source.contract, verification.reference, source.describe()
    where = about.get("path") or about.get("checkpoint") or "?"
    lines = [f"# {contract.name} ({source.framework}): conversion and parity report", "",
             f"Source: {source.kind.value} model `{where}`; judged on {ref.test_examples} examples "
             f"({ref.profile} data).", ""]
    if ref.evaluation.get("parity") == NO_LABELS:
        lines += [f"**Verdict basis: {NO_LABELS}.** The sample data has no `labels` array, so every artifact is "
                  f"judged by its outputs against the source model's (max abs error, cosine) only.", ""]
    else:
        lines += [f"Metric: {ref.metric} of the first output; the source model scores {ref.value:.4g}.", ""]
    lines += ["Inputs: " + ", ".join(f"`{t.name}` {list(t.shape)} {t.dtype} {t.layout.value}" for t in contract.inputs),
              "", "Outputs: " + ", ".join(f"`{t.name}` {list(t.shape)} {t.dtype}" for t in contract.outputs), ""]
    return lines


def _attribution_section(root: Path, source: Source) -> list[str]:
    """The top offenders of every 8-bit artifact (attribution/*.json written by `edgeproof repair`), with a plot,
    and what the repair ladder tried."""
    lines = []
    for path in sorted((root / _attribution.ATTRIBUTION_DIR).glob("*.json")):
        data = json.loads(path.read_text())
        layers, weights = data.get("layers"), data.get("weights")
        ranked_by = next((k for k in ("relative_error", "output_error") if layers and k in layers[0]), "rmse_per_scale")
        rows = [(r["source"], r[ranked_by]) for r in layers[:TOP]] if layers else \
            [(_attribution.weight_name(r["tensor"]), r["rms_per_spread"]) for r in (weights or [])[:TOP]]
        measure = {"relative_error": "RMS error / typical |value|", "rmse_per_scale": "RMSE / quantization scale",
                   "output_error": "output RMS error with this layer alone at 8 bits / typical |output|"}[
            ranked_by] if layers else "weight RMS error / weight spread"
        split = data.get("split", {})
        lines += [f"## Where {data['cell']} loses accuracy", "",
                  f"Max error on the probes already in the fp32 conversion: {split.get('fp32_conversion')}; added by "
                  f"quantization: {split.get('added_by_quantization')}.", "",
                  f"| layer | {measure} |", "|---|---|"] + [f"| {n} | {v:.3g} |" for n, v in rows] + [""]
        if rows:
            png = attribution_bars(f"{source.name} ({source.framework}) {data['cell']}", rows, measure,
                                   root / "verification" / f"attribution-{path.stem}.png")
            lines += [f"![attribution]({png.relative_to(root).as_posix()})", ""]
    repair = root / "repair.json"
    if repair.is_file():
        for outcome in json.loads(repair.read_text()):
            tried = "; ".join(f"{t.get('cell')}: {t.get('verdict')}" for t in outcome.get("tried") or []) or "nothing"
            chosen = outcome.get("chosen")
            lines += [f"Repair of {outcome.get('cell')}: {outcome.get('status')}" + (f" -> {chosen}" if chosen else "")
                      + f" (tried: {tried}).", ""]
            if outcome.get("browsers"):
                lines += ["In the browser: " + "; ".join(f"{rt}: {v}" for rt, v in outcome["browsers"].items()) + ".", ""]
            speed = outcome.get("speed") or {}
            if speed.get("median_ms"):
                lines += ["Speed, one thread, interleaved in one run (median ms): " + ", ".join(
                    f"{c} {ms:.3g}" for c, ms in speed["median_ms"].items())
                          + ("" if speed.get("faster_than_fp32") else f". Not faster than fp32: {speed.get('why')}."), ""]
    return lines


def write_model_report(root: Path, source: Source, verification: ModelVerification) -> Path:
    """Every verdict in parity.json (not only this run's) in root/report.md; plots under root/verification/."""
    root = Path(root)
    lines = _header(source, verification)
    backend = read_about(root).get("onnx_backend")
    if backend:
        lines.append(f"ONNX -> TensorFlow: **{backend['used']}** worked. Attempts: " + "; ".join(
            f"{a['backend']}: " + ("ok" if a["ok"] else f"failed ({a['error']})") for a in backend["attempts"]))
        lines.append("")
    for note in getattr(getattr(source, "info", None), "casts", []):
        lines.append(f"- {note}")
    verdicts = load_verdicts(root)[1] or verification.verdicts
    lines += ["", markdown([(vars(verification.reference), verdicts)]).split("\n\nKeras vs PyTorch")[0], ""]
    lines += _attribution_section(root, source)
    write_bytes_atomic(root / REPORT_MD, "\n".join(lines).encode())
    if verification.probe_outputs:
        folder = root / "verification"
        folder.mkdir(exist_ok=True)
        title = f"{source.name} ({source.framework})"
        outputs_scatter(title, verification.probe_outputs, folder / "outputs.png")
        error_distribution(title, verification.probe_outputs, folder / "errors.png")
    return root / REPORT_MD
