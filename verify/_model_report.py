"""report.md in a model's folder, beside parity.json, for every model (zoo or user's own): where it came
from, its tensors, how it reached TensorFlow, the verdict table; plus the outputs / errors plots."""
from __future__ import annotations

from pathlib import Path

from edgeproof._atomic import write_bytes_atomic
from edgeproof._metrics import NO_LABELS
from edgeproof.convert import Source
from edgeproof.convert._records import read_about

from ._api import ModelVerification, load_verdicts
from ._plots import error_distribution, outputs_scatter
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
    write_bytes_atomic(root / REPORT_MD, "\n".join(lines).encode())
    if verification.probe_outputs:
        folder = root / "verification"
        folder.mkdir(exist_ok=True)
        title = f"{source.name} ({source.framework})"
        outputs_scatter(title, verification.probe_outputs, folder / "outputs.png")
        error_distribution(title, verification.probe_outputs, folder / "errors.png")
    return root / REPORT_MD
