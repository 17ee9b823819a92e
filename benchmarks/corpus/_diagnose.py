"""Why corpus cells fail: every non-passing cell of DIR/corpus.json put in one cause category (by the exact error text
the pipeline recorded, and for budget failures by the measured errors against the output's scale and the source's
noise floor from DIR/noise.json), with counts and the exact messages. `python -m benchmarks.corpus._diagnose --out
DIR` writes DIR/diagnosis.json and prints the Markdown that benchmarks/corpus/DIAGNOSIS.md quotes."""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional, Sequence

# (category, pattern over the reason text), first match wins; the "no artifact" reasons hold both backends' errors
# and are split into the onnx2tf part and the onnx-tf part before matching.
PIPELINE_CATEGORIES = [
    ("timeout", r"timed out"),
    ("build failed", r"^build failed"),
    ("the verifying process died (SIGABRT: exit code -6)", r"exit code -6"),
    ("the worker process crashed", r"worker crashed"),
    ("pipeline: the torch export names an output like an input (ONNX SSA violation)",
     r"single static assignment"),
]
ONNX2TF_CATEGORIES = [
    ("node/tensor names TF rejects ('@', non-ASCII)", r"not a valid scope name|OP name does not match"),
    ("onnx2tf downloads calibration data from GitHub (offline: ConnectionError)", r"ConnectionError|github\.com"),
    ("unknown rank after a dynamic-shape op", r"unknown rank"),
    ("a graph output is a constant (Functional-model output is not a Layer output)",
     r"Output tensors of a Functional model"),
    ("broadcast mismatch: NCHW->NHWC transposition applied to a non-image tensor", r"Dimensions must be equal"),
    ("rank mismatch after a layout transposition (Concat of 3-D tensors)", r"Shape must be rank"),
    ("ConvTranspose with a dynamic batch (symbolic output_shape)", r"input_sizes"),
    ("symbolic dimension used as a value (Reshape/Squeeze of dynamic dims)",
     r"mixed types|partially known TensorShape|Can not squeeze|NoneType"),
    ("ReduceL2 / LpNormalization axis (F.normalize) mistranslated", r"'axis' must be None"),
    ("a graph-surgeon Variable where a constant is needed (GroupNorm/LayerNorm constants)",
     r"Attempt to convert a value \(Variable"),
    ("other onnx2tf error", r".*"),
]
ONNX_TF_CATEGORIES = [
    ("opset > 15 cannot be converted down", r"opset <= 15|No Previous Version"),
    ("op version not implemented", r"version \d+ is not implemented"),
    ("other onnx-tf error", r".*"),
]
CELL_CATEGORIES = [
    ("TFLite: a recurrent loop's tensor-list ops need Select TF ops (Flex)", r"tensor list ops"),
    ("TFLite needs Select TF ops (Flex)", r"Select TF ops|TF Select ops|Flex|SELECT_TF_OPS"),
    ("TF.js converter: an op with no TF.js kernel", r"Unsupported Ops in the model"),
    ("XNNPACK delegate refusal reported as an invalid model", r"XNNPACK"),
    ("TF.js converter error", r"tfjs|tensorflowjs|TF\.js"),
    ("int8/uint8 quantization unsupported for an op", r"quantiz|int8"),
]
RUNTIME_CATEGORIES = [  # a "fail" with no budget failure: the artifact did not run in its runtime
    ("runtime: TF.js WebAssembly 'memory access out of bounds'", r"memory access out of bounds"),
    ("runtime: TF.js kernel dtype mismatch", r"must have the same dtype|dtype"),
    ("runtime: TF.js conv2d channel mismatch (a grouped/depthwise conv mistranslated for TF.js)",
     r"depth of input .* must match input depth"),
    ("runtime: XNNPACK delegate refusal reported as an invalid model", r"XNNPACK"),
    ("runtime: other", r".*"),
]
# A max-error failure within this factor of the source's own noise floor (the same source run two ways) is float
# noise; the factor allows for the artifact's different kernels (fused ops, other accumulation order).
NOISE_FACTOR = 10.0


def _match(text: str, table) -> str:
    for category, pattern in table:
        if re.search(pattern, text, re.IGNORECASE):
            return category
    return "other"


def _no_artifact_category(reason: str) -> str:
    """The pipeline's categories first; else each backend attempt's cause (`onnx2tf: A + onnx-tf: B`)."""
    for category, pattern in PIPELINE_CATEGORIES:
        if re.search(pattern, reason):
            return category
    if "no ONNX backend could convert" not in reason:
        return "conversion raised: " + reason.split(":")[0]
    parts = []
    for backend, text in re.findall(r"(onnx2tf|onnx-tf)(?: \(batch[^)]*\))?: (.*?)(?=; onnx2tf|; onnx-tf|$)", reason):
        table = ONNX2TF_CATEGORIES if backend == "onnx2tf" else ONNX_TF_CATEGORIES
        part = f"{backend}: {_match(text, table)}"
        if part not in parts:
            parts.append(part)
    return "no backend converts: " + " + ".join(parts)


def _failure_category(cell: str, info: dict, scale: Optional[float], floor: Optional[float]) -> str:
    measures = {str(f.get("measure", "")).split(": ")[-1] for f in info.get("failures") or []}
    err, cos = info.get("max_abs_error"), info.get("cosine")
    eight_bit = cell in ("tflite/dynamic", "tflite/int8", "tfjs/uint8")
    if not measures:
        return _match(info.get("reason") or "", RUNTIME_CATEGORIES)
    if any("non-finite" in m for m in measures):
        return "non-finite outputs"
    only_max = all(m.startswith("max_abs_error") for m in measures)
    if eight_bit:
        if cos is not None and cos < 0.9:
            return "8-bit genuinely broken (cosine < 0.9)"
        if only_max:
            return "8-bit: max error over the absolute budget, cosine within budget (a scale question)"
        return "8-bit: outside budget (cosine / agreement / metric)"
    if only_max and err is not None:
        if floor is not None and err <= NOISE_FACTOR * floor:
            return f"float noise: fp32/fp16 max error within {NOISE_FACTOR:.0f}x the source's own noise floor"
        if scale and err / scale < 1e-3:
            return ("fp32/fp16 max error < 1e-3 of the output's scale but above "
                    f"{NOISE_FACTOR:.0f}x the noise floor (an approximation, e.g. a rewritten op)")
        return "fp32/fp16 max error large relative to the output (a real difference)"
    return "fp32/fp16: cosine / agreement / metric outside budget"


def diagnose(corpus: dict, noise: dict) -> dict[str, Any]:
    categories: dict[str, list[dict]] = defaultdict(list)
    for row in corpus["models"]:
        scale = row.get("output_max_abs")
        floor_info = noise.get(row["name"], {})
        floor = max([v for k, v in floor_info.items() if k in ("ort_disable_vs_enable_all", "float32_vs_float64",
                                                              "batch1_vs_batchN") and isinstance(v, float)],
                    default=None)
        for cell, info in row["cells"].items():
            status, reason = info["status"], info.get("reason") or ""
            if status == "pass":
                continue
            if status == "no artifact":
                reason = row.get("error") or reason
                category = _no_artifact_category(reason)
            elif status == "unsupported":
                category = "unsupported: " + _match(reason, CELL_CATEGORIES)
                ops = (re.search(r"TF Select ops: (\w+(?:, \w+)*)", reason)
                       or re.search(r"Unsupported Ops in the model before optimization (\w+(?:, \w+)*)", reason))
                if ops:
                    category += f": {ops.group(1).strip()}"
            else:
                category = _failure_category(cell, info, scale, floor)
            categories[category].append({"model": row["name"], "cell": cell, "status": status, "reason": reason,
                                         "max_abs_error": info.get("max_abs_error"), "cosine": info.get("cosine"),
                                         "output_max_abs": scale, "noise": floor_info})
    return {k: v for k, v in sorted(categories.items(), key=lambda kv: -len(kv[1]))}


def _fmt(x: Any) -> str:
    return "-" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


def markdown(diagnosis: dict[str, list[dict]]) -> str:
    total = sum(len(v) for v in diagnosis.values())
    lines = [f"{total} cells did not pass.", "", "| cause | cells | models |", "|---|---|---|"]
    for category, items in diagnosis.items():
        models = sorted({i["model"] for i in items})
        lines.append(f"| {category} | {len(items)} | {', '.join(models)} |")
    for category, items in diagnosis.items():
        lines += ["", f"### {category} ({len(items)} cells)", ""]
        by_model: dict[str, list[dict]] = defaultdict(list)
        for i in items:
            by_model[i["model"]].append(i)
        for model, cells in by_model.items():
            n = cells[0]["noise"] or {}
            floor = ", ".join(f"{k} {_fmt(v)}" for k, v in n.items()
                              if k in ("ort_disable_vs_enable_all", "float32_vs_float64", "batch1_vs_batchN"))
            errs = "; ".join(f"{c['cell']} max err {_fmt(c['max_abs_error'])}, cos {_fmt(c['cosine'])}"
                             for c in cells if c["max_abs_error"] is not None)
            lines.append(f"- `{model}` ({', '.join(c['cell'] for c in cells)}): {cells[0]['reason'][:600]}"
                         + (f" -- measured: {errs}" if errs else "")
                         + (f"; output max |value| {_fmt(cells[0]['output_max_abs'])}" if errs else "")
                         + (f"; noise floor: {floor}" if floor and errs else ""))
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.corpus._diagnose")
    p.add_argument("--out", required=True, help="the corpus runner's --out folder (corpus.json, noise.json)")
    args = p.parse_args(argv)
    out = Path(args.out)
    corpus_path = out / "corpus.json"
    if not corpus_path.is_file():
        print(f"_diagnose: error: {corpus_path} is missing: run python -m benchmarks.corpus --out {out} first",
              file=sys.stderr)
        return 2
    corpus = json.loads(corpus_path.read_text())
    noise = json.loads((out / "noise.json").read_text()) if (out / "noise.json").is_file() else {}
    result = diagnose(corpus, noise)
    (out / "diagnosis.json").write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
