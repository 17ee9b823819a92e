"""Write a bundle's golden self-test: probe inputs, the outputs the deploy gate measured for THIS
artifact (per interpreter family), and the tolerance a device must meet (format and rule:
edgeproof.runtime._selftest).

The deploy gate calls, inside replacing_dir, after copying the model and before hashing the files:

    outputs = run_probes(tmp / model_file, manifest_inputs, manifest_outputs, probes)          # ai_edge_litert
    more = probes_in_edge_env(tmp / model_file, manifest_inputs, manifest_outputs, probes)       # tflite_runtime, or {}
    manifest["self_test"] = write_self_test(tmp, probes, outputs, tolerance_for(tmp / model_file, record.mode), more)

so selftest.json is covered by the manifest's sha256 list (and by the bundle signature). A TF.js
bundle's self-test holds the outputs TF.js computed (run_tfjs_probes, family "tfjs"): the browser demo
runs it when the bundle first loads and shows "Proven in this browser".
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from edgeproof.runtime._selftest import (
    FILE,
    FORMAT,
    FORMAT_VERSION,
    REFERENCE_INTERPRETER,
    TOLERANCE_KEYS,
    WIRE_DTYPES,
)

from edgeproof._atomic import write_bytes_atomic


class SelfTestWriteError(ValueError):
    """Probe inputs/outputs that cannot make a self-test (non-numeric, non-finite, mismatched batch)."""


# The tolerance rule, from measurements (`.venv/bin/python scripts/selftest_spread.py DEPLOY_DIR`; the
# table is in docs/hostile-inputs.md, "Self-test tolerance"). The 19 keras Pi bundles of the five
# reference models (fast profile) ran their 16 probes with ai-edge-litert 2.3.0 and tflite-runtime
# 2.14.0 on x86-64 (AVX2, 1 and 4 threads) and on emulated aarch64 (Cortex-A72):
#   fp32, fp16: every pair of runs within 2.9e-6 (translator logits up to |20|; 8.4e-7 for outputs in
#     [0, 1]), across interpreters too. The nearest swap, the same network in the other float
#     precision, differs by 7.9e-5 (imdb_lstm) to 1.4e-3 (translator).
#     -> atol 1e-5 (3.4x the spread) + rtol 1e-4 x |expected|, no element outside.
#   dynamic: ai-edge-litert x86 vs aarch64 within 1.2e-7, but tflite-runtime 2.14's hybrid LSTM kernels
#     differ x86 vs aarch64 by 3.3e-4 (and from ai-edge-litert by 3.5e-4). The nearest swap (imdb_lstm
#     fp32 in the dynamic bundle) differs by 1.7e-3; the other networks' by 4.9e-3 to 4.6e-2.
#     -> atol 1e-3 (3x the spread) + rtol 1e-4, no element outside. (linreg's dynamic model is
#     the fp32 one: its single weight is too small to quantize, so a swap between them changes nothing.)
#   int8: outputs move in whole quantization steps. One interpreter family: ai-edge-litert bit-identical
#     x86 vs aarch64; tflite-runtime 2.14 x86 vs aarch64 up to 9 steps on 0.29 % of the elements
#     (mnist_gan). Between the families: up to 16 steps on 14 %, as much as swapping the float model in
#     (26 % beyond one step): so the gate records each family's outputs, and a device compares with its
#     own family's. A float model in an int8 bundle lands between the steps: linreg's moves only 0.75
#     step, but 25 % of its elements by more than half a step.
#     -> atol half a step, at most 2 % of the elements beyond it (7x the 0.29 %), none beyond 16 steps.
TFJS_FAMILY = "tfjs"
FLOAT_TOLERANCE = {"atol": 1e-5, "rtol": 1e-4, "outlier_fraction": 0.0, "outlier_atol": 0.0}
DYNAMIC_TOLERANCE = {"atol": 1e-3, "rtol": 1e-4, "outlier_fraction": 0.0, "outlier_atol": 0.0}
INT8_OUTLIER_FRACTION = 0.02
INT8_OUTLIER_STEPS = 16
DEFAULT_INT8_STEP = 1 / 256  # a softmax/sigmoid output's step, when the model does not say
# Recorded outputs per interpreter family are kept under 1 MiB (raw): the translator's logits are
# 1 MB per probe (32 positions x 8000 words x 4 bytes), so it keeps 1 probe (256 000 numbers, plenty
# to tell a swapped model); the CNN keeps all 16 (640 bytes each).
MAX_OUTPUT_BYTES = 2**20


def default_tolerance(mode: str, step: Optional[float] = None) -> dict[str, float]:
    """The self-test tolerance for an artifact of `mode` (fp32/fp16/dynamic/int8); for int8, `step` is
    the quantization step of its outputs (tolerance_for reads it from the .tflite)."""
    if mode in ("fp32", "fp16"):
        return dict(FLOAT_TOLERANCE)
    if mode == "dynamic":
        return dict(DYNAMIC_TOLERANCE)
    if mode == "int8":
        step = float(step or DEFAULT_INT8_STEP)
        return {"atol": step / 2, "rtol": 0.0, "outlier_fraction": INT8_OUTLIER_FRACTION,
                "outlier_atol": INT8_OUTLIER_STEPS * step}
    raise SelfTestWriteError(f"no self-test tolerance rule for mode {mode!r}")


def tfjs_tolerance() -> dict[str, float]:
    """A TF.js bundle's self-test tolerance: every TF.js precision computes in float32 (fp16 and uint8 are
    weight storage, dequantized at load), so the float rule; the spread between TF.js backends is in
    docs/hostile-inputs.md ("Self-test tolerance")."""
    return dict(FLOAT_TOLERANCE)


def tolerance_for(model_path: Path, mode: str) -> dict[str, float]:
    """default_tolerance with the int8 output step read from the model (the largest over its outputs)."""
    from edgeproof.runtime._flatbuffer import validate_tflite

    steps = [s for s in validate_tflite(model_path).output_steps.values() if s]
    return default_tolerance(mode, max(steps) if steps else None)


def _wire(name: str, value: Any) -> dict[str, Any]:
    array = np.asarray(value)
    if array.dtype == np.float64:
        array = array.astype(np.float32)  # canonical model tensors are float32
    if str(array.dtype) not in WIRE_DTYPES:
        raise SelfTestWriteError(f"self-test tensor {name!r}: dtype {array.dtype} is not one of {', '.join(WIRE_DTYPES)}")
    if array.ndim == 0 or not len(array):
        raise SelfTestWriteError(f"self-test tensor {name!r}: needs a batch of at least one probe, got {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise SelfTestWriteError(f"self-test tensor {name!r} holds NaN or infinite values")
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": base64.b64encode(data).decode("ascii")}


def _checked_tolerance(tolerance: Any) -> dict[str, float]:
    ok = isinstance(tolerance, Mapping) and {"atol", "rtol"} <= set(tolerance) <= set(TOLERANCE_KEYS)
    tol = {k: float(tolerance.get(k, 0.0)) for k in TOLERANCE_KEYS} if ok else None
    if tol is None or not all(np.isfinite(v) and v >= 0 for v in tol.values()) or tol["outlier_fraction"] > 1:
        raise SelfTestWriteError(f"tolerance must be {{'atol', 'rtol'[, 'outlier_fraction', 'outlier_atol']}} with "
                                 f"finite values >= 0, got {tolerance!r}")
    return tol


def _within_budget(inputs, outputs, more):
    """The first n probes, n as large as keeps each family's outputs within MAX_OUTPUT_BYTES (>= 1)."""
    per_probe = sum(np.asarray(v)[:1].nbytes for v in outputs.values())
    n = max(1, MAX_OUTPUT_BYTES // max(per_probe, 1))
    cut = lambda d: {k: np.asarray(v)[:n] for k, v in d.items()}  # noqa: E731
    return cut(inputs), cut(outputs), {i: cut(o) for i, o in more.items()}


def write_self_test(bundle_dir: Path, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
                    tolerance: dict, more_outputs: Optional[dict[str, dict[str, np.ndarray]]] = None,
                    family: str = REFERENCE_INTERPRETER) -> dict:
    """Write `bundle_dir/selftest.json` (atomically) and return the manifest entry for key "self_test".

    `inputs`: canonical probe inputs by canonical input name (what Model.predict_all takes);
    `outputs`: THIS artifact's canonical outputs on them with ai-edge-litert (run_probes);
    `more_outputs`: {interpreter family: outputs} measured with other interpreters (e.g.
    probes_in_edge_env's tflite_runtime); `tolerance`: default_tolerance / tolerance_for; `family`: who
    measured `outputs` (TF.js bundles: TFJS_FAMILY, what the browser's TF.js backends compare with).
    Probes beyond the output budget (MAX_OUTPUT_BYTES per family) are left out."""
    if not inputs or not outputs:
        raise SelfTestWriteError("a self-test needs at least one input and one output")
    inputs, outputs, more_outputs = _within_budget(inputs, outputs, more_outputs or {})
    by_interpreter = {family: outputs, **more_outputs}
    arrays = [*inputs.values()] + [v for o in by_interpreter.values() for v in o.values()]
    batches = {len(np.asarray(v)) for v in arrays if np.asarray(v).ndim}
    if len(batches) != 1:
        raise SelfTestWriteError(f"self-test inputs and outputs hold different numbers of probes: {sorted(batches)}")
    if any(set(o) != set(outputs) for o in by_interpreter.values()):
        raise SelfTestWriteError("every interpreter's outputs must name the same output tensors")
    tol = _checked_tolerance(tolerance)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION,
               "inputs": {k: _wire(k, v) for k, v in sorted(inputs.items())},
               "outputs": {i: {k: _wire(k, v) for k, v in sorted(o.items())} for i, o in sorted(by_interpreter.items())}}
    write_bytes_atomic(Path(bundle_dir) / FILE, json.dumps(payload, separators=(",", ":")).encode())
    return {"file": FILE, "probes": batches.pop(), "inputs": sorted(inputs), "outputs": sorted(outputs),
            "interpreters": sorted(by_interpreter), "tolerance": tol}


def run_tfjs_probes(spec: Any, record: Any, bundle_dir: Path, model_file: str,
                    probes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A TF.js bundle's canonical outputs on `probes`, computed by TF.js (wasm backend, 1 thread, in Node:
    the kernels the browser's wasm backend runs) through the gate's own binding (verify's TfjsPredictor)."""
    from dataclasses import replace

    from edgeproof.verify._runners import TfjsPredictor
    from edgeproof.verify._tfjs_node import TfjsNodeRunner

    with TfjsNodeRunner("wasm") as runner:
        return TfjsPredictor(spec, replace(record, path=model_file), Path(bundle_dir), runner)(probes)


def run_probes(model_path: Path, manifest_inputs: Sequence[Mapping[str, Any]],
               manifest_outputs: Sequence[Mapping[str, Any]], probes: dict[str, np.ndarray],
               interpreter: Optional[str] = REFERENCE_INTERPRETER) -> dict[str, np.ndarray]:
    """The artifact's canonical outputs on `probes`, computed exactly as the edge runtime will
    (TFLiteRunner bound from the manifest's tensor entries, as Model.load does), with 1 thread."""
    from edgeproof.runtime._tflite_runner import TFLiteRunner

    runner = TFLiteRunner(model_path,
                          [(t["name"], t.get("canonical_layout", t["layout"])) for t in manifest_inputs],
                          [(t["name"], t.get("canonical_layout", t["layout"])) for t in manifest_outputs],
                          [{**t, "name": t["tensor"]} for t in manifest_inputs],
                          [{**t, "name": t["tensor"]} for t in manifest_outputs],
                          interpreter=interpreter, num_threads=1)
    return runner(probes)


_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from edgeproof.runtime._tflite_runner import TFLiteRunner  # the runtime only: numpy + tflite-runtime
    spec = json.load(open(sys.argv[1]))
    with np.load(sys.argv[2], allow_pickle=False) as f:
        probes = {k: f[k] for k in f.files}
    ins, outs = spec["inputs"], spec["outputs"]
    runner = TFLiteRunner(spec["model"], [(t["name"], t.get("canonical_layout", t["layout"])) for t in ins],
                          [(t["name"], t.get("canonical_layout", t["layout"])) for t in outs],
                          [{**t, "name": t["tensor"]} for t in ins], [{**t, "name": t["tensor"]} for t in outs],
                          interpreter=spec["interpreter"], num_threads=1)
    np.savez(sys.argv[3], **runner(probes))
""")  # the same binding as run_probes / Model.load


def edge_python() -> Optional[Path]:
    """The runtime-only environment that has tflite-runtime 2.14 (numpy<2): $EDGEPROOF_EDGE_PYTHON or
    the checkout's .venv-edge; None when neither exists."""
    candidates = [os.environ.get("EDGEPROOF_EDGE_PYTHON"), Path(__file__).resolve().parents[1] / ".venv-edge/bin/python"]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def probes_in_edge_env(model_path: Path, manifest_inputs: Sequence[Mapping[str, Any]],
                       manifest_outputs: Sequence[Mapping[str, Any]], probes: dict[str, np.ndarray],
                       python: Optional[Path] = None, timeout_s: float = 300) -> dict[str, dict[str, np.ndarray]]:
    """{"tflite_runtime": outputs} computed in the tflite-runtime 2.14 environment (a subprocess: it
    needs numpy<2), or {} when there is no such environment or the model needs ops 2.14 lacks."""
    python = python or edge_python()
    if python is None:
        return {}
    with tempfile.TemporaryDirectory(prefix="edgeproof-probes-") as tmp:
        spec, data, out = Path(tmp) / "spec.json", Path(tmp) / "probes.npz", Path(tmp) / "out.npz"
        spec.write_text(json.dumps({"model": str(model_path), "inputs": list(manifest_inputs),
                                    "outputs": list(manifest_outputs), "interpreter": "tflite_runtime"}))
        np.savez(data, **probes)
        run = subprocess.run([str(python), "-c", _CHILD, str(spec), str(data), str(out)], capture_output=True,
                             text=True, timeout=timeout_s)
        if run.returncode != 0:
            if "needs a newer TFLite runtime" in run.stderr:
                return {}  # e.g. dynamic-range FULLY_CONNECTED v12: the bundle does not run on 2.14 at all
            raise SelfTestWriteError(f"probing {model_path} with tflite-runtime in {python} failed: "
                                     f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
        with np.load(out, allow_pickle=False) as f:
            return {"tflite_runtime": {k: f[k] for k in f.files}}


def stamp_bundle(bundle_dir: Path | str, probes: dict[str, np.ndarray], tolerance: Optional[dict] = None,
                 edge: Optional[Path] = None) -> dict:
    """Add a self-test to an already-built bundle, in place: run `probes` through its model (with
    ai-edge-litert here, and tflite-runtime in the edge environment when there is one), write
    selftest.json, and update the manifest's file list and "self_test" entry (manifest written
    atomically). For bundles deployed before self-tests existed, and for tests and scripts; the deploy
    gate calls run_probes + write_self_test inside its temp folder instead. A signature (model.sig)
    no longer matches afterwards: sign the bundle again."""
    from edgeproof.runtime._manifest import load_manifest, sha256_of

    bundle = Path(bundle_dir)
    manifest = load_manifest(bundle)
    model_path = bundle / manifest["model_file"]
    outputs = run_probes(model_path, manifest["inputs"], manifest["outputs"], probes)
    more = probes_in_edge_env(model_path, manifest["inputs"], manifest["outputs"], probes, python=edge)
    entry = write_self_test(bundle, probes, outputs, tolerance or tolerance_for(model_path, manifest["mode"]), more)
    path = bundle / entry["file"]
    manifest["files"][entry["file"]] = {"sha256": sha256_of(path), "bytes": path.stat().st_size}
    manifest["self_test"] = entry
    write_bytes_atomic(bundle / "manifest.json", json.dumps(manifest, indent=2).encode())
    return entry

