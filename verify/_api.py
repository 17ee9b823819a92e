"""`verify()`: every converted artifact of one model, run in its own runtime and proven against the
reference model (the Keras or PyTorch original) on fixed probes and on the whole test split."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from edgeproof._atomic import write_bytes_atomic
from edgeproof._quant import Target, all_configs
from edgeproof._registry import get_spec
from edgeproof._spec import Framework, ModelSpec, Task
from edgeproof.errors import EdgeproofError

from ._loop import select_records, verify_each
from ._measures import agreement, compare
from ._verdict import ArtifactVerdict, Failure, Status, check_budget, metric_drop

PARITY_JSON = "parity.json"


class NotConvertedError(EdgeproofError):
    """verify was asked about a model that has no conversion.json."""


@dataclass
class Reference:
    """The source model's own results on the same data, which every artifact is judged against."""

    model: str
    framework: str
    profile: str
    metric: str
    value: float
    evaluation: dict[str, Any]
    test_examples: int
    probe_examples: int


@dataclass
class ModelVerification:
    reference: Reference
    verdicts: list[ArtifactVerdict] = field(default_factory=list)
    # For plots: per artifact key, (reference probe outputs, artifact probe outputs).
    probe_outputs: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)


def _test_agreement(spec: ModelSpec, reference: np.ndarray, artifact: np.ndarray) -> Optional[float]:
    if spec.task is Task.TRANSLATION:
        return None  # judged by BLEU; identical translations are reported as a detail
    return agreement(spec.task, reference, artifact)


def _predictor(spec, record, root, tfjs_runner, num_threads: int):
    from ._runners import TfjsPredictor, TFLitePredictor

    if record.target == Target.TFLITE.value:
        return TFLitePredictor(spec, record, root, num_threads=num_threads)
    return TfjsPredictor(spec, record, root, tfjs_runner)


def verify(model: str, framework: Framework | str, *, artifacts: Path | str = "artifacts",
           targets: Optional[Iterable[str]] = None, modes: Optional[Iterable[str]] = None,
           data_dir: Optional[str] = None, tfjs_backend: str = "wasm", progress: bool = True,
           num_threads: int = 2) -> ModelVerification:
    """Verify the converted artifacts of one model; write parity.json beside conversion.json.
    `num_threads`: the TFLite interpreter's threads (1 when verify_pairs runs one pair per core)."""
    from edgeproof.convert._api import load_records
    from edgeproof.train import find_judge, load_checkpoint, model_dir, predictor_for
    from edgeproof.train._data import load_dataset
    from edgeproof.train._evaluate import score, test_outputs

    spec = get_spec(model)
    framework = Framework(framework)
    root = model_dir(artifacts, spec.name, framework)
    say = print if progress else (lambda *a, **k: None)
    records = load_records(root)
    if not records:
        raise NotConvertedError(f"{root} has no conversion.json: run `edgeproof convert --model {spec.name} "
                                f"--framework {framework.value}` first")
    records = select_records(records, targets, modes)

    checkpoint = load_checkpoint(root / "checkpoint")
    profile = checkpoint.meta.get("profile", "default")
    data = spec.prepare_data(load_dataset(spec.dataset, data_dir=data_dir), spec.profile(profile),
                             checkpoint.meta.get("seed", 0))
    judge = find_judge(artifacts) if spec.task is Task.GENERATION else None
    reference_predict = predictor_for(checkpoint)
    probes = spec.probe_inputs()
    say(f"[{spec.name}/{framework.value}] reference ({profile} profile) on {data.n_test} test examples", flush=True)
    reference_probe = reference_predict(probes)
    reference_test = test_outputs(spec, reference_predict, data)
    reference_eval = score(spec, reference_test, data, reference_predict, judge)
    reference = Reference(spec.name, framework.value, profile, spec.metric.name,
                          float(reference_eval[spec.metric.name]), reference_eval, data.n_test,
                          len(next(iter(probes.values()))))
    result = ModelVerification(reference)
    latency_example = {k: v[:1] for k, v in probes.items()}

    def new_verdict(record):
        return ArtifactVerdict(spec.name, framework.value, record.target, record.mode, record.route,
                               Status.UNSUPPORTED, path=record.path, size_bytes=record.size_bytes,
                               metric=spec.metric.name, reference_metric=reference.value,
                               budget=asdict(spec.budget(record.mode)))

    def run(predictor):
        artifact_probe = predictor(probes)
        artifact_test = test_outputs(spec, predictor, data, decode=predictor.decode)
        artifact_eval = score(spec, artifact_test, data, predictor, judge)
        return artifact_probe, artifact_test, artifact_eval, round(predictor.latency_ms(latency_example), 4)

    def judge_artifact(verdict, record, outputs) -> str:
        artifact_probe, artifact_test, artifact_eval, verdict.latency_ms = outputs
        verdict.probe = compare(spec.task, reference_probe, artifact_probe)
        verdict.artifact_metric = float(artifact_eval[spec.metric.name])
        verdict.metric_drop = metric_drop(spec.metric, reference.value, verdict.artifact_metric)
        if not np.isfinite(verdict.metric_drop):  # NaN outputs give a NaN metric: as bad as it gets
            verdict.metric_drop = float("inf")
        verdict.test_examples = data.n_test
        verdict.test_agreement = _test_agreement(spec, reference_test, artifact_test)
        verdict.details = {k: v for k, v in artifact_eval.items() if k != spec.metric.name}
        if spec.task is Task.TRANSLATION:
            verdict.details["identical_translations"] = float(np.mean(np.all(reference_test == artifact_test, axis=1)))
        failures = check_budget(verdict.key, spec.outputs[0].name, spec.budget(record.mode), verdict.probe,
                                verdict.metric_drop, verdict.test_agreement)
        verdict.failures = [Failure.of(e) for e in failures]
        verdict.status = Status.FAIL if failures else Status.PASS
        result.probe_outputs[record.key] = (np.asarray(reference_probe), np.asarray(artifact_probe))
        return (f"{spec.metric.name} {verdict.artifact_metric:.4g} vs {reference.value:.4g}, "
                f"max error {verdict.probe['max_abs_error'] or float('nan'):.2g}")

    result.verdicts = verify_each(
        records, root, new_verdict=new_verdict,
        predictor=lambda record, tfjs_runner: _predictor(spec, record, root, tfjs_runner, num_threads),
        run=run, judge=judge_artifact, tfjs_backend=tfjs_backend, say=say)
    _write_parity(root, result)
    return result


def _write_parity(root: Path, result: ModelVerification) -> None:
    """parity.json: this run's verdicts merged over the earlier ones for cells it did not verify."""
    path = root / PARITY_JSON
    existing: dict[tuple[str, str], dict] = {}
    if path.exists():
        try:
            existing = {(r["target"], r["mode"]): r for r in json.loads(path.read_text())["artifacts"]}
        except (json.JSONDecodeError, KeyError):
            existing = {}
    for v in result.verdicts:
        existing[(v.target, v.mode)] = v.to_dict()
    order = [(c.target.value, c.mode.value) for c in all_configs()]
    payload = {"reference": asdict(result.reference), "artifacts": [existing[k] for k in order if k in existing]}
    payload = json.loads(json.dumps(payload, default=_json_default))  # numpy -> Python
    write_bytes_atomic(path, json.dumps(_finite(payload), indent=2, allow_nan=False).encode())


def _finite(value: Any) -> Any:
    """NaN / inf -> None: parity.json must be strict JSON (browsers and jq reject NaN)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "value"):
        return value.value
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def load_verdicts(root: Path | str) -> tuple[Optional[dict], list[ArtifactVerdict]]:
    """(reference, verdicts) from a model folder's parity.json; (None, []) when it was never verified."""
    path = Path(root) / PARITY_JSON
    if not path.exists():
        return None, []
    payload = json.loads(path.read_text())
    return payload.get("reference"), [ArtifactVerdict.from_dict(r) for r in payload["artifacts"]]
