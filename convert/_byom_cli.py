"""`edgeproof convert --keras|--onnx|--torch ... --sample-data FILE.npz`: the command line of
convert_user_model(). Exit 0 when at least one artifact passed verification, 1 when none did; bad
input is a typed error, which the CLI prints as one line and exits 2 with."""
from __future__ import annotations

import argparse

from edgeproof.errors import SampleDataError

from ._byom import convert_user_model


def _csv(value):
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def run_user_convert(args: argparse.Namespace, kind: str) -> int:
    from edgeproof.verify import Status

    if not args.sample_data:
        raise SampleDataError(f"--{kind} needs --sample-data FILE.npz: the model's inputs (one array per input, named "
                              f"like it; optional 'labels') for calibration, probes and evaluation")
    custom = None
    if args.keras_custom:
        if kind != "keras":
            raise ValueError("--keras-custom goes with --keras")
        from ._byom_keras import import_custom_objects

        custom = import_custom_objects(args.keras_custom)
    result = convert_user_model(
        getattr(args, kind), kind=kind, sample_data=args.sample_data, name=args.name, weights=args.weights,
        metric=args.metric, input_shapes=args.input_shape, layouts=args.layout, custom_objects=custom,
        targets=_csv(args.targets), modes=_csv(args.modes), onnx_backend=args.onnx_backend, artifacts=args.artifacts,
        representative_samples=args.representative_samples, int8_io=args.int8_io,
        tfjs_backend=getattr(args, "tfjs_backend", "wasm"))
    verdicts = result.verdicts
    counts = {s: sum(v.status is s for v in verdicts) for s in Status}
    backend = f"; ONNX -> TensorFlow by {result.onnx_backend}" if result.onnx_backend else ""
    print(f"{result.name} ({result.source}){backend}: {counts[Status.PASS]} pass, {counts[Status.FAIL]} fail, "
          f"{counts[Status.UNSUPPORTED]} unsupported; artifacts in {result.root}, report {result.report}")
    for v in verdicts:
        if v.status is not Status.PASS:
            print(f"   {v.key}: {v.summary()}")
    if counts[Status.PASS]:
        print(f"deploy: edgeproof deploy --target pi --model {result.name} --artifacts {args.artifacts}")
    return 0 if counts[Status.PASS] else 1
