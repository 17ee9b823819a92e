"""The numerical noise floor of each corpus source model: the same reference computed two ways, on the model's own
sample data, with the largest |output| beside it (what an absolute max-error budget should be compared with).

- onnxruntime with graph optimisations off (ORT_DISABLE_ALL) vs all on (ORT_ENABLE_ALL), for ONNX sources;
- float32 vs float64 of the torch module (torch sources) - the float32 model's distance from exact arithmetic;
- batch 1 vs the whole sample as one batch (every source: other GEMM blockings, other rounding).

`python -m benchmarks.corpus._noise --out DIR [--models a,b]` reads DIR/models (the corpus runner's cached builds)
(building any that is missing) and writes DIR/noise.json."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ._entry import BuiltModel, SourceKind
from ._registry import names as corpus_names
from ._worker import build_cached, torch_module

Run = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


def _max_diff(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    return float(max(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))) if x.size else 0.0
                     for x, y in zip(a, b)))


def _per_row(run: Run, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    n = len(next(iter(arrays.values())))
    parts = [run({k: v[i:i + 1] for k, v in arrays.items()}) for i in range(n)]
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


def _onnx(built: BuiltModel, arrays) -> dict[str, Any]:
    import onnxruntime as ort

    def session(level):
        opts = ort.SessionOptions()
        opts.graph_optimization_level = level
        opts.intra_op_num_threads = 1
        return ort.InferenceSession(built.model, opts, providers=["CPUExecutionProvider"])

    off, on = session(ort.GraphOptimizationLevel.ORT_DISABLE_ALL), session(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    feed = {i.name: arrays[i.name] for i in on.get_inputs()}
    ref_on, ref_off = on.run(None, feed), off.run(None, feed)
    single = _per_row(lambda f: on.run(None, f), feed)
    return {"outputs": [o.name for o in on.get_outputs()], "output_max_abs": [float(np.max(np.abs(r))) for r in ref_on],
            "ort_disable_vs_enable_all": _max_diff(ref_off, ref_on), "batch1_vs_batchN": _max_diff(single, ref_on)}


def _torch(built: BuiltModel, arrays) -> dict[str, Any]:
    import torch

    module = torch_module(built)

    def run(m, feed, dtype=None):
        args = [torch.from_numpy(v) if v.dtype.kind != "f" or dtype is None else torch.from_numpy(v).to(dtype)
                for v in feed.values()]
        with torch.no_grad():
            out = m(*args)
        values = out.values() if isinstance(out, dict) else (out if isinstance(out, (tuple, list)) else [out])
        return [v.double().numpy() for v in values]

    ref = run(module, arrays)
    single = _per_row(lambda f: run(module, f), arrays)
    exact = run(module.double(), arrays, torch.float64)
    return {"output_max_abs": [float(np.max(np.abs(r))) for r in ref], "float32_vs_float64": _max_diff(ref, exact),
            "batch1_vs_batchN": _max_diff(single, ref)}


def _keras(built: BuiltModel, arrays) -> dict[str, Any]:
    from edgeproof._frameworks import import_tf_keras

    model = import_tf_keras().models.load_model(built.model, compile=False)

    def run(feed):
        args = [feed[n] for n in model.input_names] if len(model.inputs) > 1 else next(iter(feed.values()))
        out = model(args, training=False)
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    ref = run(arrays)
    return {"output_max_abs": [float(np.max(np.abs(r))) for r in ref],
            "batch1_vs_batchN": _max_diff(_per_row(run, arrays), ref)}


def noise_floor(built: BuiltModel) -> dict[str, Any]:
    with np.load(built.sample, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in ("labels", "y")}
    measure = {SourceKind.ONNX: _onnx, SourceKind.TORCH: _torch, SourceKind.KERAS: _keras}[built.kind]
    return {"kind": built.kind.value, "rows": len(next(iter(arrays.values()))), **measure(built, arrays)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    for key, value in (("TF_USE_LEGACY_KERAS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2"), ("HF_HUB_OFFLINE", "1")):
        os.environ.setdefault(key, value)
    p = argparse.ArgumentParser(prog="python -m benchmarks.corpus._noise")
    p.add_argument("--out", required=True, help="the corpus runner's --out folder (its models/ are read)")
    p.add_argument("--models", help="comma-separated (default: every built model)")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    chosen = [m for m in (args.models.split(",") if args.models else corpus_names())]
    results = {}
    for name in chosen:
        try:
            built, _, _ = build_cached(name, out)  # the corpus runner's cached build (built now if missing)
            results[name] = noise_floor(built)
        except Exception as err:  # one model's failure is recorded, the others go on
            results[name] = {"error": f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"}
        print(f"{name}: {results[name]}", flush=True)
    (out / "noise.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
