"""One benchmark process per thread count: `python -m benchmarks._worker JOB.json`.

TensorFlow's thread pools are fixed at its first op, so every thread count gets a fresh process;
inside it every runtime is set to the same count (TFLite num_threads, torch.set_num_threads,
ONNX Runtime intra-op threads, TF intra-op threads) and each model's artifacts and peers are timed
interleaved. One JSON line per group is appended to the job's results file as soon as it is done,
so a crash loses only the group it happened in.
"""
from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

QUANT_ORDER = ("fp32", "fp16", "dynamic", "int8", "uint8")


def _say(threads: int, text: str) -> None:
    print(f"  [{threads} thread{'s' if threads > 1 else ''}] {text}", flush=True)


def _setup_threads(threads: int, need_tf: bool, need_torch: bool) -> dict[str, Any]:
    """Pin every runtime of this process to `threads` before any of them runs an op."""
    versions: dict[str, Any] = {}
    if need_tf:
        from edgeproof._frameworks import import_tensorflow

        tf = import_tensorflow()
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        versions["tensorflow"] = tf.__version__
    if need_torch:
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set (a parallel op ran): the intra-op count is what matters
            pass
        versions["torch"] = torch.__version__
    return versions


def _contestant_dict(c, summary) -> dict[str, Any]:
    return {"name": c.name, "kind": c.kind, "mode": c.mode, "bundle": c.bundle,
            "load_ms": None if c.load_ms is None else round(c.load_ms, 3),
            "first_ms": None if c.first_ms is None else round(c.first_ms, 3),
            "steady": summary.to_dict() if summary else None, "error": c.error, **c.extra}


def _run_group(job: dict[str, Any], group: dict[str, Any], plan) -> dict[str, Any]:
    from edgeproof import get_spec

    from . import _contestants as C
    from ._timing import interleave

    threads = job["threads"]
    bundles = sorted(group["bundles"], key=lambda b: QUANT_ORDER.index(b["mode"]) if b["mode"] in QUANT_ORDER else 99)
    try:
        spec = get_spec(group["model"])
        inputs = spec.probe_inputs(n=1)
    except Exception:  # not a registry model (a user's own): valid inputs from its manifest, no peers
        from edgeproof.runtime import Model
        from edgeproof.runtime._commands import synthetic_inputs

        spec, inputs = None, synthetic_inputs(Model.load(bundles[0]["path"]))
    contestants = []
    for b in bundles:
        contestants += C.tflite_contestants(Path(b["path"]), inputs, threads, diagnose=group.get("diagnose", False))
    checkpoint = Path(group["checkpoint"]) if group.get("checkpoint") else None
    if spec is None:
        contestants.append(C.unavailable("source model", "peer", "not a registry model: no peer to compare with"))
    elif job.get("peers", True):
        if checkpoint is None:
            contestants.append(C.unavailable(f"{group['framework']} source model", "peer",
                                             "no checkpoint/ in the artifacts folder"))
        elif group["framework"] == "keras":
            contestants.append(C.keras_contestant(checkpoint, inputs))
        else:
            contestants += C.torch_contestants(checkpoint, inputs, compile_=job.get("compile", True))
        if group.get("onnx"):
            contestants.append(C.ort_contestant(Path(group["onnx"]), spec, inputs, threads))
    for c in contestants:
        if c.error:
            _say(threads, f"{group['model']}/{group['framework']} {c.name}: {c.error}")
        else:
            first = f", first {c.first_ms:.4g} ms" if c.first_ms is not None else ""
            _say(threads, f"{group['model']}/{group['framework']} {c.name}: load {c.load_ms:.4g} ms{first}")
    start = time.perf_counter()
    result = interleave({c.name: c.call for c in contestants if c.call is not None}, plan,
                        progress=lambda line: _say(threads, f"{group['model']}/{group['framework']} {line}"))
    for name, error in result.errors.items():
        c = next(c for c in contestants if c.name == name)
        c.error = f"failed while timing: {error}"
    out = {"kind": "group", "model": group["model"], "framework": group["framework"], "threads": threads,
           "seconds": round(time.perf_counter() - start, 1),
           "contestants": [_contestant_dict(c, result.summary(c.name)) for c in contestants]}
    if job.get("torch_macs") and group["framework"] == "torch" and checkpoint is not None and spec is not None:
        try:
            out["torch_macs"], out["torch_uncounted_ops"] = C.torch_macs(checkpoint, inputs)
        except Exception as err:
            out["torch_macs_error"] = C._reason(err)
    return out


def _run_floors(job: dict[str, Any], plan) -> dict[str, Any]:
    from . import _contestants as C
    from ._timing import interleave

    threads = job["threads"]
    contestants = C.floor_contestants(threads, torch_too=job.get("need_torch", True))
    result = interleave({c.name: c.call for c in contestants if c.call is not None}, plan,
                        progress=lambda line: _say(threads, f"floor {line}"))
    return {"kind": "floors", "threads": threads,
            "contestants": [_contestant_dict(c, result.summary(c.name)) for c in contestants]}


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def main(argv: list[str]) -> int:
    from ._timing import Plan

    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    results = Path(job["results"])
    threads = int(job["threads"])
    plan = Plan(**job["plan"])
    versions = _setup_threads(threads, job.get("need_tf", True), job.get("need_torch", True))
    _append(results, {"kind": "start", "threads": threads, "pid": os.getpid(), "versions": versions})
    for group in job["groups"]:
        record = _run_group(job, group, plan)
        _append(results, record)
        gc.collect()
        if group["framework"] == "keras":
            try:
                import tf_keras

                tf_keras.backend.clear_session()
            except ImportError:
                pass
    if job.get("floors", True):
        _append(results, _run_floors(job, plan))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
