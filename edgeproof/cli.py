"""The `edgeproof` command line. Each subcommand imports its stage lazily, so `--help` is instant
and a stage that does not exist yet fails with one line naming what is missing."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from ._quant import QuantMode, Target
from ._registry import model_names
from ._spec import PROFILE_NAMES, Framework
from .errors import EdgeproofError

PIPELINE_STAGES = ("train", "convert", "verify", "deploy")
BYOM_SOURCES = ("keras", "onnx", "torch")  # `convert` options that take a user's own model


def _train(args: argparse.Namespace) -> int:
    from ._stages import run_train

    return run_train(args)


def _pipeline_train(args: argparse.Namespace) -> int:
    from ._stages import pipeline_train

    pipeline_train(args)
    return 0


def _convert(args: argparse.Namespace) -> int:
    sources = [o for o in BYOM_SOURCES if getattr(args, o, None)]
    if sources:  # bring your own model: --keras / --onnx / --torch
        if len(sources) > 1:
            raise ValueError(f"give one model: --{sources[0]} or --{sources[1]}, not both")
        if args.model or args.framework:
            raise ValueError(f"--model/--framework name a reference model; with --{sources[0]} use --name")
        from edgeproof.convert._byom_cli import run_user_convert

        return run_user_convert(args, sources[0])
    if not args.model or not args.framework:
        raise ValueError("convert needs --model NAME --framework keras|torch (a reference model), or your own model: "
                         "--keras PATH, --onnx PATH or --torch module:factory, with --sample-data FILE.npz")
    byom_only = [f"--{o.replace('_', '-')}" for o in ("weights", "sample_data", "metric", "input_shape", "layout", "name",
                                                      "keras_custom") if getattr(args, o, None)]
    if byom_only:
        raise ValueError(f"{', '.join(byom_only)} go with --keras, --onnx or --torch (your own model)")
    if args.onnx_backend in (None, "auto"):
        args.onnx_backend = "onnx2tf"
    from ._stages import run_convert

    return run_convert(args)


def _pipeline_convert(args: argparse.Namespace) -> int:
    from ._stages import pipeline_convert

    pipeline_convert(args)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from ._stages import run_verify

    return run_verify(args)


def _pipeline_verify(args: argparse.Namespace) -> int:
    from ._stages import run_verify

    run_verify(args, user_models=False)  # failures are verdicts: the deploy stage refuses those artifacts
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from ._stages import run_deploy

    return run_deploy(args)


def _pipeline_deploy(args: argparse.Namespace) -> int:
    from ._stages import pipeline_deploy

    pipeline_deploy(args)
    return 0


def _run(args: argparse.Namespace) -> int:
    from edgeproof.runtime._commands import print_json, run_bundle

    print_json(run_bundle(args.bundle, args.input, interpreter=args.interpreter, output=args.output,
                          num_threads=args.threads))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from edgeproof.runtime._commands import bench_bundle, print_json

    if args.runs < 2:
        raise ValueError("--runs must be at least 2 (percentiles)")
    print_json(bench_bundle(args.bundle, threads=args.threads, runs=args.runs, interpreter=args.interpreter))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgeproof.deploy._site import serve

    site = Path(args.site)
    if not (site / "index.html").is_file():
        raise EdgeproofError(f"{site} is not a demo site (no index.html): build it with `edgeproof deploy --target web`")
    serve(site, args.port)
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _train, "convert": _convert, "verify": _verify, "deploy": _deploy, "run": _run, "bench": _bench,
    "serve": _serve}
# In `pipeline`, a stage runs over every requested model and framework.
PIPELINE_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    **HANDLERS, "train": _pipeline_train, "convert": _pipeline_convert, "verify": _pipeline_verify,
    "deploy": _pipeline_deploy}


def _pipeline(args: argparse.Namespace) -> int:
    """The main job: every stage in order, ending with the browser demo site."""
    import time

    from ._stages import write_pipeline_timing

    start = time.perf_counter()
    stages: dict[str, float] = {}
    for stage in PIPELINE_STAGES:
        print(f"== edgeproof pipeline: {stage} ==", flush=True)
        stage_start = time.perf_counter()
        PIPELINE_HANDLERS[stage](args)
        stages[stage] = time.perf_counter() - stage_start
        print(f"== {stage} took {stages[stage]:.0f} s ==", flush=True)
    total = time.perf_counter() - start
    write_pipeline_timing(args.artifacts, args.profile, stages, total)
    site = f"{args.artifacts}/deploy/web"
    print(f"pipeline finished in {total:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in stages.items())}). "
          f"Open the demo: edgeproof serve --site {site}", flush=True)
    return 0


def _add_model_args(p: argparse.ArgumentParser, multiple: bool = False, required: bool = True) -> None:
    names = ", ".join(model_names())
    if multiple:
        p.add_argument("--model", action="append", metavar="NAME",
                       help=f"model to process (repeatable; default: all). Known: {names}")
        p.add_argument("--framework", action="append", choices=[f.value for f in Framework],
                       help="source framework (repeatable; default: both)")
    else:
        p.add_argument("--model", required=required, metavar="NAME", help=f"model name. Known: {names}")
        p.add_argument("--framework", required=required, choices=[f.value for f in Framework],
                       help="source framework of the model")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", default="artifacts", metavar="DIR",
                   help="output folder: artifacts/<model>/<framework>/... (default: %(default)s)")


def _add_jobs_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, metavar="N",
                   help="models verified at once, each in its own process (default: one per core, at most 4)")


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILE_NAMES, default="default",
                   help="fast: seconds, for tests; default: the main job; full: reaches the quality bars")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="training device; auto uses a GPU when one is present")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with local dataset copies (also EDGEPROOF_DATA_DIR); searched before downloading")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeproof",
        description="Train, convert and quantize models to TFLite and TF.js, prove every artifact "
                    "against its source model, then deploy it to devices and the browser.")
    parser.add_argument("--version", action="version", version="edgeproof 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a reference model in Keras or PyTorch",
                       description="Train one reference model and write its checkpoint, metrics JSON and curve PNG.")
    _add_model_args(p)
    _add_training_args(p)
    p.add_argument("--epochs", type=int, metavar="N", help="override the profile's epoch count")
    p.add_argument("--mixed-precision", action="store_true", help="train in mixed precision (GPU only)")
    _add_common(p)

    p = sub.add_parser("convert", help="convert a trained checkpoint, or your own model, to TFLite and TF.js",
                       description="Convert a checkpoint produced by `train` in every requested precision; or bring "
                                   "your own Keras, ONNX or PyTorch model (--keras/--onnx/--torch with --sample-data): "
                                   "it is converted, every artifact verified against it, and a report written.")
    _add_model_args(p, required=False)
    own = p.add_argument_group("your own model (instead of --model/--framework)")
    own.add_argument("--keras", metavar="PATH", help="a Keras model: .keras, .h5 or a SavedModel folder")
    own.add_argument("--onnx", metavar="PATH", help="an ONNX model (from torch.onnx, tf2onnx, optimum, skl2onnx...)")
    own.add_argument("--torch", metavar="MODULE:FACTORY",
                     help="a PyTorch factory, e.g. mypackage.models:build (called with no arguments)")
    own.add_argument("--weights", metavar="PATH", help="--torch: a state dict (torch.save(model.state_dict(), PATH))")
    own.add_argument("--sample-data", metavar="FILE.npz",
                     help="inputs (one array per model input, named like it) for calibration, probes and evaluation; "
                          "an array named 'labels' is optional")
    own.add_argument("--metric", choices=["accuracy", "mse", "none"],
                     help="how the first output is scored against the labels (default: from the labels; without "
                          "labels: none, i.e. numeric parity only)")
    own.add_argument("--input-shape", action="append", metavar="[NAME=]DIMS",
                     help="override an input's shape, e.g. image=N,3,224,224 (N: the batch); repeatable")
    own.add_argument("--layout", action="append", metavar="[NAME=]LAYOUT",
                     help="the layout of 4-D inputs: NCHW (default for ONNX and PyTorch) or NHWC (default for Keras); "
                          "NAME=LAYOUT for one input; repeatable")
    own.add_argument("--name", metavar="NAME", help="the model's name (default: the file or factory name); output "
                                                    "goes to ARTIFACTS/NAME/<keras|onnx|torch>/")
    own.add_argument("--keras-custom", action="append", metavar="MODULE:CLASS",
                     help="a custom Keras layer (or other object) the model needs to load; repeatable")
    own.add_argument("--tfjs-backend", choices=["wasm", "cpu"], default="wasm",
                     help="TF.js backend under Node for verifying the TF.js artifacts (default: %(default)s)")
    p.add_argument("--targets", default="tflite,tfjs", metavar="LIST",
                   help=f"comma-separated targets from {[t.value for t in Target]} (default: %(default)s)")
    p.add_argument("--modes", metavar="LIST",
                   help=f"comma-separated precisions from {[m.value for m in QuantMode]} (default: all the target takes)")
    p.add_argument("--onnx-backend", choices=["auto", "onnx2tf", "onnx-tf"], default=None,
                   help="ONNX -> TensorFlow converter on the PyTorch/ONNX route (default: onnx2tf for reference models; "
                        "auto for your own: onnx2tf, then onnx-tf if onnx2tf fails)")
    p.add_argument("--representative-samples", type=int, default=256, metavar="N",
                   help="int8 calibration samples drawn from the training split (default: %(default)s)")
    p.add_argument("--int8-io", action="store_true", help="full-int8 models take and return int8 tensors")
    _add_common(p)

    p = sub.add_parser("verify", help="prove every artifact against its source model",
                       description="Run each artifact in its own runtime and compare it with the reference "
                                   "model on probe inputs and the test split; write parity.json and a report. "
                                   "Your own models (converted with --keras/--onnx/--torch) are verified again "
                                   "from their folders, on the sample data they were converted with.")
    _add_model_args(p, multiple=True)
    p.add_argument("--keras-custom", action="append", metavar="MODULE:CLASS",
                   help="a custom Keras layer your own model needs to load (as given to convert); repeatable")
    p.add_argument("--targets", metavar="LIST", help="comma-separated targets to verify (default: all)")
    p.add_argument("--modes", metavar="LIST", help="comma-separated precisions to verify (default: all)")
    p.add_argument("--tfjs-backend", choices=["wasm", "cpu"], default="wasm",
                   help="TF.js backend under Node for the TF.js artifacts (default: %(default)s)")
    p.add_argument("--data-dir", metavar="DIR", help="folder with local dataset copies (also EDGEPROOF_DATA_DIR)")
    _add_jobs_arg(p)
    _add_common(p)

    p = sub.add_parser("deploy", help="build device or web bundles from passing artifacts only",
                       description="Build bundles (model files + manifest.json) from artifacts whose verdict is pass.")
    p.add_argument("--target", required=True, choices=["web", "pi", "android"], help="where the bundles go")
    _add_model_args(p, multiple=True)
    p.add_argument("--modes", metavar="LIST", help="comma-separated precisions to deploy (default: every passing one)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: artifacts/deploy/<target>)")
    p.add_argument("--allow-failed", metavar="REASON",
                   help="also ship artifacts that FAILED their budgets; the reason is written into their manifest")
    _add_common(p)

    p = sub.add_parser("pipeline", help="run every stage on a configuration: train, convert, verify, deploy",
                       description="The main job: train all models, convert, verify, and build the browser demo.")
    _add_model_args(p, multiple=True)
    _add_training_args(p)
    _add_jobs_arg(p)
    _add_common(p)

    p = sub.add_parser("run", help="run a deployed bundle on an input",
                       description="Load a bundle with the edge runtime (numpy + a TFLite interpreter) and run it.")
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder (with manifest.json)")
    p.add_argument("--input", required=True, metavar="FILE|TEXT",
                   help="an image or .npy file, text for the text models, or a seed for the GAN")
    p.add_argument("--interpreter", choices=["auto", "ai_edge_litert", "tflite_runtime", "tensorflow"],
                   default="auto", help="TFLite interpreter to use (default: the first one installed)")
    p.add_argument("--output", metavar="PNG", help="GAN: where to write the grid of generated digits")
    p.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default: the interpreter's)")

    p = sub.add_parser("bench", help="measure a bundle's load time and latency percentiles",
                       description="Load time, first inference, p50/p90/p99 over repeated runs and peak RSS.")
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder (with manifest.json)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="interpreter threads (default: %(default)s)")
    p.add_argument("--runs", type=int, default=200, metavar="N", help="timed runs after warm-up (default: %(default)s)")
    p.add_argument("--interpreter", choices=["auto", "ai_edge_litert", "tflite_runtime", "tensorflow"],
                   default="auto", help="TFLite interpreter to use (default: the first one installed)")

    p = sub.add_parser("serve", help="serve the browser demo on 127.0.0.1",
                       description="Serve the static demo site built by `deploy --target web`.")
    p.add_argument("--site", default="artifacts/deploy/web", metavar="DIR", help="site folder (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = _pipeline if args.command == "pipeline" else HANDLERS[args.command]
    try:
        return handler(args)
    except (EdgeproofError, ValueError) as err:
        print(f"edgeproof {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
