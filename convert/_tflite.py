"""SavedModel -> .tflite in one of four precisions, and a description of the result's tensors."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from edgeproof._frameworks import import_tensorflow
from edgeproof._quant import QuantConfig, QuantMode


def representative_batches(x_train: dict[str, np.ndarray], count: int, seed: int = 0,
                           layout_fix: Optional[dict] = None) -> Iterator[dict[str, np.ndarray]]:
    """`count` single examples drawn from the training split, as the int8 calibrator wants them."""
    n = len(next(iter(x_train.values())))
    for i in np.random.default_rng(seed).choice(n, size=min(count, n), replace=False):
        yield {k: v[i:i + 1] for k, v in x_train.items()}


def convert_saved_model(saved_model: Path, config: QuantConfig,
                        calibration: Optional[dict[str, np.ndarray]] = None) -> bytes:
    """Convert with builtin ops only: a model that would need Flex (SELECT_TF_OPS) kernels fails
    here with the converter's reason instead of producing a file stock runtimes cannot run."""
    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if config.mode is QuantMode.FP16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif config.mode is QuantMode.DYNAMIC:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif config.mode is QuantMode.INT8:
        if calibration is None:
            raise ValueError("full-integer int8 needs calibration data from the training split")
        _check_calibration(saved_model, calibration)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: representative_batches(calibration, config.representative_samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if config.int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()


def _check_calibration(saved_model: Path, calibration: dict[str, np.ndarray]) -> None:
    """Calibration data must match the model's inputs by name, per-example shape and dtype (a float64 or int64
    set would otherwise fail later, inside the converter, with a message that names no input)."""
    tf = import_tensorflow()
    _, inputs = tf.saved_model.load(str(saved_model)).signatures["serving_default"].structured_input_signature
    expected = {name: (tuple(spec.shape[1:]), spec.dtype.name) for name, spec in inputs.items()}
    got = {name: (tuple(a.shape[1:]), a.dtype.name) for name, a in calibration.items()}
    if set(expected) != set(got) or any(expected[k] != got[k] for k in expected):
        raise ValueError(f"int8 calibration data does not match the model's inputs: the model takes "
                         f"{expected} (per-example shape, dtype), the calibration set has {got}")


def describe_tensors(model_content: bytes) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs of a .tflite by signature name: shape (-1 for dynamic), dtype, quantization."""
    from edgeproof.runtime._interpreter import _import_interpreter_class

    interp = _import_interpreter_class("ai_edge_litert")(model_content=model_content)
    runner = interp.get_signature_runner()

    def info(name: str, d: dict) -> dict:
        q = d.get("quantization_parameters", {})
        scales = [float(s) for s in q.get("scales", [])]
        quant = {"scale": scales, "zero_point": [int(z) for z in q.get("zero_points", [])],
                 "axis": int(q.get("quantized_dimension", 0))} if scales else None
        shape = d.get("shape_signature")
        shape = d["shape"] if shape is None or len(shape) == 0 else shape
        return {"name": name, "shape": [int(s) for s in shape], "dtype": np.dtype(d["dtype"]).name,
                "quantization": quant}

    inputs = [info(n, d) for n, d in runner.get_input_details().items()]
    outputs = [info(n, d) for n, d in runner.get_output_details().items()]
    return inputs, outputs
