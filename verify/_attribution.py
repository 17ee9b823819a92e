"""Where an 8-bit artifact loses its accuracy. For every full-int8 .tflite: per-layer error (TFLite's
QuantizationDebugger: RMSE in units of each tensor's quantization scale), mapped back to the source model's
layer or node names; for every TF.js uint8 model: the error of each quantized weight tensor against its float
weights. Plus the split between the error already present in the fp32 conversion and the error quantization
adds. Written to <model folder>/attribution/<cell>.json; the report shows the top offenders and a plot."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgeproof.convert._onnx_route import ONNX_NAMES_JSON

from ._files import inside

ATTRIBUTION_DIR = "attribution"
TOP = 10


def source_name(tensor: str, onnx_names: dict[str, str]) -> str:
    """The source model's name for a TFLite tensor: a Keras layer (`model/conv2d_1/Relu;...` -> conv2d_1) or the
    exporter's ONNX node (via the pre-pass's renaming map)."""
    first = tensor.split(";")[0]
    for safe, original in onnx_names.items():
        if safe and safe in first:
            return original
    for name in tensor.split(";"):  # a fused op names every op it holds: the first with a layer path wins
        parts = [p for p in name.split("/") if p and not p.startswith("StatefulPartitionedCall")]
        if len(parts) > 2:
            return parts[1]
    parts = [p for p in first.split("/") if p]
    return parts[1] if len(parts) > 2 else (parts[-2] if len(parts) > 1 else first)


def weight_name(tensor: str) -> str:
    """A TF.js weight node's layer (`StatefulPartitionedCall/mnist_cnn/conv2d_2/Conv2D/ReadVariableOp` -> conv2d_2)."""
    parts = [p for p in tensor.split("/") if p and not p.startswith("StatefulPartitionedCall")]
    return parts[1] if len(parts) > 2 else (parts[0] if parts else tensor)


def tflite_layers(root: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """QuantizationDebugger rows with the source's names added."""
    names_file = Path(root) / ONNX_NAMES_JSON
    names = json.loads(names_file.read_text()) if names_file.is_file() else {}
    return [{**r, "source": _layer_name(r, names)} for r in rows]


def _layer_name(row: dict[str, Any], names: dict[str, str]) -> str:
    """The source's name for the row's layer. An op writing a model output has the signature's tensor name
    (`StatefulPartitionedCall:0`, no layer path): its weight's name when that has a path, else the op type and
    tensor (the converter may name the weight `tfl.pseudo_qconst`)."""
    tensor, weight = row["tensor"], row.get("weight") or ""
    name = source_name(tensor, names)
    if name != tensor.split(";")[0] or "/" in name or not row.get("op"):  # a layer path or the exporter's name
        return name
    return source_name(weight, names) if "/" in weight else f"{row['op']} -> {tensor}"


def _weights(model_json: Path) -> dict[str, np.ndarray]:
    """Every weight of a TF.js graph model, dequantized (uint8 / float16 / float32 shards)."""
    folder = model_json.parent
    manifest = json.loads(model_json.read_text())
    out = {}
    for group in manifest["weightsManifest"]:
        data = b"".join(inside(folder, p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization") or {}
            dtype = np.dtype(q.get("dtype", w["dtype"]) if q else w["dtype"])
            raw = np.frombuffer(data, dtype, count, offset)
            offset += count * dtype.itemsize
            if q.get("dtype") in ("uint8", "uint16"):
                values = raw.astype(np.float64) * q["scale"] + q["min"]
            else:
                values = raw.astype(np.float64)
            if w["dtype"] == "float32":  # shape constants (int32) are not weights to judge
                out[w["name"]] = values.reshape(w["shape"])
    return out


def tfjs_weights(float_json: Path, quantized_json: Path) -> list[dict[str, Any]]:
    """Per weight tensor of the uint8 model: max and RMS error against the fp32 model's weights, and the RMS in
    units of the tensor's spread (worst first)."""
    reference, quantized = _weights(float_json), _weights(quantized_json)
    rows = []
    for name, ref in reference.items():
        got = quantized.get(name)
        if got is None or got.shape != ref.shape or not ref.size:
            continue
        diff = got - ref
        spread = float(np.std(ref)) or 1.0
        rows.append({"tensor": name, "elements": int(ref.size), "max_abs_error": float(np.max(np.abs(diff))),
                     "rms_error": float(np.sqrt(np.mean(diff ** 2))),
                     "rms_per_spread": float(np.sqrt(np.mean(diff ** 2)) / spread)})
    rows.sort(key=lambda r: -r["rms_per_spread"])
    return rows


def split(fp32_error: Optional[float], quantized_error: Optional[float]) -> dict[str, Optional[float]]:
    """How much of the 8-bit artifact's probe error the fp32 conversion already had, and how much quantization
    added (max abs errors against the source model)."""
    if fp32_error is None or quantized_error is None:
        return {"fp32_conversion": fp32_error, "added_by_quantization": None}
    return {"fp32_conversion": fp32_error, "added_by_quantization": max(0.0, quantized_error - fp32_error)}


def save(root: Path, cell: str, payload: dict[str, Any]) -> Path:
    from edgeproof._atomic import write_bytes_atomic

    path = Path(root) / ATTRIBUTION_DIR / (cell.replace("/", "-") + ".json")
    write_bytes_atomic(path, json.dumps(payload, indent=1).encode())
    return path


def load(root: Path, cell: str) -> Optional[dict[str, Any]]:
    path = Path(root) / ATTRIBUTION_DIR / (cell.replace("/", "-") + ".json")
    return json.loads(path.read_text()) if path.is_file() else None
