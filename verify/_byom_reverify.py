"""`edgeproof verify --model NAME` for a user's own model: the verification its `convert` ran, again, from
its folder artifacts/<name>/<keras|onnx|torch>/. The reference is the source model kept there
(source_model.*; for PyTorch the factory and weights user_model.json names), run on the sample data it
was converted with (the same rows, probes, metric and budgets); parity.json, report.md and the plots
are rewritten."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from edgeproof._spec import Layout
from edgeproof.errors import ModelFileNotFoundError, SampleDataError, UserModelError

from ._api import ModelVerification, load_verdicts

KERAS_FILES = ("source_model.keras", "source_model.h5", "source_model.hdf5", "source_model")


def _source_model(root: Path, info) -> str | Path:
    """What convert_user_model() takes as `model` to rebuild the reference."""
    if info.source == "onnx":
        path = root / "source_model.onnx"
    elif info.source == "keras":
        path = next((root / f for f in KERAS_FILES if (root / f).exists()), root / KERAS_FILES[0])
    else:
        if ":" not in info.source_path:
            raise UserModelError(f"{info.name} was converted from a PyTorch module given in Python "
                                 f"({info.source_path}), which cannot be rebuilt: convert it again to verify it")
        return info.source_path
    if not path.exists():
        raise ModelFileNotFoundError(f"{root} has no {path.name} (the source model as given): convert the model again")
    return path


def _sample(info, sample_data):
    from edgeproof.convert._byom_sample import load_sample_data

    if sample_data is None:
        if info.sample_data == "sample_data":  # arrays given in Python: not kept
            raise SampleDataError(f"{info.name} was converted with sample data given as arrays in Python: pass "
                                  f"them again (sample_data=) or convert the model again")
        if not Path(info.sample_data).exists():
            raise ModelFileNotFoundError(f"the sample data {info.name} was converted with, {info.sample_data}, is "
                                         f"gone: put it back or convert the model again")
        sample_data = info.sample_data
    return load_sample_data(sample_data)


def reverify_user_model(root: Path | str, *, targets: Optional[Iterable[str]] = None,
                        modes: Optional[Iterable[str]] = None, custom_objects: Optional[Mapping[str, Any]] = None,
                        sample_data=None, tfjs_backend: str = "wasm", progress: bool = True) -> ModelVerification:
    """Verify the artifacts in `root` (a user model's folder) against its source model again; rewrite
    parity.json (merged over cells not verified this time), report.md and the plots.
    custom_objects: the Keras custom layers it needed to convert; sample_data: instead of the recorded file."""
    from edgeproof.convert._api import load_records
    from edgeproof.convert._byom import _open_source, _write_model_report
    from edgeproof.convert._byom_spec import (PROBE_COUNT, USER_MODEL_JSON, Declared, chunked, load_user_spec,
                                              read_info, resolve_inputs, static_batch)

    from ._byom import verify_user_model

    root = Path(root)
    info = read_info(root)
    if info is None:
        raise UserModelError(f"{root} has no {USER_MODEL_JSON}: it is not a user model's folder")
    records = load_records(root)
    if not records:
        raise UserModelError(f"{root} has no conversion.json: convert the model again")
    sample = _sample(info, sample_data)  # cheap checks before the frameworks load
    declared = [Declared(t["name"], t["source_name"], tuple(t["shape"]), t["dtype"]) for t in info.inputs]
    _, inputs, _ = resolve_inputs(declared, sample, info.source, {},
                                  {t["name"]: Layout(t["layout"]) for t in info.inputs})
    n = info.examples
    if sample.count < n:
        raise SampleDataError(f"{sample.where} has {sample.count} examples; {info.name} was converted on {n}")
    inputs = {k: v[:n] for k, v in inputs.items()}
    labels = None
    if info.labels:
        if sample.labels is None:
            raise SampleDataError(f"{sample.where} has no labels any more; {info.name} was scored by {info.metric}")
        labels = sample.labels[:n]
    source = _open_source(info.source, _source_model(root, info), info.weights, custom_objects)
    if info.source == "torch":
        source.declared_inputs(sample)  # the input order of forward(), as at conversion
    spec = load_user_spec(root)
    step = static_batch(spec.inputs)
    count = min(PROBE_COUNT, n) // (step or 1) * (step or 1)
    spec = load_user_spec(root, {k: v[:count] for k, v in inputs.items()})
    verification = verify_user_model(spec, info.source, root, records, chunked(source.reference, step or 256), inputs,
                                     labels, info.threshold, targets=targets, modes=modes, tfjs_backend=tfjs_backend,
                                     progress=progress)
    everything = ModelVerification(verification.reference, load_verdicts(root)[1], verification.probe_outputs)
    _write_model_report(root, spec, info, records, everything)  # every verdict in parity.json, not just these
    return verification
