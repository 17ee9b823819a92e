"""Quantization recipes beyond the plain precisions, for repairing an 8-bit artifact that failed its budgets
(verify/_repair.py runs the ladder; each recipe here is one conversion), and per-layer attribution of a
full-int8 model's error.

TFLite full-int8 recipes (each keeps integer activations, which NPUs and Edge TPUs need):
- `calibration`: calibrated on more examples (`samples`) drawn from the whole calibration set;
- `16x8`: int16 activations with int8 weights (TFLite's EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8);
  with `float_fallback`, the ops that have no 16x8 kernel (CAST, FLOOR_MOD, SQRT, ... in transformers) stay in
  float and every other op keeps int16 activations;
- `mixed`: full int8 except `float_layers` (TFLite tensor names) and every op of the types in `float_ops`, which
  stay in float (quantize/dequantize around them): the worst layers by the attribution, or every op but the
  compute-heavy ones (matmuls, convolutions, embedding lookups).
TFLite dynamic-range recipe (`convert/_dynamic_mixed.py`):
- `dynamic-mixed`: the dynamic-range model with `float_layers` (or, with `all_layers`, every hybrid op: weight-only
  int8) computing in float on float activations, their weights still stored as int8 behind a DEQUANTIZE.
TF.js uint8 recipe:
- `mixed`: every weight uint8 except `float_weights` (node names), which keep 16-bit (float16) weights.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from edgeproof._frameworks import import_tensorflow

ATTRIBUTION_SAMPLES = 64  # debug examples for per-layer statistics: enough for stable RMSE/scale ranks


def _dataset(calibration: dict[str, np.ndarray], count: int, seed: int = 0):
    from ._tflite import representative_batches

    return lambda: representative_batches(calibration, count, seed)


def _int8_converter(saved_model: Path, calibration: dict, samples: int, float_fallback: bool = False):
    from ._tflite import _check_calibration

    tf = import_tensorflow()
    _check_calibration(saved_model, calibration)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _dataset(calibration, samples)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + ([tf.lite.OpsSet.TFLITE_BUILTINS] if float_fallback else [])
    converter.target_spec.supported_ops = ops
    return converter


def convert_with_recipe(saved_model: Path, recipe: dict[str, Any], calibration: Optional[dict]) -> bytes:
    """A .tflite model made by `recipe` (see the module docstring)."""
    tf = import_tensorflow()
    kind = recipe["kind"]
    if kind == "dynamic-mixed":
        return _dynamic_mixed(saved_model, recipe)
    if calibration is None:
        raise ValueError("a full-integer recipe needs calibration data")
    if kind == "calibration":
        return _int8_converter(saved_model, calibration, int(recipe["samples"])).convert()
    if kind == "16x8":
        converter = _int8_converter(saved_model, calibration, int(recipe.get("samples", 256)))
        ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.target_spec.supported_ops = ops + ([tf.lite.OpsSet.TFLITE_BUILTINS] if recipe.get("float_fallback")
                                                     else [])
        return converter.convert()
    if kind == "mixed":
        converter = _int8_converter(saved_model, calibration, int(recipe.get("samples", 256)), float_fallback=True)
        options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=list(recipe.get("float_layers") or []) or None,
            denylisted_ops=list(recipe.get("float_ops") or []) or None)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=_debug_dataset(calibration), debug_options=options)
        return debugger.get_nondebug_quantized_model()
    raise ValueError(f"unknown TFLite recipe {kind!r}")


def _dynamic_mixed(saved_model: Path, recipe: dict[str, Any]) -> bytes:
    """The dynamic-range conversion with the recipe's hybrid layers (or all of them) computing in float."""
    from edgeproof._quant import QuantConfig

    from ._dynamic_mixed import float_layers
    from ._tflite import convert_saved_model

    content = convert_saved_model(saved_model, QuantConfig("tflite", "dynamic"), None)
    return float_layers(content, None if recipe.get("all_layers") else recipe["float_layers"])


def _debug_dataset(calibration: dict[str, np.ndarray], count: int = ATTRIBUTION_SAMPLES):
    names = sorted(calibration)

    def batches() -> Iterator[list[np.ndarray]]:  # the debugger wants inputs in signature order, as a list
        for example in _dataset(calibration, count, seed=1)():
            yield [example[k] for k in names]

    return batches


def relative_error(float_values: np.ndarray, quantized: np.ndarray, scale: float, zero_point: int) -> float:
    """RMS error of a quantized tensor over the typical size of its float values (the median of the nonzero
    |values|): near 0 for a well-quantized tensor; about 1 or more when the scale is set by a few huge values (an
    additive attention mask of -1e4, LayerNorm outlier channels) and the rest round to a handful of steps, which
    the error per quantization step cannot see (it is ordinary rounding for that scale)."""
    f = np.asarray(float_values, np.float64)
    dequantized = (np.asarray(quantized, np.float64) - zero_point) * scale
    magnitudes = np.abs(f[f != 0])
    typical = float(np.median(magnitudes)) if magnitudes.size else 0.0
    return float(np.sqrt(np.mean((f - dequantized) ** 2)) / typical) if typical > 0 else 0.0


def layer_attribution(saved_model: Path, calibration: dict, samples: int = 256) -> list[dict[str, Any]]:
    """Per-layer quantization error of the full-int8 model (TFLite's QuantizationDebugger on the calibration
    data): every quantized tensor with its RMSE in units of its quantization scale (`rmse_per_scale`: ~0.3 is
    rounding noise; above 1 the layer loses information) and its `relative_error` (see above), sorted worst first
    by relative error, then by error per step."""
    import csv
    import io

    tf = import_tensorflow()
    converter = _int8_converter(saved_model, calibration, samples)
    options = tf.lite.experimental.QuantizationDebugOptions(
        layer_direct_compare_metrics={"relative_error": relative_error})
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=_debug_dataset(calibration),
                                                         debug_options=options)
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    rows = []
    for row in csv.DictReader(io.StringIO(buffer.getvalue())):
        mse, scale = float(row.get("mean_squared_error") or 0.0), float(row.get("scale") or 0.0)
        relative = float(row.get("relative_error") or 0.0)
        rows.append({"tensor": row["tensor_name"], "op": row["op_name"],
                     "rmse_per_scale": float(np.sqrt(mse) / scale) if scale > 0 else 0.0,
                     "relative_error": relative if np.isfinite(relative) else 0.0,
                     "max_abs_error": float(row.get("max_abs_error") or 0.0), "scale": scale,
                     "elements": int(float(row.get("num_elements") or 0))})
    rows.sort(key=lambda r: (-r["relative_error"], -r["rmse_per_scale"]))
    return rows


def tfjs_mixed_map(recipe: dict[str, Any], all_nodes: list[str]) -> dict[str, list[str]]:
    """TF.js quantization_dtype_map: uint8 for every weight node except the recipe's, which get float16."""
    kept = set(recipe["float_weights"])
    return {"uint8": [n for n in all_nodes if n not in kept], "float16": sorted(kept)}


def write_json(path: Path, payload: Any) -> None:
    from edgeproof._atomic import write_bytes_atomic

    write_bytes_atomic(path, json.dumps(payload, indent=1).encode())
