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
