"""The golden self-test a bundle carries: probe inputs, the outputs the deploy gate measured for THIS
artifact, and a tolerance. Re-running the probes here proves, on the device and its interpreter, that
the model file is the one the gate proved (a swapped model fails) and that this CPU and interpreter
compute what the gate saw.

File format (selftest.json, listed with its sha256 in the manifest; no pickle, no zip):
    {"format": "edgeproof-selftest", "format_version": 1,
     "inputs":  {name: {"dtype": "float32", "shape": [N, ...], "data": base64 of little-endian bytes}},
     "outputs": {interpreter: {name: {...}}}}
`outputs` holds the artifact's outputs as the gate measured them with each interpreter family it
could run (ai_edge_litert always; tflite_runtime where the gate had it): int8 kernels of
tflite-runtime 2.14 and ai-edge-litert round differently (up to 16 output steps on a few % of the
elements, measured), so a device compares with its own family's expectation when there is one.
The manifest entry "self_test": {"file", "probes", "inputs", "outputs", "interpreters",
"tolerance": {"atol", "rtol", "outlier_fraction", "outlier_atol"}}.
An element is within tolerance when |actual - expected| <= atol + rtol * |expected|. A self-test
passes when at most `outlier_fraction` of the elements are not, and none differs by more than
`outlier_atol` (both default 0: every element within tolerance).
"""
from __future__ import annotations

import base64
import binascii
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._json import read_json
from ._manifest import BundleError, safe_member

if TYPE_CHECKING:
    from ._model import Model

FORMAT = "edgeproof-selftest"
FORMAT_VERSION = 1
FILE = "selftest.json"
WIRE_DTYPES = ("float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool")
MAX_SELFTEST_BYTES = 16 * 2**20  # probes are a handful of examples: ~130 KiB for 16 MNIST digits
TOLERANCE_KEYS = ("atol", "rtol", "outlier_fraction", "outlier_atol")
REFERENCE_INTERPRETER = "ai_edge_litert"
# An interpreter with no recorded outputs of its own compares with the closest family's.
_SAME_KERNELS = {"tensorflow": "ai_edge_litert"}


class SelfTestError(BundleError):
    """A bundle whose self-test failed (its model does not reproduce the gate's outputs) or is unusable."""


@dataclass
class SelfTestResult:
    passed: bool
    max_abs_error: float  # over every output element of every probe
    outlier_fraction: float  # share of elements outside atol + rtol * |expected|
    ratio: float  # worst |actual - expected| / (atol + rtol * |expected|)
    tolerance: dict[str, float]
    interpreter: str
    expected_from: str  # the interpreter family whose recorded outputs were compared
    probes: int
    bundle: str
    worst_output: str
    outputs: dict[str, float] = field(default_factory=dict)  # per output: max abs error

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        other = "" if self.expected_from == self.interpreter else f" (compared with {self.expected_from}'s outputs)"
        return (f"{self.bundle}: self-test {verdict} on {self.interpreter}{other}: max abs error "
                f"{self.max_abs_error:.3g} over {self.probes} probes, {100 * self.outlier_fraction:.2f}% of elements "
                f"outside atol {self.tolerance['atol']:.3g} + rtol {self.tolerance['rtol']:.3g} x |expected| (allowed "
                f"{100 * self.tolerance['outlier_fraction']:.2f}%, each within {self.tolerance['outlier_atol']:.3g}); "
                f"worst output {self.worst_output!r}")

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in asdict(self).items()}


def decode_tensor(wire: Any, where: str) -> np.ndarray:
    if not isinstance(wire, dict) or set(wire) != {"dtype", "shape", "data"}:
        raise BundleError(f"{where}: each tensor must be {{dtype, shape, data}}")
    dtype, shape, data = wire["dtype"], wire["shape"], wire["data"]
    if dtype not in WIRE_DTYPES:
        raise BundleError(f"{where}: dtype {dtype!r:.30} is not one of {', '.join(WIRE_DTYPES)}")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 8
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape)):
        raise BundleError(f"{where}: invalid shape {shape!r:.60}")
    if not isinstance(data, str):
        raise BundleError(f"{where}: data must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BundleError(f"{where}: data is not valid base64") from None
    want = math.prod(shape) * np.dtype(dtype).itemsize
    if len(raw) != want:
        raise BundleError(f"{where}: {len(raw)} data bytes for shape {shape} {dtype} (needs {want})")
    array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise BundleError(f"{where}: holds NaN or infinite values")
    return array


def _tolerance(entry: dict[str, Any], where: str) -> dict[str, float]:
    tol = entry.get("tolerance")
    ok = isinstance(tol, dict) and {"atol", "rtol"} <= set(tol) and set(tol) <= set(TOLERANCE_KEYS)
    values = {k: tol.get(k, 0.0) for k in TOLERANCE_KEYS} if ok else {}
    if not ok or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                         for v in values.values()) or values["outlier_fraction"] > 1:
        raise BundleError(f"{where}: self_test.tolerance must be {{atol, rtol[, outlier_fraction, outlier_atol]}} with "
                          f"finite numbers >= 0 (a fraction <= 1), got {tol!r:.120}")
    return {k: float(v) for k, v in values.items()}


SelfTestData = tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]], dict[str, float]]


def load_self_test(model: "Model") -> SelfTestData:
    """(inputs, {interpreter: expected outputs}, tolerance) from the bundle; BundleError if absent or
    malformed."""
    manifest, bundle = model.manifest, model.bundle
    entry = manifest.get("self_test")
    where = f"{bundle}/manifest.json"
    if entry is None:
        raise BundleError(f"{bundle} carries no self-test (built by an older edgeproof); deploy it again")
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise BundleError(f"{where}: self_test must be an object naming its file")
    if entry["file"] not in manifest["files"]:
        raise BundleError(f"{where}: self_test file {entry['file']!r:.60} is not listed in 'files' (no checksum)")
    tolerance = _tolerance(entry, where)
    path = safe_member(bundle, entry["file"])
    data = read_json(path, BundleError, max_bytes=MAX_SELFTEST_BYTES)
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: not an {FORMAT} v{FORMAT_VERSION} file; deploy the bundle again")
    inputs_wire, by_interpreter = data.get("inputs"), data.get("outputs")
    if not isinstance(inputs_wire, dict) or not isinstance(by_interpreter, dict) \
            or REFERENCE_INTERPRETER not in by_interpreter \
            or not all(isinstance(v, dict) and v for v in by_interpreter.values()):
        raise BundleError(f"{path}: needs 'inputs' and 'outputs' by interpreter (with {REFERENCE_INTERPRETER!r})")
    in_names = {t["name"] for t in manifest["inputs"]}
    out_names = {t["name"] for t in manifest["outputs"]}
    if set(inputs_wire) != in_names or not all(set(v) <= out_names for v in by_interpreter.values()):
        raise BundleError(f"{path}: its tensors ({sorted(inputs_wire)} -> "
                          f"{sorted(by_interpreter[REFERENCE_INTERPRETER])}) are not the model's ({sorted(in_names)} -> "
                          f"{sorted(out_names)}); deploy the bundle again")
    inputs = {k: decode_tensor(v, f"{path} input {k!r}") for k, v in inputs_wire.items()}
    outputs = {str(i)[:40]: {k: decode_tensor(v, f"{path} {str(i)[:40]} output {k!r}") for k, v in wires.items()}
               for i, wires in by_interpreter.items()}
    sizes = {len(v) for v in inputs.values()} | {len(v) for o in outputs.values() for v in o.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise BundleError(f"{path}: inputs and outputs must hold the same number (>= 1) of probes")
    return inputs, outputs, tolerance


def _compare(actual: np.ndarray, expected: np.ndarray, tol: dict[str, float]) -> tuple[float, int, float, bool]:
    """(max abs error, elements outside atol + rtol|e|, worst error / allowed, every error within
    outlier_atol or allowed). A shape mismatch or a non-finite output is infinitely bad."""
    if actual.shape != expected.shape or not np.isfinite(np.asarray(actual, np.float64)).all():
        return math.inf, int(max(expected.size, 1)), math.inf, False
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    allowed = tol["atol"] + tol["rtol"] * np.abs(expected.astype(np.float64))
    outside = err > allowed
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.nan_to_num(np.where(err == 0, 0.0, err / allowed), nan=math.inf).max(initial=0.0))
    capped = bool((err[outside] <= tol["outlier_atol"]).all())
    return float(err.max(initial=0.0)), int(outside.sum()), ratio, capped


def _expectation(model: "Model", outputs: dict[str, dict[str, np.ndarray]]) -> str:
    """Which recorded outputs to compare with: the model's interpreter family's, else the closest."""
    for family in (model.interpreter, _SAME_KERNELS.get(model.interpreter)):
        if family in outputs:
            return family
    return REFERENCE_INTERPRETER


def self_test(model: "Model") -> SelfTestResult:
    """Run the bundle's probes through the loaded model and compare with the gate's outputs for this
    interpreter family (or the reference interpreter's when the gate recorded none for it)."""
    inputs, by_interpreter, tol = load_self_test(model)
    source = _expectation(model, by_interpreter)
    expected = by_interpreter[source]
    actual = model.predict_all(inputs)
    per_output, worst, worst_ratio, max_err, outside, total, capped = {}, "", -1.0, 0.0, 0, 0, True
    for name, want in sorted(expected.items()):
        err, n_out, ratio, ok = _compare(np.asarray(actual[name]), want, tol)
        per_output[name] = err
        max_err, outside, total, capped = max(max_err, err), outside + n_out, total + want.size, capped and ok
        if ratio > worst_ratio:
            worst, worst_ratio = name, ratio
    fraction = outside / max(total, 1)
    passed = capped and fraction <= tol["outlier_fraction"] and math.isfinite(max_err)
    return SelfTestResult(passed=passed, max_abs_error=max_err, outlier_fraction=fraction, ratio=worst_ratio,
                          tolerance=tol, interpreter=model.interpreter, expected_from=source,
                          probes=len(next(iter(inputs.values()))), bundle=str(model.bundle), worst_output=worst,
                          outputs=per_output)


def require_self_test(model: "Model") -> SelfTestResult:
    """self_test(model), raising SelfTestError when it fails."""
    result = self_test(model)
    if not result.passed:
        raise SelfTestError(result.summary() + ": the model file is not the one the deploy gate proved, or this "
                            "interpreter computes it differently; do not use it (deploy the bundle again)")
    return result
