"""The `edgeproof` command line. Each subcommand imports its stage lazily, so `--help` is instant
and a stage that does not exist yet fails with one line naming what is missing."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ._quant import QuantMode, Target
from ._registry import model_names
from ._spec import PROFILE_NAMES, Framework
from .errors import EdgeproofError
from .pipeline import STAGES as PIPELINE_STAGES  # noqa: F401 - the main job's stages, in order



def _add_model_args(p: argparse.ArgumentParser, multiple: bool = False, required: bool = True) -> None:
    names = ", ".join(model_names())
    if multiple:
        p.add_argument("--model", action="append", metavar="NAME",
                       help=f"model to process (repeatable; default: all). Known: {names}")
        p.add_argument("--framework", action="append", choices=[f.value for f in Framework] + ["onnx"],
                       help="source framework, or for your own models their kind (repeatable; default: all)")
    else:
        p.add_argument("--model", required=required, metavar="NAME", help=f"model name. Known: {names}")
        p.add_argument("--framework", required=required, choices=[f.value for f in Framework],
                       help="source framework of the model")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifacts", default="artifacts", metavar="DIR",
                   help="output folder: artifacts/<model>/<framework>/... (default: %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also show the underlying tools' logs (TensorFlow, Keras, torch.onnx, onnx2tf); every run "
                        "writes its full log to ARTIFACTS/logs/ either way")


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout (progress goes to stderr)")


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


def _train_command(sub) -> None:
    p = sub.add_parser("train", help="train a reference model in Keras or PyTorch",
                       description="Train one reference model and write its checkpoint, metrics JSON and curve PNG.")
    _add_model_args(p)
    _add_training_args(p)
    p.add_argument("--epochs", type=int, metavar="N", help="override the profile's epoch count")
    p.add_argument("--mixed-precision", action="store_true", help="train in mixed precision (GPU only)")
    _add_common(p)


def _convert_command(sub) -> None:
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
                   help="ONNX -> TensorFlow converter on the PyTorch/ONNX route (default: auto: onnx2tf, then onnx-tf "
                        "if onnx2tf fails or its graph computes something else)")
    p.add_argument("--representative-samples", type=int, default=256, metavar="N",
                   help="int8 calibration samples drawn from the training split (default: %(default)s)")
    p.add_argument("--int8-io", action="store_true", help="full-int8 models take and return int8 tensors")
    p.add_argument("--no-verify", action="store_true",
                   help="convert only; by default every artifact is then verified against the source model")
    p.add_argument("--budget", action="append", metavar="MODE.FIELD=VALUE",
                   help="override a parity budget, e.g. fp32.max_abs_error=1e-3 or *.min_cosine=0.99 (repeatable); "
                        "an overridden max_abs_error is absolute, not scaled with the output")
    _add_common(p)


def _verify_command(sub) -> None:
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
    p.add_argument("--budget", action="append", metavar="MODE.FIELD=VALUE",
                   help="override a parity budget, e.g. fp32.max_abs_error=1e-3 or *.min_cosine=0.99 (repeatable); "
                        "an overridden max_abs_error is absolute, not scaled with the output")
    _add_jobs_arg(p)
    _add_json(p)
    _add_common(p)


def _keygen_command(sub) -> None:
    p = sub.add_parser("keygen", help="make a key pair for signing bundles",
                       description="Write a new P-256 private key (readable by its owner only) and its public key, "
                                   "as PEM files, for `deploy --sign-key` and `verify-bundle --public-key`.")
    p.add_argument("private_key", metavar="PRIVATE.pem", help="where the private key goes (must not exist)")
    p.add_argument("public_key", metavar="PUBLIC.pem", help="where the public key goes (must not exist)")


def _repair_command(sub) -> None:
    p = sub.add_parser("repair", help="attribute and repair 8-bit artifacts that failed their budgets",
                       description="Per-layer (TFLite int8 and dynamic range) and per-weight (TF.js uint8) error "
                                   "attribution for the 8-bit artifacts; for one that did not pass, a ladder of recipes "
                                   "(more calibration, 16x8, the worst layers in float, weight-only int8), each proven "
                                   "by the same gate, stopping at the first that passes.")
    _add_model_args(p, multiple=True)
    p.add_argument("--cells", metavar="LIST", help="only these cells' ladders, comma-separated (tflite/int8, "
                                                   "tflite/dynamic, tfjs/uint8; default: all); the others' earlier "
                                                   "outcomes in repair.json are kept")
    p.add_argument("--data-dir", metavar="DIR", help="folder with local dataset copies (also EDGEPROOF_DATA_DIR)")
    _add_common(p)


def _deploy_command(sub) -> None:
    p = sub.add_parser("deploy", help="build device or web bundles from passing artifacts only",
                       description="Build bundles (model files + manifest.json) from artifacts whose verdict is pass.")
    p.add_argument("--target", required=True, choices=["web", "pi", "android"], help="where the bundles go")
    _add_model_args(p, multiple=True)
    p.add_argument("--modes", metavar="LIST", help="comma-separated precisions to deploy (default: every passing one)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: artifacts/deploy/<target>)")
    p.add_argument("--allow-failed", metavar="REASON",
                   help="also ship artifacts that FAILED their budgets; the reason is written into their manifest")
    p.add_argument("--sign-key", metavar="KEY.pem",
                   help="sign every bundle with this private key (OpenSSF model-signing; check with "
                        "`edgeproof verify-bundle --public-key`); make a key pair with `edgeproof keygen`")
    p.add_argument("--prove-aarch64", action="store_true",
                   help="pi: run every bundle's self-test on emulated aarch64 (Cortex-A72, Debian bookworm arm64, "
                        "tflite-runtime 2.14 and ai-edge-litert; scripts/pi_userland.sh, cached in "
                        "$EDGEPROOF_AARCH64_CACHE), record the runs in the manifests and the README, refuse a bundle "
                        "that fails there")
    p.add_argument("--prefer", choices=["size", "latency"], default="size",
                   help="which passing artifact index.json names as the one to ship per model (default: %(default)s)")
    p.add_argument("--accept-inconclusive", action="store_true",
                   help="also ship artifacts whose metric drop the test split was too small to decide (written into "
                        "their manifest)")
    _add_json(p)
    _add_common(p)


def _pipeline_command(sub) -> None:
    p = sub.add_parser("pipeline", help="run every stage on a configuration: train, convert, verify, deploy",
                       description="The main job: train all models, convert, verify, and build the browser demo.")
    _add_model_args(p, multiple=True)
    _add_training_args(p)
    _add_jobs_arg(p)
    _add_common(p)


def _run_command(sub) -> None:
    p = sub.add_parser("run", help="run a deployed bundle on an input",
                       description="Load a bundle with the edge runtime (numpy + a TFLite interpreter) and run it.")
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder (with manifest.json)")
    p.add_argument("--input", required=True, metavar="FILE|TEXT",
                   help="an image or .npy file, text for the text models, or a seed for the GAN")
    p.add_argument("--interpreter", choices=["auto", "ai_edge_litert", "tflite_runtime", "tensorflow"],
                   default="auto", help="TFLite interpreter to use (default: the first one installed)")
    p.add_argument("--output", metavar="PNG", help="GAN: where to write the grid of generated digits")
    p.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default: the interpreter's)")


def _bench_command(sub) -> None:
    p = sub.add_parser("bench", help="measure a bundle's load time and latency percentiles",
                       description="Load time, first inference, p50/p90/p99 over repeated runs and peak RSS.")
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder (with manifest.json)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="interpreter threads (default: %(default)s)")
    p.add_argument("--runs", type=int, default=200, metavar="N", help="timed runs after warm-up (default: %(default)s)")
    p.add_argument("--interpreter", choices=["auto", "ai_edge_litert", "tflite_runtime", "tensorflow"],
                   default="auto", help="TFLite interpreter to use (default: the first one installed)")


def _serve_command(sub) -> None:
    p = sub.add_parser("serve", help="serve the browser demo on 127.0.0.1",
                       description="Serve the static demo site built by `deploy --target web`.")
    p.add_argument("--site", default="artifacts/deploy/web", metavar="DIR", help="site folder (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default: %(default)s)")


def _doctor_command(sub) -> None:
    sub.add_parser("doctor", help="check what edgeproof needs on this machine, with the fix for what is missing",
                   description="One line per check: Python, the pipeline stack, node + npm and the JS packages, "
                               "Chromium, .venv-edge, the TFLite interpreters, GPUs. Exit status 1 when the main "
                               "job cannot run here.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeproof",
        description="Train, convert and quantize models to TFLite and TF.js, prove every artifact "
                    "against its source model, then deploy it to devices and the browser.")
    parser.add_argument("--version", action="version", version="edgeproof 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _train_command(sub)
    _convert_command(sub)
    _verify_command(sub)
    _repair_command(sub)
    _deploy_command(sub)
    _keygen_command(sub)
    _pipeline_command(sub)
    _run_command(sub)
    _bench_command(sub)
    _serve_command(sub)
    _doctor_command(sub)
    from .runtime._commands import add_trust_commands  # issue 19: selftest, verify-bundle, run --self-test/--public-key

    add_trust_commands(sub)
    return parser


EXIT_CODES = {0: "success (every artifact concerned passed)", 1: "some artifact failed (or was inconclusive)",
              2: "bad input (one line says what and how to fix it)", 3: "stage not available (a piece of the stack "
              "is not installed: the line names it)"}
STACK_MODULES = ("tensorflow", "tf_keras", "tensorflowjs", "torch", "onnx", "onnxruntime", "onnx2tf", "playwright",
                 "ai_edge_litert", "tflite_runtime", "matplotlib", "sacrebleu", "model_signing")


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: see EXIT_CODES (docs: the CLI reference)."""
    from . import _log
    from ._cli_commands import HANDLERS

    args = build_parser().parse_args(argv)
    handler = HANDLERS[args.command]
    as_json = getattr(args, "json", False)
    _log.setup(getattr(args, "artifacts", None) if hasattr(args, "verbose") else None, args.command,
               getattr(args, "verbose", False), summary=args.command == "pipeline" or as_json, stderr=as_json)
    code = None  # a crash keeps its log; a refusal of bad input leaves nothing behind
    try:
        code = handler(args)
        return code
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in STACK_MODULES:
            raise
        print(f"edgeproof {args.command}: stage not available: it needs {err.name}, which is not installed: "
              f"pip install \"edgeproof[pipeline]\" (or run `edgeproof doctor`)", file=sys.stderr)
        code = 3
        return code
    except (EdgeproofError, ValueError) as err:
        print(f"edgeproof {args.command}: error: {err}", file=sys.stderr)
        code = 2
        return code
    finally:
        _log.close(discard=code in (2, 3))


if __name__ == "__main__":
    sys.exit(main())
