"""Verification of a user's own model: every artifact run in its own runtime (TFLite interpreter, TF.js
under Node) on probes drawn from the sample data and on the whole sample data, every output compared
with the source model (Keras itself, onnxruntime on the ONNX file, the eager torch module), budgets
checked per output. With labels the first output is also scored (accuracy or mse, plus top-1
agreement for accuracy); without, the verdict is numeric parity only and says so."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from edgeproof._spec import ModelSpec
from edgeproof.convert._artifact import ArtifactRecord
from edgeproof.convert._byom_spec import NO_LABELS, decisions, score, static_batch
from edgeproof.runtime._signature import bind, from_artifact, to_artifact

from ._api import ModelVerification, Reference, _write_parity
from ._loop import select_records, verify_each
from ._measures import compare
from ._runners import TFLitePredictor, canonical
from ._verdict import ArtifactVerdict, Failure, Status, check_budget, metric_drop

Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def batched(predict: Predict, inputs: dict[str, np.ndarray], batch_size: int = 256) -> dict[str, np.ndarray]:
    n = len(next(iter(inputs.values())))
    parts = [predict({k: v[i:i + batch_size] for k, v in inputs.items()}) for i in range(0, n, batch_size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class _TfjsAll:
    """A TF.js graph model under Node returning every output, through the same signature binding."""

    def __init__(self, spec: ModelSpec, record: ArtifactRecord, root: Path, node):
        ins, outs = canonical(spec)
        self.inputs = bind(ins, [vars(t) for t in record.inputs])
        self.outputs = bind(outs, [vars(t) for t in record.outputs])
        self.node = node
        self.runtime = f"tfjs {node.load(root / record.path)['backend']} (Node)"

    def feed(self, inputs):
        return {b.name: to_artifact(b, inputs[b.canonical]) for b in self.inputs}

    def __call__(self, inputs):
        raw = self.node.predict(self.feed(inputs))
        return {b.canonical: from_artifact(b, raw[b.name]) for b in self.outputs}

    def latency_ms(self, example) -> float:
        return float(self.node.time(self.feed(example), warmup=3, repeats=20)["median_ms"])


class _TfliteAll(TFLitePredictor):
    """TFLitePredictor returning every output (by canonical name), not only the first."""

    def __call__(self, inputs):
        return self.runner(inputs)


def _worst(per_output: dict[str, dict]) -> dict:
    """One probe summary over every output: the largest errors, the smallest cosine."""
    rows = list(per_output.values())
    if any(r.get("non_finite_fraction") for r in rows):
        return {"max_abs_error": None, "mean_abs_error": None, "cosine": None,
                "non_finite_fraction": max(r.get("non_finite_fraction") or 0.0 for r in rows), "top1_agreement": None}
    return {"max_abs_error": max(r["max_abs_error"] for r in rows),
            "mean_abs_error": float(np.mean([r["mean_abs_error"] for r in rows])),
            "cosine": min(r["cosine"] for r in rows), "top1_agreement": rows[0].get("top1_agreement")}


def verify_user_model(spec: ModelSpec, source: str, root: Path, records: list[ArtifactRecord], reference: Predict,
                      inputs: dict[str, np.ndarray], labels: Optional[np.ndarray], threshold: float, *,
                      targets: Optional[Iterable[str]] = None, modes: Optional[Iterable[str]] = None,
                      tfjs_backend: str = "wasm", progress: bool = True) -> ModelVerification:
    """Verify the user model's artifacts in `root` (its conversion.json records); write parity.json."""
    say = print if progress else (lambda *a, **k: None)
    records = select_records(records, targets, modes)
    metric = spec.metric.name
    first = spec.outputs[0].name
    n = len(next(iter(inputs.values())))
    probes = spec.probe_inputs()
    step = static_batch(spec.inputs) or 256  # a fixed-batch model runs in steps of its batch
    say(f"[{spec.name}/{source}] reference ({source} model) on {n} sample examples", flush=True)
    reference_probe = reference(probes)
    reference_all = batched(reference, inputs, step)
    reference_value = score(metric, reference_all[first], labels, threshold)
    evaluation = {metric: reference_value} if reference_value is not None else {"parity": NO_LABELS}
    ref = Reference(spec.name, source, "user", metric, float("nan") if reference_value is None else reference_value,
                    evaluation, n, len(next(iter(probes.values()))))
    result = ModelVerification(ref)
    latency_example = {k: v[:static_batch(spec.inputs) or 1] for k, v in probes.items()}

    def new_verdict(record):
        verdict = ArtifactVerdict(spec.name, source, record.target, record.mode, record.route, Status.UNSUPPORTED,
                                  path=record.path, size_bytes=record.size_bytes, metric=metric,
                                  reference_metric=reference_value, budget=asdict(spec.budget(record.mode)))
        if reference_value is None:
            verdict.details["parity"] = NO_LABELS
        return verdict

    def predictor(record, node):
        return _TfjsAll(spec, record, root, node) if node is not None else _TfliteAll(spec, record, root)

    def run(predictor):
        return (batched(predictor, probes, step), batched(predictor, inputs, step),
                round(predictor.latency_ms(latency_example), 4))

    def judge(verdict, record, outputs) -> str:
        artifact_probe, artifact_all, verdict.latency_ms = outputs
        per_output = {t.name: compare(spec.task, reference_probe[t.name], artifact_probe[t.name])
                      for t in spec.outputs}
        verdict.probe = _worst(per_output)
        verdict.test_examples = n
        if reference_value is not None:
            verdict.artifact_metric = score(metric, artifact_all[first], labels, threshold)
            verdict.metric_drop = metric_drop(spec.metric, reference_value, verdict.artifact_metric)
            if not np.isfinite(verdict.metric_drop):
                verdict.metric_drop = float("inf")
            if metric == "accuracy":
                verdict.test_agreement = float(np.mean(decisions(reference_all[first], threshold)
                                                       == decisions(artifact_all[first], threshold)))
        verdict.details["per_output"] = per_output
        verdict.details["sample_max_abs_error"] = {
            t.name: float(np.max(np.abs(reference_all[t.name].astype(np.float64)
                                        - artifact_all[t.name].astype(np.float64)))) for t in spec.outputs}
        failures = []
        for i, t in enumerate(spec.outputs):
            failures += check_budget(verdict.key, t.name, spec.budget(record.mode), per_output[t.name],
                                     verdict.metric_drop if i == 0 else None,
                                     verdict.test_agreement if i == 0 else None)
        verdict.failures = [Failure.of(e) for e in failures]
        if len(spec.outputs) > 1:  # say which output broke its budget (the summary shows measures only)
            verdict.failures = [Failure(f.output, f"{f.output}: {f.measure}", f.measured, f.limit)
                                for f in verdict.failures]
        verdict.status = Status.FAIL if failures else Status.PASS
        result.probe_outputs[record.key] = (np.concatenate([np.ravel(reference_probe[t.name]) for t in spec.outputs]),
                                            np.concatenate([np.ravel(artifact_probe[t.name]) for t in spec.outputs]))
        measured = (f"{metric} {verdict.artifact_metric:.4g} vs {reference_value:.4g}"
                    if reference_value is not None else NO_LABELS)
        return f"{measured}, max error {verdict.probe['max_abs_error'] or float('nan'):.2g}"

    result.verdicts = verify_each(records, root, new_verdict=new_verdict, predictor=predictor, run=run, judge=judge,
                                  tfjs_backend=tfjs_backend, say=say)
    _write_parity(root, result)
    return result
