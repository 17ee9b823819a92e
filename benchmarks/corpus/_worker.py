"""One corpus model in its own process: `python -m benchmarks.corpus._worker NAME --out DIR [--no-convert] [--repair]`.

Builds the model (cached under DIR/models/NAME-<hash>/, the hash covering the entry's file and the shared builder
modules), runs the source model on its sample data (onnxruntime / Keras / the torch factory + weights), then
`edgeproof.convert.convert_user_model` in all seven cells into DIR/artifacts/NAME/<kind>/. Writes
DIR/results/NAME.json: the build, the source check, and the conversion's outcome (a typed error's class and
message when convert_user_model raised); with --repair, the repair ladder's outcomes (the pipeline's repair stage,
which writes repair.json beside parity.json). The parent (benchmarks.corpus._run) reads it with conversion.json and
parity.json."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ._entry import BuiltModel, SourceKind
from ._registry import HERE, get, module_file

SHARED = ("_build.py", "_data.py", "_export.py", "_hf.py", "_entry.py")


def build_hash(name: str) -> str:
    digest = hashlib.sha256()
    for path in [module_file(name)] + [HERE / s for s in SHARED]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _built_to_dict(b: BuiltModel) -> dict[str, Any]:
    return {"model": b.model, "kind": b.kind.value, "sample": str(b.sample),
            "weights": None if b.weights is None else str(b.weights), "input_shapes": b.input_shapes,
            "layouts": b.layouts, "meta": b.meta}


def _built_from_dict(d: dict[str, Any]) -> BuiltModel:
    return BuiltModel(d["model"], SourceKind(d["kind"]), Path(d["sample"]),
                      None if d["weights"] is None else Path(d["weights"]), d.get("input_shapes"), d.get("layouts"),
                      d.get("meta") or {})


def build_cached(name: str, out: Path, say=print) -> tuple[BuiltModel, bool, float]:
    """(the built model, whether it came from the cache, build seconds). A build goes to a temporary sibling
    folder renamed into place, so an interrupted build leaves nothing that looks cached."""
    folder = out / "models" / f"{name}-{build_hash(name)}"
    record = folder / "built.json"
    if record.is_file():
        built = _built_from_dict(json.loads(record.read_text()))
        if Path(built.sample).is_file() and (built.kind is SourceKind.TORCH or Path(built.model).exists()):
            return built, True, 0.0
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    start = time.perf_counter()
    try:
        built = get(name).build(tmp)
        seconds = time.perf_counter() - start
        # paths inside the temporary folder move with it
        d = json.loads(json.dumps(_built_to_dict(built), default=str).replace(str(tmp), str(folder)))
        d["meta"]["build_seconds"] = round(seconds, 1)
        (tmp / "built.json").write_text(json.dumps(d, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _built_from_dict(d), False, seconds


def torch_module(built: BuiltModel):
    """The factory's module with the weights loaded (weights_only: no unpickling), eval mode."""
    import importlib

    import torch

    module_name, _, attr = built.model.partition(":")
    module = getattr(importlib.import_module(module_name), attr)()
    if built.weights is not None:
        module.load_state_dict(torch.load(str(built.weights), map_location="cpu", weights_only=True), strict=True)
    return module.eval()


def _torch_outputs(built: BuiltModel, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import torch

    with torch.no_grad():
        result = torch_module(built)(*[torch.from_numpy(a) for a in arrays.values()])
    values = (result.values() if isinstance(result, dict)
              else result if isinstance(result, (tuple, list)) else [result])
    return {f"output_{i}": v.numpy() for i, v in enumerate(values)}


def source_check(built: BuiltModel) -> dict[str, Any]:
    """The source model on its sample data (what convert_user_model will take as the reference): output shapes,
    finiteness and the largest |value|."""
    with np.load(built.sample, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in ("labels", "y")}
    if built.kind is SourceKind.ONNX:
        import onnxruntime as ort

        session = ort.InferenceSession(built.model, providers=["CPUExecutionProvider"])
        feed = {i.name: arrays[i.name] for i in session.get_inputs()}
        outs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    elif built.kind is SourceKind.KERAS:
        from edgeproof._frameworks import import_tf_keras

        model = import_tf_keras().models.load_model(built.model, compile=False)
        args = [arrays[n] for n in model.input_names] if len(model.inputs) > 1 else next(iter(arrays.values()))
        values = model.predict(args, verbose=0)
        outs = {f"output_{i}": np.asarray(v) for i, v in enumerate(values if isinstance(values, list) else [values])}
    else:
        outs = _torch_outputs(built, arrays)
    return {name: {"shape": list(v.shape), "dtype": str(v.dtype), "finite": bool(np.all(np.isfinite(v))),
                   "max_abs": float(np.max(np.abs(v))) if v.size else 0.0} for name, v in outs.items()}


def public_api():
    """edgeproof.convert_user_model (the public API; older trees had it in edgeproof.convert only)."""
    import edgeproof

    try:
        return edgeproof.convert_user_model
    except AttributeError:
        from edgeproof.convert import convert_user_model

        return convert_user_model


def _error(err: BaseException) -> dict[str, Any]:
    text = " ".join(str(err).split())
    return {"type": type(err).__name__, "module": type(err).__module__, "message": text[:2000],
            "typed": type(err).__module__.startswith("edgeproof"),
            "traceback_tail": traceback.format_exc().strip().splitlines()[-6:]}


def _repair(name: str, out: Path) -> dict[str, Any]:
    """The pipeline's repair ladder (`edgeproof repair`) on the model's 8-bit cells that did not pass."""
    from dataclasses import asdict

    from edgeproof.pipeline import PipelineOptions, repair_stage

    start = time.perf_counter()
    try:
        outcomes = repair_stage(PipelineOptions(artifacts=str(out / "artifacts"), models=[name]))
        report: dict[str, Any] = {"ok": True, "outcomes": [asdict(o) for o in outcomes]}
    except Exception as err:
        report = {"ok": False, "error": _error(err)}
        print(f"[{name}] repair raised {type(err).__name__}: {err}", flush=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def run(name: str, out: Path, convert: bool = True, repair: bool = False) -> dict[str, Any]:
    out = out.resolve()
    result: dict[str, Any] = {"name": name, "entry": get(name).describe()}
    (out / "results").mkdir(parents=True, exist_ok=True)
    # a build-only run writes NAME.build.json and keeps the last conversion's record
    target = out / "results" / (f"{name}.json" if convert else f"{name}.build.json")
    target.unlink(missing_ok=True)
    try:
        built, cached, seconds = build_cached(name, out)
        result["build"] = {**_built_to_dict(built), "cached": cached, "seconds": round(seconds, 1)}
        print(f"[{name}] built ({'cached' if cached else f'{seconds:.0f} s'}): {built.model}", flush=True)
        result["source_check"] = source_check(built)
        print(f"[{name}] source model on its sample: {result['source_check']}", flush=True)
    except Exception as err:
        result["build_error"] = _error(err)
        print(f"[{name}] build failed: {result['build_error']['type']}: {result['build_error']['message']}", flush=True)
    if convert and "build_error" not in result:
        convert_user_model = public_api()
        start = time.perf_counter()
        try:
            convert_user_model(built.model, name=name, artifacts=out / "artifacts", progress=True,
                               **built.convert_kwargs())
            result["convert"] = {"ok": True}
        except Exception as err:
            result["convert"] = {"ok": False, "error": _error(err)}
            print(f"[{name}] convert_user_model raised {type(err).__name__}: {err}", flush=True)
        result["convert"]["seconds"] = round(time.perf_counter() - start, 1)
        if repair and result["convert"]["ok"]:
            result["repair"] = _repair(name, out)
    target.write_text(json.dumps(result, indent=2, default=str))
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    for key, value in (("TF_USE_LEGACY_KERAS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2"), ("HF_HUB_OFFLINE", "1"),
                       ("TFDF_DISABLE_WELCOME_MESSAGE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    p = argparse.ArgumentParser(prog="python -m benchmarks.corpus._worker")
    p.add_argument("name")
    p.add_argument("--out", required=True)
    p.add_argument("--no-convert", action="store_true", help="build and check the source model only")
    p.add_argument("--repair", action="store_true", help="then the repair ladder on the 8-bit cells that failed")
    args = p.parse_args(argv)
    result = run(args.name, Path(args.out), convert=not args.no_convert, repair=args.repair)
    return 0 if "build_error" not in result else 3


if __name__ == "__main__":
    sys.exit(main())
