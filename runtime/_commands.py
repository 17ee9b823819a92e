"""`edgeproof run` and `edgeproof bench` on a bundle: numpy + one TFLite interpreter, nothing else."""
from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ._model import Model
from ._signature import InputError


def _parse_input(model: Model, value: str) -> Any:
    """--input as the model's task reads it: an image/.npy path, text, a seed, or numbers."""
    if model.task == "classification":
        from ._images import read_image

        return read_image(value)
    if model.task in ("binary_classification", "translation"):
        return value
    if model.task == "custom":  # a user's own model: a .npz of inputs by name, or a .npy for a single input
        if value.endswith(".npz"):
            with np.load(value, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        if value.endswith(".npy"):
            return np.load(value, allow_pickle=False)
        raise InputError(f"this model takes its raw input tensors: a .npz with one array per input "
                         f"({', '.join(t['name'] for t in model.manifest['inputs'])}) or a .npy; got {value!r}")
    if model.task == "generation":
        try:
            return int(value)
        except ValueError:
            if value.endswith(".npy"):
                return np.load(value, allow_pickle=False)
            raise InputError(f"the GAN takes an integer seed (or a .npy of latent vectors), got {value!r}") from None
    if value.endswith(".npy"):
        return np.load(value, allow_pickle=False)
    try:
        return np.array([float(v) for v in value.split(",")], dtype=np.float32)
    except ValueError:
        raise InputError(f"linreg takes numbers, e.g. --input 1.5,2,3 (got {value!r})") from None


def run_bundle(bundle: str, value: str, interpreter: Optional[str] = None, output: Optional[str] = None,
               num_threads: Optional[int] = None) -> dict[str, Any]:
    model = Model.load(bundle, interpreter=interpreter, num_threads=num_threads)
    result = model(_parse_input(model, value))
    summary: dict[str, Any] = {"bundle": str(bundle), "model": model.manifest["model"],
                               "framework": model.manifest["framework"], "mode": model.manifest["mode"],
                               "interpreter": model.interpreter, "verdict": model.manifest["verdict"]["status"]}
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

        path = Path(output or f"{model.manifest['model']}-seed{value}.png")
        write_png(path, grid(result["images"]))
        summary.update(images=len(result["images"]), png=str(path))
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


def print_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, indent=2))
