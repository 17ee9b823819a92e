"""What each `edgeproof` subcommand does with its parsed arguments. Each imports its stage lazily, so
`edgeproof --help` stays instant; the stages themselves are composed in edgeproof.pipeline."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import _log
from ._registry import get_spec
from ._util import csv_list

USER_MODEL_OPTIONS = ("keras", "onnx", "torch")  # `convert` options that take a user's own model
USER_ONLY_OPTIONS = ("weights", "sample_data", "metric", "input_shape", "layout", "name", "keras_custom")


def _options(args: argparse.Namespace):
    from .pipeline import PipelineOptions

    model = getattr(args, "model", None)
    models = [model] if isinstance(model, str) else model
    framework = getattr(args, "framework", None)
    frameworks = [framework] if isinstance(framework, str) else framework
    return PipelineOptions(artifacts=args.artifacts, profile=getattr(args, "profile", "default"), models=models,
                           frameworks=frameworks, device=getattr(args, "device", "auto"),
                           data_dir=getattr(args, "data_dir", None), jobs=getattr(args, "jobs", None))


def train(args: argparse.Namespace) -> int:
    from .train import train as train_model

    get_spec(args.model)  # unknown names fail here, listing the known ones
    train_model(args.model, args.framework, args.profile, epochs=args.epochs, device=args.device,
                data_dir=args.data_dir, artifacts=args.artifacts, mixed_precision=args.mixed_precision)
    return 0


def _user_model(args: argparse.Namespace) -> str | None:
    """Which of --keras / --onnx / --torch names a user's own model (None: a reference model)."""
    given = [o for o in USER_MODEL_OPTIONS if getattr(args, o, None)]
    if len(given) > 1:
        raise ValueError(f"give one model: --{given[0]} or --{given[1]}, not both")
    if given and (args.model or args.framework):
        raise ValueError(f"--model/--framework name a reference model; with --{given[0]} use --name")
    if not given:
        if not args.model or not args.framework:
            raise ValueError("convert needs --model NAME --framework keras|torch (a reference model), or your own "
                             "model: --keras PATH, --onnx PATH or --torch module:factory, with --sample-data FILE.npz")
        misplaced = [f"--{o.replace('_', '-')}" for o in USER_ONLY_OPTIONS if getattr(args, o, None)]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} go with --keras, --onnx or --torch (your own model)")
    return given[0] if given else None


def convert(args: argparse.Namespace) -> int:
    """A reference model or a user's own: converted, then (unless --no-verify) verified; exit 0 when at least
    one artifact passed (or, with --no-verify, was produced), 1 when none did."""
    kind = _user_model(args)
    targets, modes = csv_list(args.targets), csv_list(args.modes)
    if kind is None:
        from .convert import convert as convert_zoo

        get_spec(args.model)
        records = convert_zoo(args.model, args.framework, targets=targets, modes=modes, onnx_backend=args.onnx_backend,
                              artifacts=args.artifacts, representative_samples=args.representative_samples,
                              int8_io=args.int8_io)
        if args.no_verify:
            return 0 if any(r.status == "ok" for r in records) else 1
        opts = _options(args)
        verdicts = _verify(opts, args, modes=modes, targets=targets)
        return 0 if any(v.passed for v in verdicts) else 1
    return _convert_user(args, kind, targets, modes)


def _convert_user(args: argparse.Namespace, kind: str, targets, modes) -> int:
    from .convert import import_custom_objects
    from .errors import SampleDataError
    from .pipeline import convert_user_model
    from .verify import Status

    if not args.sample_data:
        raise SampleDataError(f"--{kind} needs --sample-data FILE.npz: the model's inputs (one array per input, named "
                              f"like it; optional 'labels') for calibration, probes and evaluation")
    if args.keras_custom and kind != "keras":
        raise ValueError("--keras-custom goes with --keras")
    custom = import_custom_objects(args.keras_custom) if args.keras_custom else None
    budgets = None
    if args.budget:
        from ._spec import DEFAULT_BUDGETS
        from .verify._budgets import apply_overrides, parse_overrides

        budgets = apply_overrides(DEFAULT_BUDGETS, parse_overrides(args.budget))
    result = convert_user_model(
        getattr(args, kind), kind=kind, sample_data=args.sample_data, name=args.name, weights=args.weights,
        metric=args.metric, input_shapes=args.input_shape, layouts=args.layout, custom_objects=custom,
        targets=targets or ("tflite", "tfjs"), modes=modes, onnx_backend=args.onnx_backend, artifacts=args.artifacts,
        representative_samples=args.representative_samples, int8_io=args.int8_io, tfjs_backend=args.tfjs_backend,
        budgets=budgets)
    counts = {s: sum(v.status is s for v in result.verdicts) for s in Status}
    backend = f"; ONNX -> TensorFlow by {result.onnx_backend}" if result.onnx_backend else ""
    _log.info(f"{result.name} ({result.source}){backend}: {counts[Status.PASS]} pass, {counts[Status.FAIL]} fail, "
          f"{counts[Status.UNSUPPORTED]} unsupported; artifacts in {result.root}, report {result.report}")
    for v in result.verdicts:
        if v.status is not Status.PASS:
            _log.info(f"   {v.key}: {v.summary()}")
    if counts[Status.PASS]:
        _log.info(f"deploy: edgeproof deploy --target pi --model {result.name} --artifacts {args.artifacts}")
    return 0 if counts[Status.PASS] else 1


def _verify(opts, args: argparse.Namespace, targets=None, modes=None) -> list:
    from .pipeline import verify_stage

    return verify_stage(opts, targets=targets, modes=modes, tfjs_backend=getattr(args, "tfjs_backend", "wasm"),
                        keras_custom=getattr(args, "keras_custom", None) or (), budgets=getattr(args, "budget", None) or ())


def verify(args: argparse.Namespace) -> int:
    """Verify every converted model requested (reference and users' own); exit 1 if any artifact did not pass
    (failed or inconclusive). With --json the verdicts are printed as JSON on stdout."""
    from .verify import Status

    verdicts = _verify(_options(args), args, targets=csv_list(args.targets), modes=csv_list(args.modes))
    if getattr(args, "json", False):
        _print_json({"verdicts": [v.to_dict() for v in verdicts]})
    return 1 if any(v.status in (Status.FAIL, Status.INCONCLUSIVE) for v in verdicts) else 0


def _print_json(payload) -> None:
    import json
    import sys

    from .verify._api import _finite, _json_default

    sys.stdout.write(json.dumps(_finite(json.loads(json.dumps(payload, default=_json_default))), indent=2,
                                allow_nan=False) + "\n")


def repair(args: argparse.Namespace) -> int:
    """Attribution and the repair ladder for the 8-bit artifacts; exit 1 when one stays unrepaired."""
    from .pipeline import repair_stage

    outcomes = repair_stage(_options(args), cells=csv_list(args.cells))
    return 1 if any(o.status == "not repaired" for o in outcomes) else 0


def deploy(args: argparse.Namespace) -> int:
    from .deploy import deploy as deploy_bundles

    result = deploy_bundles(args.target, artifacts=args.artifacts, out=args.out, models=args.model,
                            frameworks=args.framework, modes=csv_list(args.modes), allow_failed=args.allow_failed,
                            accept_inconclusive=args.accept_inconclusive, prefer=args.prefer, sign_key=args.sign_key,
                            prove_aarch64=getattr(args, "prove_aarch64", False))
    _log.info(f"deploy --target {result.target.value}: {len(result.bundles)} bundles in {result.out}, "
          f"{len(result.refused)} artifacts refused (reasons above and in {result.out / 'index.json'})")
    import json

    index = json.loads((result.out / "index.json").read_text())
    for key, choice in index.get("preferred", {}).items():
        _log.info(f"   preferred for {key}: {choice['bundle']} ({choice['why']})")
    if getattr(args, "json", False):
        _print_json({"out": str(result.out), "bundles": [str(b) for b in result.bundles], **index})
    return 0


def keygen(args: argparse.Namespace) -> int:
    from .deploy._signing import generate_key_pair

    for path in (args.private_key, args.public_key):
        if Path(path).exists():
            raise ValueError(f"{path} already exists: choose a new file (keys are never overwritten)")
    private, public = generate_key_pair(args.private_key, args.public_key)
    _log.info(f"private key {private} (keep it secret), public key {public}")
    return 0


def pipeline(args: argparse.Namespace) -> int:
    """The main job: every stage in order, ending with the browser demo site."""
    from .pipeline import run_pipeline

    seconds = run_pipeline(_options(args))
    site = f"{args.artifacts}/deploy/web"
    _log.info(f"pipeline finished in {sum(seconds.values()):.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())})."
          f" Open the demo: edgeproof serve --site {site}", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    from .runtime._commands import run_command

    return run_command(args)


def selftest(args: argparse.Namespace) -> int:
    from .runtime._commands import selftest_command

    return selftest_command(args)


def verify_bundle(args: argparse.Namespace) -> int:
    from .runtime._commands import verify_bundle_command

    return verify_bundle_command(args)


def bench(args: argparse.Namespace) -> int:
    from .runtime._commands import bench_bundle, print_json

    if args.runs < 2:
        raise ValueError("--runs must be at least 2 (percentiles)")
    print_json(bench_bundle(args.bundle, threads=args.threads, runs=args.runs, interpreter=args.interpreter))
    return 0


def serve(args: argparse.Namespace) -> int:
    from .deploy import serve as serve_site

    serve_site(Path(args.site), args.port)
    return 0


def doctor(args: argparse.Namespace) -> int:
    from ._doctor import run_doctor

    return run_doctor()


HANDLERS = {"train": train, "convert": convert, "verify": verify, "repair": repair, "deploy": deploy,
            "pipeline": pipeline, "keygen": keygen, "run": run, "bench": bench, "serve": serve, "doctor": doctor, "selftest": selftest,
            "verify-bundle": verify_bundle}
