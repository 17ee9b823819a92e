"""edgeproof.pipeline: the stages composed. The only module that imports train, convert, verify and deploy
together; each stage imports only the ones below it (train < convert < verify < deploy).

- `convert_user_model()`: a user's own model (Keras, ONNX or PyTorch) opened as a Source, converted,
  verified and reported in one call, its folder built aside and swapped in at the end;
- `train_stage`, `convert_stage`, `verify_stage`, `deploy_stage`: one stage over every requested model,
  and `run_pipeline()`, the main job: all four in order, ending with the browser demo site.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from . import _log
from ._atomic import replacing_dir, write_bytes_atomic
from ._registry import get_spec, training_order
from ._spec import Framework, ModelContract, ParityBudget

PIPELINE_TIMING_JSON = "pipeline_timing.json"
STAGES = ("train", "convert", "verify", "repair", "deploy")


@dataclass
class UserModelResult:
    name: str
    source: str  # keras | onnx | torch
    root: Path  # artifacts/<name>/<source>
    spec: ModelContract
    records: list
    verification: Any  # edgeproof.verify.ModelVerification
    info: Any  # UserModelInfo (user_model.json)
    report: Path  # root/report.md
    artifacts_report: dict[str, Path] = field(default_factory=dict)  # parity_report.{md,html,json} of the folder

    @property
    def verdicts(self):
        return self.verification.verdicts

    @property
    def onnx_backend(self) -> Optional[str]:
        return (self.info.onnx_backend or {}).get("used")


def _created_parents(root: Path) -> list[Path]:
    """The folders above `root` that do not exist yet (removed again if the conversion fails)."""
    out, p = [], root.parent
    while not p.exists():
        out.append(p)
        p = p.parent
    return out


def convert_user_model(model: Any, *, sample_data: Any, kind: Optional[str] = None, name: Optional[str] = None,
                       weights: Optional[Path | str] = None, metric: Optional[str] = None, input_shapes=None,
                       layouts=None, custom_objects: Optional[Mapping[str, Any]] = None,
                       targets: Iterable[str] = ("tflite", "tfjs"), modes: Optional[Iterable[str]] = None,
                       onnx_backend: Optional[str] = None, artifacts: Path | str = "artifacts",
                       representative_samples: int = 256, int8_io: bool = False,
                       budgets: Optional[Mapping[Any, ParityBudget]] = None, tfjs_backend: str = "wasm",
                       progress: bool = True) -> UserModelResult:
    """Convert, verify and report a user's own model; returns where everything went.

    model: a .keras/.h5 file or SavedModel folder (kind "keras"), a .onnx file ("onnx"), or
    "module.path:factory" / a factory / a torch.nn.Module ("torch", with optional `weights`: a
    state dict file); a tf-keras Model object also works. sample_data: a .npz (or a dict of arrays)
    with one array per input, named like the inputs, and optionally `labels`. metric: accuracy, mse
    or none (default: from the labels; none without labels = numeric parity only). input_shapes:
    {"name": (None, 3, 64, 64)} or ["name=N,3,64,64"]; layouts: "NCHW" or {"name": "NHWC"}.
    custom_objects: Keras custom layers {"Name": Class}. onnx_backend: None/"auto" tries onnx2tf,
    then onnx-tf; a backend name forces it. Everything is checked before anything is written; the
    folder artifacts/<name>/<source>/ is built aside and swapped in at the end, so a failure leaves no
    partial folder (and an earlier good one untouched)."""
    from ._quant import Target
    from .convert import convert_source, open_user_source, requested_configs
    from .convert._records import read_about
    from .convert._user_contract import write_info
    from .verify import verify_source, write_model_report, write_report

    say = _log.detail if progress else (lambda *a, **k: None)
    source = open_user_source(model, sample_data=sample_data, kind=kind, name=name, weights=weights, metric=metric,
                              input_shapes=input_shapes, layouts=layouts, custom_objects=custom_objects,
                              budgets=budgets)
    requested_configs(source.contract, [Target(t).value for t in targets], modes)  # bad targets/modes: fail now
    contract, info = source.contract, source.info
    say(f"[{contract.name}/{source.framework}] {len(contract.inputs)} inputs (" + ", ".join(
        f"{t.name} {list(t.shape)} {t.dtype} {t.layout.value}" for t in contract.inputs) + f"), {len(contract.outputs)} "
        f"outputs, metric: {source.eval_set().basis}", flush=True)
    root = Path(artifacts) / contract.name / source.framework
    created = _created_parents(root)
    try:
        with replacing_dir(root) as tmp:
            records = convert_source(source, tmp, targets=targets, modes=modes, onnx_backend=onnx_backend,
                                     representative_samples=representative_samples, int8_io=int8_io,
                                     progress=progress)
            about = read_about(tmp)
            info.onnx_backend, info.notes = about.get("onnx_backend"), about.get("notes", [])
            write_info(tmp, info)
            verification = verify_source(source, tmp, tfjs_backend=tfjs_backend, progress=progress)
            write_model_report(tmp, source, verification)
    except BaseException:
        for folder in created:
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    result = UserModelResult(contract.name, source.framework, root, contract, records, verification, info,
                             root / "report.md")
    try:
        result.artifacts_report = write_report(artifacts)
    except Exception as err:  # the model's own report is written; the folder-wide one is a convenience
        say(f"   (the report over {artifacts} was not rewritten: {type(err).__name__}: {err})")
    return result


# -- the stages over every requested model ----------------------------------------------------------------------

@dataclass
class PipelineOptions:
    artifacts: str = "artifacts"
    profile: str = "default"
    models: Optional[list[str]] = None
    frameworks: Optional[list[str]] = None
    device: str = "auto"
    data_dir: Optional[str] = None
    jobs: Optional[int] = None

    @property
    def framework_list(self) -> list[Framework]:
        return [Framework(f) for f in (self.frameworks or [f.value for f in Framework])]


def train_stage(opts: PipelineOptions) -> dict:
    """Train every requested model in both frameworks; models whose data is missing are skipped and
    named at the end with how to get their data. Writes artifacts/training_summary.{json,md}."""
    from .errors import DatasetNotFoundError
    from .train import train

    rows, skipped = [], {}
    names = training_order(opts.models)
    bar = _log.progress_bar(len(names) * len(opts.framework_list), "train")
    for name in names:
        spec = get_spec(name)
        missing_deps = [d for d in spec.requires if d in skipped]
        if missing_deps:
            skipped[name] = f"needs {', '.join(missing_deps)}, which was skipped"
            continue
        for framework in opts.framework_list:
            bar.update(1)
            try:
                result = train(name, framework, opts.profile, device=opts.device, data_dir=opts.data_dir,
                               artifacts=opts.artifacts)
            except DatasetNotFoundError as err:  # neither a local copy nor a download: go on without it
                skipped[name] = str(err)
                _log.info(f"   skipping {name}: its dataset {spec.dataset!r} could not be found or downloaded")
                break
            rows.append({k: getattr(result, k) for k in (
                "model", "framework", "profile", "epochs", "metric", "metric_value", "quality_bar_met",
                "trainable_params", "wall_time_s", "train_samples", "test_samples", "checkpoint")})
    out = Path(opts.artifacts)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "training_summary.json", json.dumps({"trained": rows, "skipped": skipped}, indent=2).encode())
    bar.close()
    table = training_table(rows)
    write_bytes_atomic(out / "training_summary.md", (table + "\n").encode())
    _log.detail(table)
    for name, why in skipped.items():
        _log.info(f"skipped {name}: {why}")
    return {"trained": rows, "skipped": skipped}


def training_table(rows: list[dict]) -> str:
    lines = ["| model | framework | profile | metric | value | quality bar met | trainable params | train time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['framework']} | {r['profile']} | {r['metric']} | {r['metric_value']:.4g} | "
                     f"{'yes' if r['quality_bar_met'] else 'no'} | {r['trainable_params']:,} | {r['wall_time_s']:.1f} |")
    return "\n".join(lines)


def convert_stage(opts: PipelineOptions) -> dict:
    """Convert every trained (model, framework) in every precision; say how many of the matrix's
    artifacts exist and why the others do not. Writes artifacts/conversion_summary.{json,md}."""
    from ._quant import TARGET_MODES
    from .convert import conversion_table, convert

    names = training_order(opts.models)
    per_model = sum(len(m) for m in TARGET_MODES.values())
    expected = len(names) * len(opts.framework_list) * per_model
    records, missing = [], []
    bar = _log.progress_bar(len(names) * len(opts.framework_list), "convert")
    for name in names:
        for framework in opts.framework_list:
            bar.update(1)
            if not (Path(opts.artifacts) / name / framework.value / "checkpoint" / "checkpoint.json").exists():
                missing.append(f"{name}/{framework.value}: {per_model} artifacts, no trained checkpoint")
                continue
            try:
                records += convert(name, framework, artifacts=opts.artifacts, data_dir=opts.data_dir)
            except Exception as err:  # e.g. the ONNX export itself failed: the whole row is reported
                missing.append(f"{name}/{framework.value}: {per_model} artifacts, conversion failed: {err}")
    bar.close()
    ok = [r for r in records if r.status == "ok" and not r.variant]  # the matrix; second routes are counted apart
    variants = [r for r in records if r.variant]
    out = Path(opts.artifacts)
    write_bytes_atomic(out / "conversion_summary.json", json.dumps(
        {"expected": expected, "produced": len(ok), "artifacts": [r.to_dict() for r in records],
         "missing": missing}, indent=2).encode())
    write_bytes_atomic(out / "conversion_summary.md", (conversion_table(records) + "\n").encode())
    _log.info(f"conversion: {len(ok)} of {expected} artifacts exist"
              + (f"; second routes: {sum(r.status == 'ok' for r in variants)} of {len(variants)} converted"
                 if variants else ""))
    for r in records:
        if r.status != "ok":
            _log.info(f"   {r.model}/{r.framework} {r.key}: {r.status}: {r.reason}")
    for line in missing:
        _log.info(f"   {line}")
    return {"expected": expected, "produced": len(ok)}


def verify_stage(opts: PipelineOptions, *, targets: Optional[list[str]] = None, modes: Optional[list[str]] = None,
                 tfjs_backend: str = "wasm", keras_custom: Iterable[str] = (), budgets: Iterable[str] = ()) -> list:
    """Verify every converted model found under the artifacts folder (reference and users' own alike, side by
    side: `jobs` at a time), rewrite the report; returns every verdict. A user model that cannot be verified
    again (its sample data is gone, say) is skipped with the reason unless it was named."""
    from .convert import find_models
    from .errors import EdgeproofError, UserModelError
    from .verify import VerifyOptions, verify_models, write_report
    from .verify._budgets import parse_overrides

    parse_overrides(budgets)  # a bad --budget fails before anything runs
    folders = [f for f in find_models(opts.artifacts, opts.models, opts.frameworks)
               if (f.root / "conversion.json").exists()]
    ready = []
    for folder in folders:
        try:
            folder.check_reopenable()
            ready.append(folder)
        except UserModelError as err:
            if opts.models:
                raise
            _log.info(f"   skipping {folder.label}: {err}")
    if not ready:
        raise EdgeproofError(f"nothing to verify under {opts.artifacts}: run `edgeproof convert` first")
    options = VerifyOptions(str(opts.artifacts), targets=targets, modes=modes, data_dir=opts.data_dir,
                            tfjs_backend=tfjs_backend, keras_custom=tuple(keras_custom), budgets=tuple(budgets))
    verdicts = [v for result in verify_models(ready, options, jobs=opts.jobs) for v in result.verdicts]
    paths = write_report(opts.artifacts)
    from .verify import Status

    counts = {s: sum(v.status is s for v in verdicts) for s in Status}
    _log.info(f"verification: {counts[Status.PASS]} pass, {counts[Status.FAIL]} fail, "
              f"{counts[Status.INCONCLUSIVE]} inconclusive, {counts[Status.UNSUPPORTED]} unsupported; "
              f"report {paths['html']} and {paths['md']}")
    for v in verdicts:
        if v.status is not Status.PASS:
            _log.info(f"   {v.key}: {v.summary()}")
    return verdicts


def repair_stage(opts: PipelineOptions, cells: Optional[list[str]] = None) -> list:
    """Attribution for every 8-bit artifact, and the repair ladder for those that did not pass (verify/_repair),
    for every verified model (`cells`: only these ladders). Writes repair.json per model; returns the outcomes."""
    from .convert import find_models
    from .errors import UserModelError
    from .verify._repair import check_cells, repair_model

    check_cells(cells)
    outcomes = []
    folders = [f for f in find_models(opts.artifacts, opts.models, opts.frameworks) if (f.root / "parity.json").exists()]
    bar = _log.progress_bar(len(folders), "repair")
    for folder in folders:
        bar.update(1)
        try:
            folder.check_reopenable()
            source = folder.open_source(data_dir=opts.data_dir)
        except UserModelError as err:
            _log.info(f"   skipping {folder.label}: {err}")
            continue
        for outcome in repair_model(source, folder.root, say=_log.detail, cells=cells):
            outcomes.append(outcome)
            line = f"   {folder.label}/{outcome.cell}: {outcome.status}" + (f" -> {outcome.chosen}" if outcome.chosen else "")
            (_log.detail if outcome.status.startswith("left alone") else _log.info)(line)
    bar.close()
    return outcomes


def deploy_stage(opts: PipelineOptions) -> None:
    """Every passing artifact deployed to every target."""
    from .deploy import DeployTarget, deploy

    for target in DeployTarget:
        result = deploy(target, artifacts=opts.artifacts, models=opts.models, frameworks=opts.frameworks,
                        progress=False)
        _log.info(f"deploy --target {target.value}: {len(result.bundles)} bundles in {result.out}; "
                  f"{len(result.refused)} refused (see {result.out / 'index.json'})")


def run_pipeline(opts: PipelineOptions) -> dict[str, float]:
    """The main job: train, convert, verify, repair, deploy, in order; the wall time of each is printed and written
    to artifacts/pipeline_timing.json. Failing artifacts are verdicts, refused by deploy, not errors."""
    stages = {"train": train_stage, "convert": convert_stage, "verify": verify_stage, "repair": repair_stage,
              "deploy": deploy_stage}
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    for stage in STAGES:
        _log.info(f"== edgeproof pipeline: {stage} ==")
        stage_start = time.perf_counter()
        stages[stage](opts)
        seconds[stage] = time.perf_counter() - stage_start
        _log.info(f"== {stage} took {seconds[stage]:.0f} s ==")
    write_pipeline_timing(opts.artifacts, opts.profile, seconds, time.perf_counter() - start)
    return seconds


def write_pipeline_timing(artifacts: str, profile: str, stages: dict[str, float], total: float) -> Path:
    """Wall time per pipeline stage, read by the docs' table and the benchmarks."""
    import os
    import platform

    rounded = {k: round(v, 1) for k, v in stages.items()}
    # The total covers the stages and the moments between them; rounding must not make it the smaller.
    payload = {"profile": profile, "stages": rounded, "total_seconds": max(round(total, 1), round(sum(rounded.values()), 1)),
               "cpu_count": os.cpu_count(), "machine": platform.machine()}
    path = Path(artifacts) / PIPELINE_TIMING_JSON
    write_bytes_atomic(path, (json.dumps(payload, indent=2) + "\n").encode())
    return path
