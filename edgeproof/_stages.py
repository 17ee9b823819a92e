"""CLI stage handlers that exist. Each imports its stage lazily so `edgeproof --help` stays instant."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._registry import get_spec, training_order
from ._spec import Framework


def run_train(args: argparse.Namespace) -> int:
    from edgeproof.train import train

    get_spec(args.model)  # unknown names fail here, listing the known ones
    train(args.model, args.framework, args.profile, epochs=args.epochs, device=args.device, data_dir=args.data_dir,
          artifacts=args.artifacts, mixed_precision=args.mixed_precision)
    return 0


def pipeline_train(args: argparse.Namespace) -> dict:
    """Train every requested model in both frameworks; models whose data is missing are skipped and
    named at the end with how to get their data. Writes artifacts/training_summary.{json,md}."""
    from edgeproof.errors import DatasetNotFoundError
    from edgeproof.train import train

    names = training_order(args.model)
    frameworks = [Framework(f) for f in (args.framework or [f.value for f in Framework])]
    rows, skipped = [], {}
    for name in names:
        spec = get_spec(name)
        missing_deps = [d for d in spec.requires if d in skipped]
        if missing_deps:
            skipped[name] = f"needs {', '.join(missing_deps)}, which was skipped"
            continue
        for framework in frameworks:
            try:
                result = train(name, framework, args.profile, device=args.device, data_dir=args.data_dir,
                               artifacts=args.artifacts)
            except DatasetNotFoundError as err:  # neither a local copy nor a download: go on without it
                skipped[name] = str(err)
                print(f"   skipping {name}: its dataset {spec.dataset!r} could not be found or downloaded", flush=True)
                break
            rows.append({k: getattr(result, k) for k in (
                "model", "framework", "profile", "epochs", "metric", "metric_value", "quality_bar_met",
                "trainable_params", "wall_time_s", "train_samples", "test_samples", "checkpoint")})
    out = Path(args.artifacts)
    out.mkdir(parents=True, exist_ok=True)
    (out / "training_summary.json").write_text(json.dumps({"trained": rows, "skipped": skipped}, indent=2))
    table = training_table(rows)
    (out / "training_summary.md").write_text(table + "\n")
    print(table)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    return {"trained": rows, "skipped": skipped}


def training_table(rows: list[dict]) -> str:
    lines = ["| model | framework | profile | metric | value | quality bar met | trainable params | train time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['framework']} | {r['profile']} | {r['metric']} | {r['metric_value']:.4g} | "
                     f"{'yes' if r['quality_bar_met'] else 'no'} | {r['trainable_params']:,} | {r['wall_time_s']:.1f} |")
    return "\n".join(lines)


def run_convert(args: argparse.Namespace) -> int:
    from edgeproof.convert import convert

    get_spec(args.model)
    records = convert(args.model, args.framework, targets=_csv(args.targets), modes=_csv(args.modes),
                      onnx_backend=args.onnx_backend, artifacts=args.artifacts,
                      representative_samples=args.representative_samples, int8_io=args.int8_io)
    return 0 if any(r.status == "ok" for r in records) else 1


def _csv(value):
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def pipeline_convert(args: argparse.Namespace) -> dict:
    """Convert every trained (model, framework) in every precision; say how many of the matrix's
    artifacts exist and why the others do not. Writes artifacts/conversion_summary.{json,md}."""
    from edgeproof._quant import TARGET_MODES
    from edgeproof.convert import conversion_table, convert
    from edgeproof.train import model_dir

    names = training_order(args.model)
    frameworks = [Framework(f) for f in (args.framework or [f.value for f in Framework])]
    per_model = sum(len(m) for m in TARGET_MODES.values())
    expected = len(names) * len(frameworks) * per_model
    records, missing = [], []
    for name in names:
        for framework in frameworks:
            if not (model_dir(args.artifacts, name, framework) / "checkpoint" / "checkpoint.json").exists():
                missing.append(f"{name}/{framework.value}: {per_model} artifacts, no trained checkpoint")
                continue
            try:
                records += convert(name, framework, artifacts=args.artifacts)
            except Exception as err:  # e.g. the ONNX export itself failed: the whole row is reported
                missing.append(f"{name}/{framework.value}: {per_model} artifacts, conversion failed: {err}")
    ok = [r for r in records if r.status == "ok"]
    out = Path(args.artifacts)
    (out / "conversion_summary.json").write_text(json.dumps(
        {"expected": expected, "produced": len(ok), "artifacts": [r.to_dict() for r in records],
         "missing": missing}, indent=2))
    (out / "conversion_summary.md").write_text(conversion_table(records) + "\n")
    print(f"conversion: {len(ok)} of {expected} artifacts exist")
    for r in records:
        if r.status != "ok":
            print(f"   {r.model}/{r.framework} {r.key}: {r.status}: {r.reason}")
    for line in missing:
        print(f"   {line}")
    return {"expected": expected, "produced": len(ok)}


def _trained_and_converted(args: argparse.Namespace, names: list[str] | None) -> list[tuple[str, Framework]]:
    from edgeproof.train import model_dir

    names = training_order(names)
    frameworks = [Framework(f) for f in (args.framework or [f.value for f in Framework])]
    return [(n, f) for n in names for f in frameworks
            if (model_dir(args.artifacts, n, f) / "conversion.json").exists()]


def run_verify(args: argparse.Namespace, user_models: bool = True) -> int:
    """Verify every converted (model, framework) requested, and users' own models (named, or all of them
    without --model; not with user_models=False) from their folders; write the report. Exit 1 if any
    artifact failed."""
    from edgeproof.errors import EdgeproofError
    from edgeproof.verify import Status
    from edgeproof.deploy._gate import _split_models
    from edgeproof.verify._report import write_report
    from edgeproof.verify._plots import error_distribution, outputs_scatter

    registry, user = _split_models(args.artifacts, args.model)  # an unknown name lists both kinds of model
    pairs = _trained_and_converted(args, registry)
    user = [u for u in user if user_models and (not args.framework or u[1] in args.framework)]
    if not pairs and not user:
        raise EdgeproofError(f"nothing to verify under {args.artifacts}: run `edgeproof convert` first")
    from edgeproof.verify._parallel import VerifyOptions, verify_pairs

    options = VerifyOptions(str(args.artifacts), targets=_csv(getattr(args, "targets", None)),
                            modes=_csv(getattr(args, "modes", None)),
                            data_dir=getattr(args, "data_dir", None),
                            tfjs_backend=getattr(args, "tfjs_backend", "wasm"))
    verdicts = []
    for (name, framework), result in zip(pairs, verify_pairs(pairs, options, jobs=getattr(args, "jobs", None))):
        verdicts += result.verdicts
        if result.probe_outputs:
            from edgeproof.train import model_dir

            folder = model_dir(args.artifacts, name, framework) / "verification"
            folder.mkdir(exist_ok=True)
            title = f"{name} ({framework.value})"
            outputs_scatter(title, result.probe_outputs, folder / "outputs.png")
            error_distribution(title, result.probe_outputs, folder / "errors.png")
    verdicts += _verify_user_models(args, user)
    paths = write_report(args.artifacts)
    counts = {s: sum(v.status is s for v in verdicts) for s in Status}
    print(f"verification: {counts[Status.PASS]} pass, {counts[Status.FAIL]} fail, "
          f"{counts[Status.UNSUPPORTED]} unsupported; report {paths['html']} and {paths['md']}")
    for v in verdicts:
        if v.status is not Status.PASS:
            print(f"   {v.key}: {v.summary()}")
    return 1 if counts[Status.FAIL] else 0


def _verify_user_models(args: argparse.Namespace, user: list) -> list:
    """Users' own models verified again from their folders; without --model, one that cannot be (its
    sample data is gone, say) is skipped with the reason."""
    from edgeproof.errors import UserModelError
    from edgeproof.verify._byom_reverify import reverify_user_model

    custom = None
    if getattr(args, "keras_custom", None):
        from edgeproof.convert._byom_keras import import_custom_objects

        custom = import_custom_objects(args.keras_custom)
    verdicts = []
    for spec, source, root in user:
        try:
            verdicts += reverify_user_model(root, targets=_csv(getattr(args, "targets", None)),
                                            modes=_csv(getattr(args, "modes", None)), custom_objects=custom,
                                            tfjs_backend=getattr(args, "tfjs_backend", "wasm")).verdicts
        except UserModelError as err:
            if args.model:
                raise
            print(f"   skipping {spec.name}/{source}: {err}", flush=True)
    return verdicts


def run_deploy(args: argparse.Namespace) -> int:
    from edgeproof.deploy._gate import deploy

    result = deploy(args.target, artifacts=args.artifacts, out=args.out, models=args.model,
                    frameworks=args.framework, modes=_csv(getattr(args, "modes", None)),
                    allow_failed=getattr(args, "allow_failed", None))
    print(f"deploy --target {result.target.value}: {len(result.bundles)} bundles in {result.out}, "
          f"{len(result.refused)} artifacts refused (reasons above and in {result.out / 'index.json'})")
    return 0


def pipeline_deploy(args: argparse.Namespace) -> None:
    """The pipeline deploys every passing artifact to every target."""
    from edgeproof.deploy._gate import DeployTarget, deploy

    for target in DeployTarget:
        result = deploy(target, artifacts=args.artifacts, models=args.model, frameworks=args.framework,
                        progress=False)
        print(f"deploy --target {target.value}: {len(result.bundles)} bundles in {result.out}; "
              f"{len(result.refused)} refused (see {result.out / 'index.json'})", flush=True)


PIPELINE_TIMING_JSON = "pipeline_timing.json"


def write_pipeline_timing(artifacts: str, profile: str, stages: dict[str, float], total: float) -> Path:
    """Wall time per pipeline stage, read by the README table and the benchmarks."""
    import os
    import platform

    from ._atomic import write_bytes_atomic

    payload = {"profile": profile, "stages": {k: round(v, 1) for k, v in stages.items()},
               "total_seconds": round(total, 1), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    path = Path(artifacts) / PIPELINE_TIMING_JSON
    write_bytes_atomic(path, (json.dumps(payload, indent=2) + "\n").encode())
    return path
