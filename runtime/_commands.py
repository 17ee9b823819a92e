"""`edgeproof run` and `edgeproof bench` on a bundle: numpy + one TFLite interpreter, nothing else."""
from __future__ import annotations

import json
import math
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgeproof.errors import EdgeproofError

from ._model import Model
from ._npy import load_npy, load_npz
from ._signature import InputError


def _parse_input(model: Model, value: str) -> Any:
    """--input as the model's task reads it: an image/.npy path, text, a seed, or numbers. Files are
    read with bounded sizes (no decompression bombs, no pickles)."""
    if model.task == "classification":
        from ._images import read_image

        return read_image(value, expected=tuple(model.preprocessing.get("size", [28, 28])))
    if model.task in ("binary_classification", "translation"):
        return value
    if model.task == "custom":  # a user's own model: a .npz of inputs by name, or a .npy for a single input
        if value.endswith(".npz"):
            return load_npz(value)
        if value.endswith(".npy"):
            return load_npy(value)
        raise InputError(f"this model takes its raw input tensors: a .npz with one array per input "
                         f"({', '.join(t['name'] for t in model.manifest['inputs'])}) or a .npy; got {value[:80]!r}")
    if model.task == "generation":
        if value.strip().lstrip("+-").isdigit():
            if len(value.strip()) > 20:  # 2**64 has 20 digits
                raise InputError(f"the seed must be an integer from 0 to 2**64 - 1, got a {len(value.strip())}-digit "
                                 f"number")
            return int(value)
        if value.endswith(".npy"):
            return load_npy(value)
        raise InputError(f"the GAN takes an integer seed (or a .npy of latent vectors), got {value[:80]!r}")
    if value.endswith(".npy"):
        return load_npy(value)
    try:
        return np.array([float(v) for v in value.split(",")], dtype=np.float32)
    except ValueError:
        raise InputError(f"linreg takes numbers, e.g. --input 1.5,2,3 (got {value[:80]!r})") from None


def _png_output(model: Model, value: str, output: Optional[str]) -> Path:
    """Where the GAN's grid goes: --output (its folder must exist, it must not be a folder) or a name
    built from the model and the seed only, never from an input path."""
    if output is None:
        seed = value.strip()
        name = f"seed{int(seed)}" if seed.lstrip("+-").isdigit() and len(seed) <= 20 else "latent"
        return Path(f"{model.manifest['model']}-{name}.png")
    path = Path(output)
    if path.is_dir():
        raise InputError(f"--output {output} is a folder; give a file name such as {path / 'digits.png'}")
    if not path.parent.is_dir():
        raise InputError(f"--output {output}: the folder {path.parent} does not exist; create it or choose another")
    return path


def run_bundle(bundle: str, value: str, interpreter: Optional[str] = None, output: Optional[str] = None,
               num_threads: Optional[int] = None, self_test: bool = False,
               public_key: Optional[str] = None) -> dict[str, Any]:
    model = Model.load(bundle, interpreter=interpreter, num_threads=num_threads, self_test=self_test,
                       public_key=public_key)
    png = _png_output(model, value, output) if model.task == "generation" else None
    result = model(_parse_input(model, value))
    summary: dict[str, Any] = {"bundle": str(bundle), "model": model.manifest["model"],
                               "framework": model.manifest["framework"], "mode": model.manifest["mode"],
                               "interpreter": model.interpreter, "verdict": model.manifest["verdict"]["status"]}
    if model.signature_check is not None:
        summary["signature"] = "verified"
    if model.self_test_result is not None:
        summary["self_test"] = model.self_test_result.to_dict()
    if model.task == "classification":
        summary.update(label=result["label"], confidence=[round(float(p.max()), 4) for p in result["probabilities"]])
    elif model.task == "binary_classification":
        summary.update(label=result["label"], positive=[round(float(p), 4) for p in result["positive"]])
    elif model.task == "translation":
        summary.update(translation=result["translation"])
    elif model.task == "custom":
        summary.update(outputs={k: {"shape": list(v.shape), "dtype": str(v.dtype),
                                    "values": np.round(v.astype(np.float64), 5).ravel()[:64].tolist()}
                                for k, v in result.items()})
    elif model.task == "generation":
        from ._images import grid, write_png

        write_png(png, grid(result["images"]))
        summary.update(images=len(result["images"]), png=str(png))
    else:
        summary.update(y=[round(float(v), 5) for v in result["y"]])
    return summary


def synthetic_inputs(model: Model, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Valid canonical inputs from the manifest alone (for timing: values do not matter, shapes do)."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in model.manifest["inputs"]:
        shape = [batch] + [d if d > 0 else 1 for d in t["shape"][1:]]
        if t.get("canonical_layout") == "NHWC" and t["layout"] == "NCHW" and len(shape) == 4:
            shape = [shape[0], shape[2], shape[3], shape[1]]
        elif t.get("canonical_layout") == "NCHW" and t["layout"] == "NHWC" and len(shape) == 4:
            shape = [shape[0], shape[3], shape[1], shape[2]]
        value_range = (model.preprocessing.get("value_ranges") or {}).get(t["name"])  # user models: valid ids
        if "int" in t["dtype"] and not t.get("quantization"):
            lo, hi = (int(value_range[0]), max(int(value_range[1]), int(value_range[0]) + 1)) if value_range else (4, 1000)
            out[t["name"]] = rng.integers(lo, hi, size=shape).astype(np.int32)
        elif model.task == "generation":
            out[t["name"]] = rng.standard_normal(shape).astype(np.float32)
        else:
            out[t["name"]] = rng.uniform(0, 1, size=shape).astype(np.float32)
    return out


def bench_bundle(bundle: str, threads: int = 1, runs: int = 200, warmup: int = 10,
                 interpreter: Optional[str] = None) -> dict[str, Any]:
    """Load time, first inference, p50/p90/p99 of `runs` batch-1 inferences after `warmup`, peak RSS."""
    start = time.perf_counter()
    model = Model.load(bundle, interpreter=interpreter, num_threads=threads)
    load_ms = (time.perf_counter() - start) * 1e3
    inputs = synthetic_inputs(model)
    start = time.perf_counter()
    model.predict(inputs)
    first_ms = (time.perf_counter() - start) * 1e3
    for _ in range(warmup):
        model.predict(inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.predict(inputs)
        times.append((time.perf_counter() - start) * 1e3)
    q = statistics.quantiles(times, n=100, method="inclusive")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"bundle": str(bundle), "model": model.manifest["model"], "framework": model.manifest["framework"],
            "mode": model.manifest["mode"], "interpreter": model.interpreter, "threads": threads, "runs": runs,
            "load_ms": round(load_ms, 3), "first_inference_ms": round(first_ms, 3),
            "p50_ms": round(statistics.median(times), 4), "p90_ms": round(q[89], 4), "p99_ms": round(q[98], 4),
            "peak_rss_mib": round(rss / 1024 if sys.platform != "darwin" else rss / 2**20, 1)}


def strict_json(payload: Any, warnings: Optional[list[str]] = None, where: str = "") -> Any:
    """`payload` with every NaN/infinity replaced by None (JSON has no NaN), each one noted in `warnings`."""
    if isinstance(payload, dict):
        return {k: strict_json(v, warnings, f"{where}.{k}" if where else str(k)) for k, v in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [strict_json(v, warnings, f"{where}[{i}]") for i, v in enumerate(payload)]
    if isinstance(payload, (float, np.floating)) and not math.isfinite(payload):
        if warnings is not None:
            warnings.append(f"{where} is {payload} (not finite): written as null")
        return None
    if isinstance(payload, np.generic):
        return payload.item()
    return payload


def print_json(payload: dict[str, Any]) -> None:
    """Strict JSON on stdout: non-finite numbers become null with a warning (in "warnings" and on stderr)."""
    warnings: list[str] = []
    clean = strict_json(payload, warnings)
    if warnings:
        clean["warnings"] = clean.get("warnings", []) + warnings
        for w in warnings:
            print(f"edgeproof: warning: {w}", file=sys.stderr)
    print(json.dumps(clean, indent=2, allow_nan=False))


# -- command handlers (edgeproof/cli.py maps subcommands to these) ---------------------------------

def run_command(args: Any) -> int:
    """`edgeproof run BUNDLE --input X [--self-test] [--public-key KEY]`."""
    print_json(run_bundle(args.bundle, args.input, interpreter=args.interpreter, output=args.output,
                          num_threads=args.threads, self_test=getattr(args, "self_test", False),
                          public_key=getattr(args, "public_key", None)))
    return 0


def selftest_command(args: Any) -> int:
    """`edgeproof selftest BUNDLE... [--interpreter NAME] [--public-key KEY]`: every bundle's golden
    self-test. Exit 0: all passed; 1: a self-test failed; 2: a bundle could not be checked at all."""
    from ._selftest import self_test

    results, code = [], 0
    for bundle in args.bundles:
        try:
            model = Model.load(bundle, interpreter=getattr(args, "interpreter", None),
                               num_threads=getattr(args, "threads", None), public_key=getattr(args, "public_key", None))
            result = self_test(model)
        except (EdgeproofError, ValueError) as err:
            print(f"edgeproof selftest: error: {err}", file=sys.stderr)
            results.append({"bundle": str(bundle), "passed": False, "error": str(err)})
            code = 2
            continue
        if not result.passed:
            print(f"edgeproof selftest: {result.summary()}", file=sys.stderr)
            code = max(code, 1)
        results.append(result.to_dict())
    print_json({"passed": code == 0, "bundles": results})
    return code


def verify_bundle_command(args: Any) -> int:
    """`edgeproof verify-bundle BUNDLE... --public-key KEY`: signature, then every file's sha256."""
    from ._bundle_signing import verify_bundle_signature
    from ._manifest import load_manifest

    out = []
    for bundle in args.bundles:
        check = verify_bundle_signature(bundle, args.public_key)
        manifest = load_manifest(bundle)
        out.append({**check, "bundle": str(bundle), "files": len(manifest["files"]),
                    "verdict": manifest["verdict"]["status"]})
    print_json({"verified": True, "bundles": out})
    return 0


def add_trust_commands(sub: Any) -> None:
    """argparse for issue 19's commands, added to edgeproof's subparsers `sub`: `selftest`,
    `verify-bundle`, and `--self-test` / `--public-key` on the existing `run` parser."""
    interpreters = ["auto", "ai_edge_litert", "tflite_runtime", "tensorflow"]
    key_help = "PEM public key: refuse the bundle unless its model-signing signature (every file) verifies"
    if "run" in sub.choices:
        sub.choices["run"].add_argument("--public-key", metavar="KEY", help=key_help)
        sub.choices["run"].add_argument("--self-test", action="store_true",
                                        help="first run the bundle's golden self-test; refuse a model that fails it")
    p = sub.add_parser("selftest", help="run bundles' golden self-tests (probes + the gate's outputs)",
                       description="Re-run each bundle's probe inputs and compare with the outputs the deploy gate "
                                   "measured for that artifact. Exit 0: all passed; 1: a self-test failed; 2: a "
                                   "bundle could not be checked.")
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle folders (with manifest.json)")
    p.add_argument("--interpreter", choices=interpreters, default="auto",
                   help="TFLite interpreter to use (default: the first one installed)")
    p.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default: the interpreter's)")
    p.add_argument("--public-key", metavar="KEY", help=key_help)
    p = sub.add_parser("verify-bundle", help="verify bundles' signatures (OpenSSF model-signing) and checksums",
                       description="Check each bundle's model.sig against a public key, then every file's sha256. "
                                   "Needs the signing extra: pip install \"edgeproof[signing]\".")
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle folders (with manifest.json and model.sig)")
    p.add_argument("--public-key", required=True, metavar="KEY", help="PEM elliptic-curve public key")
