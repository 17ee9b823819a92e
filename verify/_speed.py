"""Speed checked, not assumed: a repaired artifact timed against the fp32 and dynamic-range artifacts of the
same model in one run (interleaved rounds, one thread, one example, medians), and when it is not the faster,
the reason in words."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

ROUNDS = 30  # interleaved rounds: the median of 30 is stable to a few percent on a quiet core


def _runner(contract, record, root: Path):
    from edgeproof.runtime._tflite_runner import TFLiteRunner

    from ._runners import canonical

    ins, outs = canonical(contract)
    return TFLiteRunner(root / record.path, ins, outs, [vars(t) for t in record.inputs],
                        [vars(t) for t in record.outputs], interpreter="ai_edge_litert", num_threads=1)


def _why_not(recipe: Optional[dict]) -> str:
    kind = (recipe or {}).get("kind")
    if kind == "16x8":
        return ("16x8 kernels (int16 activations) run on TFLite's reference kernels: XNNPACK, which runs the fp32 "
                "and int8 models, has no int16 path")
    if kind == "dynamic-mixed":
        which = "every hybrid layer" if recipe.get("all_layers") else f"{len(recipe.get('float_layers') or [])} layer(s)"
        return (f"{which} computes in float from int8 weights behind a DEQUANTIZE, which XNNPACK does not take as "
                f"static weights, so those layers run on TFLite's builtin float kernels")
    if kind == "mixed" and recipe.get("float_ops"):
        return (f"every {', '.join(recipe['float_ops'])} op stays in float, with quantize/dequantize between it and "
                f"the int8 matmuls, and XNNPACK's int8 path on this CPU (AVX2, no VNNI) gains little over fp32")
    if kind == "mixed":
        layers = len(recipe.get("float_layers") or recipe.get("float_weights") or [])
        return (f"{layers} layer(s) stay in float, with quantize/dequantize around each, and XNNPACK's int8 path "
                f"on this CPU (AVX2, no VNNI) gains little over fp32")
    return "XNNPACK's int8 kernels on this CPU (AVX2, no VNNI) are not faster than its fp32 ones for this model"


def compare_speed(contract, records: dict, chosen: str, root: Path, probes: dict[str, np.ndarray]) -> dict[str, Any]:
    """{cell: median ms} for the chosen cell, tflite/fp32 and tflite/dynamic, plus `faster_than_fp32` and `why`."""
    cells = [c for c in (chosen, "tflite/fp32", "tflite/dynamic") if c in records]
    runners = {c: _runner(contract, records[c], root) for c in cells}
    step = next(iter(runners.values())).static_batch or 1
    example = {k: v[:step] for k, v in probes.items()}
    times: dict[str, list[float]] = {c: [] for c in cells}
    for _ in range(ROUNDS):
        for cell, runner in runners.items():
            start = time.perf_counter()
            runner(example)
            times[cell].append((time.perf_counter() - start) * 1e3)
    medians = {c: round(statistics.median(t[3:]), 4) for c, t in times.items()}  # the first rounds warm up
    result: dict[str, Any] = {"median_ms": medians, "threads": 1, "rounds": ROUNDS}
    fp32 = medians.get("tflite/fp32")
    result["faster_than_fp32"] = fp32 is not None and medians[chosen] < fp32
    if not result["faster_than_fp32"]:
        result["why"] = _why_not(records[chosen].recipe)
    return result
