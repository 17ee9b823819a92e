"""`verify_source()`: every converted artifact of one model, run in its own runtime and proven against the
source model (a zoo checkpoint, or a user's Keras / ONNX / PyTorch model) on fixed probes and on its whole
evaluation set (the test split, or the user's sample data). One driver for every Source."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from edgeproof import _log
from edgeproof._atomic import write_bytes_atomic
from edgeproof._metrics import NO_LABELS, agreement, metric_drop
from edgeproof._quant import QuantMode
from edgeproof._spec import Framework
from edgeproof._util import batched
from edgeproof.convert import Source, load_records
from edgeproof.convert._records import cell_order, read_about
from edgeproof.convert._source import EvalSet
from edgeproof.errors import EdgeproofError
from edgeproof.runtime._decode import greedy_decode

from ._browser_rows import BROWSER_RUNTIMES, browser_rows
from ._budgets import apply_overrides, describe, effective, output_budget
from ._loop import select_records, verify_each
from ._measures import compare, worst
from ._runners import ArtifactPredictor, load_predictor
from ._stats import judge_drop
from ._verdict import ArtifactVerdict, Failure, Status, check_budget

PARITY_JSON = "parity.json"
BATCH = 256


class NotConvertedError(EdgeproofError):
    """verify was asked about a model that has no conversion.json."""


class VerdictFileError(EdgeproofError):
    """A parity.json that cannot be read as one (damaged, hand-edited, hostile)."""


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
    # For plots: per artifact key, (reference probe outputs, artifact probe outputs), every output raveled.
    probe_outputs: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    baseline: Any = field(default=None, repr=False)  # the source model's own results, reusable (a repair ladder)


def _outputs_on(evalset: EvalSet, predict, decode) -> Any:
    """A model's outputs on the whole evaluation set: every output, or a translator's decoded ids."""
    if evalset.decode is not None:
        return decode(evalset.inputs["source_ids"], *evalset.decode)
    return batched(predict, evalset.inputs, BATCH)


@dataclass
class _Baseline:
    """The source model on the probes and on the evaluation set, computed once per verification."""

    source: Source
    evalset: EvalSet
    probes: dict[str, np.ndarray]
    probe: dict[str, np.ndarray]
    test: Any
    reference: Reference
    noise_floor: dict[str, float] = field(default_factory=dict)  # from conversion.json, per output
    samples: Any = None  # the reference's metric as per-example values (edgeproof._metrics.Samples), or None
    overrides: dict = field(default_factory=dict)  # --budget MODE.FIELD=VALUE

    def budget(self, mode: str):
        return apply_overrides(self.source.contract.budgets, self.overrides)[QuantMode(mode)]


def _baseline(source: Source, say, root: Path, overrides: Optional[dict]) -> _Baseline:
    contract, evalset = source.contract, source.eval_set()
    probes = contract.probe_inputs()
    first = contract.outputs[0].name
    say(f"[{contract.name}/{source.framework}] reference ({evalset.profile} profile) on {evalset.n} test examples",
        flush=True)
    predict = lambda x: batched(source.reference, x, BATCH)  # noqa: E731
    probe = predict(probes)
    test = _outputs_on(evalset, predict, lambda ids, bos, eos: greedy_decode(lambda x: predict(x)[first], ids,
                                                                              bos, eos, batch_size=BATCH))
    evaluation = evalset.score(test, predict)
    name = contract.metric.name
    value = float(evaluation[name]) if name in evaluation else float("nan")
    reference = Reference(contract.name, source.framework, evalset.profile, name, value, evaluation, evalset.n,
                          len(next(iter(probes.values()))))
    floor = {k: float(v) for k, v in (read_about(root).get("noise_floor") or {}).items()}
    samples = evalset.samples(test) if evalset.samples is not None else None
    return _Baseline(source, evalset, probes, probe, test, reference, floor, samples, dict(overrides or {}))


def _judge(base: _Baseline, verdict: ArtifactVerdict, record, outputs, result: ModelVerification) -> str:
    """Fill in the verdict's measures, failures and status; returns the words for the printed line."""
    contract = base.source.contract
    artifact_probe, artifact_test, artifact_eval, verdict.latency_ms, artifact_samples = outputs
    per_output = {t.name: compare(contract.decision_rule, base.probe[t.name], artifact_probe[t.name],
                                  contract.threshold) for t in contract.outputs}
    budget = base.budget(record.mode)
    allowances = {t.name: output_budget(budget, base.probe[t.name], base.noise_floor.get(t.name))
                  for t in contract.outputs}
    verdict.budget = {**asdict(budget), "per_output": describe(allowances)}
    verdict.probe = worst(per_output)
    verdict.test_examples = base.evalset.n
    metric = contract.metric.name
    if metric in artifact_eval and not np.isnan(base.reference.value):
        verdict.artifact_metric = float(artifact_eval[metric])
        verdict.metric_drop = metric_drop(contract.metric, base.reference.value, verdict.artifact_metric)
        if not np.isfinite(verdict.metric_drop):  # NaN outputs give a NaN metric: as bad as it gets
            verdict.metric_drop = float("inf")
    first = contract.outputs[0].name
    if base.evalset.decode is None:  # a translator is judged by BLEU; identical translations are a detail
        verdict.test_agreement = agreement(base.test[first], artifact_test[first], contract.decision_rule,
                                           contract.threshold)
        verdict.details["sample_max_abs_error"] = {t.name: _max_error(base.test[t.name], artifact_test[t.name])
                                                   for t in contract.outputs}
    else:
        verdict.details["identical_translations"] = float(np.mean(np.all(base.test == artifact_test, axis=1)))
    verdict.details.update({k: v for k, v in artifact_eval.items() if k != metric})
    verdict.details["per_output"] = per_output
    stats = _drop_stats(base, artifact_samples, budget, verdict)
    failures = []
    for i, t in enumerate(contract.outputs):
        drop = verdict.metric_drop if i == 0 and (stats is None or stats.decision == "fail") else None
        failures += check_budget(verdict.key, t.name, effective(budget, allowances[t.name]), per_output[t.name],
                                 drop, verdict.test_agreement if i == 0 else None)
    verdict.failures = [Failure.of(e) for e in failures]
    if len(contract.outputs) > 1:  # say which output broke its budget (the summary shows measures only)
        verdict.failures = [Failure(f.output, f"{f.output}: {f.measure}", f.measured, f.limit) for f in verdict.failures]
    verdict.status = Status.FAIL if failures else Status.PASS
    if not failures and stats is not None and stats.decision == "inconclusive":
        verdict.status = Status.INCONCLUSIVE
        verdict.reason = (f"{contract.metric.name} drop {stats.drop:.3g}, 95 % interval [{stats.low:.3g}, "
                          f"{stats.high:.3g}] contains the budget {budget.max_metric_drop:g} on {stats.examples} "
                          f"examples" + (f"; about {stats.needed_examples} examples would decide"
                                         if stats.needed_examples else ""))
    result.probe_outputs[verdict.cell] = (np.concatenate([np.ravel(base.probe[t.name]) for t in contract.outputs]),
                                        np.concatenate([np.ravel(artifact_probe[t.name]) for t in contract.outputs]))
    measured = (f"{metric} {verdict.artifact_metric:.4g} vs {base.reference.value:.4g}"
                if verdict.artifact_metric is not None else NO_LABELS)
    max_error = verdict.probe.get("max_abs_error")
    return f"{measured}, max error " + ("n/a (not finite)" if max_error is None else f"{max_error:.2g}")


def _drop_stats(base: _Baseline, artifact_samples: Any, budget, verdict: ArtifactVerdict):
    """The metric drop's interval and flips (verify/_stats), recorded in the verdict's details; None when the
    model has no per-example metric (users' models without labels)."""
    if base.samples is None or artifact_samples is None or verdict.metric_drop is None:
        return None
    stats = judge_drop(base.samples, artifact_samples, base.source.contract.metric.higher_is_better,
                       budget.max_metric_drop)
    verdict.details["metric_stats"] = stats.to_dict()
    return stats


def _max_error(reference: np.ndarray, artifact: np.ndarray) -> Optional[float]:
    a, b = np.asarray(reference, np.float64), np.asarray(artifact, np.float64)
    if a.shape != b.shape or not a.size or not np.all(np.isfinite(b)):
        return None
    return float(np.max(np.abs(a - b)))


def verify_source(source: Source, root: Path | str, *, targets: Optional[Iterable[str]] = None,
                  modes: Optional[Iterable[str]] = None, tfjs_backend: str = "wasm", progress: bool = True,
                  num_threads: int = 2, say: Optional[Callable[..., None]] = None,
                  budgets: Optional[dict] = None, browsers: Sequence[str] = BROWSER_RUNTIMES,
                  cells: Optional[Iterable[str]] = None, baseline: Any = None,
                  browser_only_passing: bool = False) -> ModelVerification:
    """Verify the converted artifacts in `root` (conversion.json) against `source`; write parity.json
    (merged over the cells not verified this time). `num_threads`: the TFLite interpreter's threads;
    `say`: where progress lines go (default: print, or nowhere without `progress`); `budgets`: overrides
    {QuantMode: {field: value}} (see edgeproof.verify._budgets.parse_overrides); `browsers`: the browser
    runtimes the .tflite artifacts are also proven in (rows `tflite/<mode> in <runtime>`; () for none);
    `cells`: only these cells (record keys such as 'tflite/int8-16x8'); `baseline`: an earlier
    verification's `.baseline` of the same source, not computed again; `browser_only_passing`: browser rows only
    for the .tflite files that passed natively (the repair ladder's chosen candidate)."""
    root = Path(root)
    say = say or (_log.detail if progress else (lambda *a, **k: None))
    records = load_records(root)
    if not records:
        raise NotConvertedError(f"{root} has no conversion.json: run `edgeproof convert --model {source.name} "
                                f"--framework {source.framework}` first")
    records = select_records(records, targets, modes)
    if cells is not None:
        wanted = set(cells)
        records = [r for r in records if r.key in wanted]
    base = baseline or _baseline(source, say, root, budgets)
    contract, result = source.contract, ModelVerification(base.reference, baseline=base)
    step = source.static_batch or 1
    latency_example = {k: v[:step] for k, v in base.probes.items()}

    def new_verdict(record) -> ArtifactVerdict:
        verdict = ArtifactVerdict(contract.name, source.framework, record.target, record.mode, record.route,
                                  Status.UNSUPPORTED, path=record.path, size_bytes=record.size_bytes,
                                  variant=record.variant, recipe=record.recipe, metric=contract.metric.name,
                                  reference_metric=None if np.isnan(base.reference.value) else base.reference.value,
                                  budget=asdict(base.budget(record.mode)))
        if np.isnan(base.reference.value):
            verdict.details["parity"] = NO_LABELS
        return verdict

    def run(predictor: ArtifactPredictor):
        artifact_test = _outputs_on(base.evalset, predictor, predictor.decode)
        evaluation = base.evalset.score(artifact_test, predictor)
        samples = base.evalset.samples(artifact_test) if base.evalset.samples is not None else None
        return (predictor(base.probes), artifact_test, evaluation, round(predictor.latency_ms(latency_example), 4),
                samples)

    result.verdicts = verify_each(
        records, root, new_verdict=new_verdict,
        predictor=lambda record, node: load_predictor(contract, record, root, node, num_threads, base.probes),
        run=run, judge=lambda verdict, record, outputs: _judge(base, verdict, record, outputs, result),
        tfjs_backend=tfjs_backend, say=say)
    if browsers:
        natives = [v if v.passed or not browser_only_passing else None for v in result.verdicts]
        result.verdicts += browser_rows(contract, records, natives, root, run,
                                        lambda verdict, record, outputs: _judge(base, verdict, record, outputs, result),
                                        say, browsers)
    write_parity(root, result, source.describe())
    return result


def verify(model: str, framework: Framework | str, *, artifacts: Path | str = "artifacts",
           targets: Optional[Iterable[str]] = None, modes: Optional[Iterable[str]] = None,
           data_dir: Optional[str] = None, tfjs_backend: str = "wasm", progress: bool = True,
           num_threads: int = 2) -> ModelVerification:
    """Verify the converted artifacts of a reference model (artifacts/<model>/<framework>/)."""
    from edgeproof.convert import ZooSource

    root = Path(artifacts) / model / Framework(framework).value
    if not (root / "conversion.json").exists():
        raise NotConvertedError(f"{root} has no conversion.json: run `edgeproof convert --model {model} "
                                f"--framework {Framework(framework).value}` first")
    source = ZooSource(model, framework, artifacts, data_dir)
    return verify_source(source, root, targets=targets, modes=modes, tfjs_backend=tfjs_backend, progress=progress,
                         num_threads=num_threads)


def write_parity(root: Path, result: ModelVerification, source: Optional[dict] = None) -> None:
    """parity.json: this run's verdicts merged over the earlier ones for cells it did not verify. A cell verified
    again loses its earlier browser rows too (they proved the artifact as it was then), whether or not this
    run had browser runtimes."""
    path = root / PARITY_JSON
    existing: dict[tuple[str, str], dict] = {}
    if path.exists():
        try:
            existing = {(r["target"], r["mode"], r.get("variant") or "", r.get("browser") or ""): r
                        for r in json.loads(path.read_text())["artifacts"]}
        except (ValueError, KeyError, TypeError, AttributeError):
            existing = {}
    again = {v.row[:3] for v in result.verdicts}
    existing = {k: r for k, r in existing.items() if k[:3] not in again}
    for v in result.verdicts:
        existing[v.row] = v.to_dict()
    rows = sorted(existing, key=lambda k: (cell_order(k[:3]), k[3]))
    payload = {"reference": asdict(result.reference), "source": source, "artifacts": [existing[k] for k in rows]}
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


MAX_PARITY_BYTES = 64 << 20  # a parity.json is a few hundred KB; anything near this is not one


def load_verdicts(root: Path | str) -> tuple[Optional[dict], list[ArtifactVerdict]]:
    """(reference, verdicts) from a model folder's parity.json; (None, []) when it was never verified. A file
    that is not a parity.json (not JSON, too deep, a list, entries missing fields) is a VerdictFileError."""
    path = Path(root) / PARITY_JSON
    if not path.exists():
        return None, []
    where = f"{path}: not a parity.json written by `edgeproof verify`"
    if path.stat().st_size > MAX_PARITY_BYTES:
        raise VerdictFileError(f"{where} ({path.stat().st_size} bytes); run `edgeproof verify` again")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise VerdictFileError(f"{where} ({type(err).__name__}); run `edgeproof verify` again") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("artifacts"), list):
        raise VerdictFileError(f"{where} (no list of artifacts); run `edgeproof verify` again")
    try:
        return payload.get("reference"), [ArtifactVerdict.from_dict(r) for r in payload["artifacts"]]
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise VerdictFileError(f"{where} (an entry is malformed: {type(err).__name__}: {str(err)[:120]}); run "
                               f"`edgeproof verify` again") from None

