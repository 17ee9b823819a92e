"""Make the unmaintained `onnx-tf` 1.10 importable on this stack. Used only by the onnx-tf backend.

onnx-tf is no longer maintained (its README says so). Two things break it on TF 2.19 / onnx 1.2x,
and this module is the one place that mends them:

1. `onnx.mapping` was removed from onnx. onnx-tf reads four of its tables; they are rebuilt
   here from the public `onnx.helper` functions that replaced them.
2. onnx-tf imports tensorflow-addons, which imports `keras.src.engine.keras_tensor`. With
   Keras 3 installed that module does not exist, so `keras` is aliased to `tf_keras` (Keras 2,
   what TF_USE_LEGACY_KERAS=1 selects) *only while tensorflow_addons is imported*; the
   original `keras` modules are put back afterwards so nothing else in the process is affected.

3. onnx-tf knows operator versions up to ONNX opset 15; newer models are converted down with
   onnx.version_converter, and its "not implemented" errors (unittest.SkipTest subclasses that
   a test runner would count as skips) are re-raised as OnnxTfUnsupportedError.
4. Of the operators onnx-tf has, only Squeeze-13 and Unsqueeze-13 (axes as an input instead of an
   attribute) lack a handler at opsets 13-15, so every opset-13+ exporter's transformer failed with
   "Unsqueeze version 13 is not implemented". `version_13` is added to both: constant axes become
   the attribute the opset-11 handler reads. Split-13's constant sizes become a list the same way
   (as an int64 tensor they make a SplitV that TFLite has only as a Select op).

Call `prepare()` / `export_saved_model()` (or `import_onnx_tf()`) instead of using onnx_tf directly.
"""
from __future__ import annotations

import copy
import importlib
import sys
import types
from typing import Any

import numpy as np


def _rebuild_onnx_mapping() -> None:
    import onnx
    from onnx import helper

    if hasattr(onnx, "mapping") and hasattr(helper, "mapping"):
        return
    to_np: dict[int, Any] = {}
    for dtype in sorted(helper.get_all_tensor_dtypes()):
        try:
            to_np[dtype] = helper.tensor_dtype_to_np_dtype(dtype)
        except (KeyError, ValueError, TypeError):
            continue
    np_to_tensor: dict[Any, int] = {}
    for dtype, np_dtype in to_np.items():  # lowest enum first: FLOAT wins over BFLOAT16 etc.
        np_to_tensor.setdefault(np_dtype, dtype)
    to_storage = {d: helper.tensor_dtype_to_storage_tensor_dtype(d) for d in to_np}
    storage_to_field = {helper.tensor_dtype_to_storage_tensor_dtype(d): helper.tensor_dtype_to_field(d)
                        for d in to_np}

    mapping = types.ModuleType("onnx.mapping", "Rebuilt by edgeproof for onnx-tf; see _onnx_tf_compat.")
    mapping.TENSOR_TYPE_TO_NP_TYPE = to_np
    mapping.NP_TYPE_TO_TENSOR_TYPE = np_to_tensor
    mapping.TENSOR_TYPE_TO_STORAGE_TENSOR_TYPE = to_storage
    mapping.STORAGE_TENSOR_TYPE_TO_FIELD = storage_to_field
    sys.modules["onnx.mapping"] = mapping
    onnx.mapping = mapping
    helper.mapping = mapping  # onnx_tf.pb_wrapper does `from onnx.helper import mapping`


def _import_tensorflow_addons_with_tf_keras() -> None:
    if "tensorflow_addons" in sys.modules:
        return
    import tf_keras

    saved = {name: mod for name, mod in sys.modules.items() if name == "keras" or name.startswith("keras.")}
    try:
        for name in saved:
            del sys.modules[name]
        sys.modules["keras"] = tf_keras
        sys.modules["keras.src"] = tf_keras.src
        sys.modules["keras.src.engine"] = importlib.import_module("tf_keras.src.engine")
        sys.modules["keras.src.engine.keras_tensor"] = importlib.import_module("tf_keras.src.engine.keras_tensor")
        importlib.import_module("tensorflow_addons")
    finally:
        for name in [n for n in sys.modules if n == "keras" or n.startswith("keras.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def import_onnx_tf():
    """Return the `onnx_tf` module, importable on TF 2.19 / onnx >= 1.16."""
    from edgeproof._frameworks import import_tensorflow

    import_tensorflow()  # with TF_USE_LEGACY_KERAS=1, before tensorflow_addons looks at tf.keras
    _rebuild_onnx_mapping()
    _import_tensorflow_addons_with_tf_keras()
    module = importlib.import_module("onnx_tf")
    _add_axes_input_handlers()
    return module


def _axes_from_input(node, tensor_dict) -> list[int] | None:
    """The axes of a Squeeze/Unsqueeze-13 node (its second input) as a list, when they are a constant; None when
    the node has no axes input; an OnnxTfUnsupportedError when they are computed at run time."""
    import tensorflow as tf

    if len(node.inputs) < 2 or not node.inputs[1]:
        return None
    value = tf.get_static_value(tensor_dict[node.inputs[1]])
    if value is None:
        raise OnnxTfUnsupportedError(f"{node.op_type} version 13 with axes computed at run time is not implemented")
    return [int(a) for a in np.asarray(value).reshape(-1)]


def _add_axes_input_handlers() -> None:
    from onnx_tf.handlers.backend.split import Split
    from onnx_tf.handlers.backend.squeeze import Squeeze
    from onnx_tf.handlers.backend.unsqueeze import Unsqueeze

    if hasattr(Unsqueeze, "version_13"):
        return
    split_13 = Split.version_13.__func__

    def constant_sizes_13(cls, node, **kwargs):
        import tensorflow as tf

        given = len(node.inputs) > 1 and node.inputs[1]
        value = tf.get_static_value(kwargs["tensor_dict"][node.inputs[1]]) if given else None
        if value is None:
            return split_13(cls, node, **kwargs)
        old = copy.copy(node)
        old.attrs, old.inputs = {**node.attrs, "split": [int(v) for v in np.asarray(value).reshape(-1)]}, node.inputs[:1]
        return split_13(cls, old, **kwargs)

    Split.version_13 = classmethod(constant_sizes_13)

    def as_opset_11(node, tensor_dict):  # a copy: onnx-tf may trace the graph more than once
        axes = _axes_from_input(node, tensor_dict)
        old = copy.copy(node)
        old.attrs, old.inputs = dict(node.attrs), list(node.inputs[:1])
        if axes is not None:
            old.attrs["axes"] = axes
        return old

    def unsqueeze_13(cls, node, **kwargs):
        return cls._common(as_opset_11(node, kwargs["tensor_dict"]), **kwargs)

    def squeeze_13(cls, node, **kwargs):
        return cls.version_11(as_opset_11(node, kwargs["tensor_dict"]), **kwargs)

    Unsqueeze.version_13 = classmethod(unsqueeze_13)
    Squeeze.version_13 = classmethod(squeeze_13)


# onnx-tf 1.10 lacks handlers for many operator versions newer than ONNX opset 15 (Reshape-19,
# LeakyRelu-16, ...); the dynamo exporter writes opset 18+, so models are converted down first.
# Operators with no form at opset 15 (LayerNormalization, opset 17) make the model unsupported.
ONNX_TF_MAX_OPSET = 15


class OnnxTfUnsupportedError(RuntimeError):
    """onnx-tf cannot convert an operator. (onnx-tf raises a unittest.SkipTest subclass for this,
    which a test runner would silently count as a skip; it is re-raised as this instead.)"""


def prepare(model, **kwargs):
    """`onnx_tf.backend.prepare` on `model` (an onnx ModelProto), converted to an opset onnx-tf knows."""
    import onnx
    from onnx import version_converter

    backend = import_onnx_tf().backend
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset > ONNX_TF_MAX_OPSET:
        try:
            model = version_converter.convert_version(model, ONNX_TF_MAX_OPSET)
            onnx.checker.check_model(model)
        except Exception as err:
            raise OnnxTfUnsupportedError(
                f"onnx-tf needs ONNX opset <= {ONNX_TF_MAX_OPSET} and this opset-{opset} model cannot be converted "
                f"down: {' '.join(str(err).split())[-200:]}") from None
    from onnx.backend.test.runner import BackendIsNotSupposedToImplementIt

    try:
        return backend.prepare(model, **kwargs)
    except BackendIsNotSupposedToImplementIt as err:
        raise OnnxTfUnsupportedError(f"onnx-tf cannot convert this model: {_reason(err)}") from None


def _reason(err: BaseException) -> str:
    """The operator onnx-tf lacks, without the traceback it wraps the message in."""
    import re

    found = re.findall(r"([A-Za-z]+ version \d+ is not implemented)", str(err))
    return found[-1] if found else " ".join(str(err).split())[-300:]


def export_saved_model(rep, path: str) -> None:
    """`TensorflowRep.export_graph` with onnx-tf's skip-exceptions turned into real errors."""
    from onnx.backend.test.runner import BackendIsNotSupposedToImplementIt

    try:
        rep.export_graph(path)
    except BackendIsNotSupposedToImplementIt as err:
        raise OnnxTfUnsupportedError(f"onnx-tf cannot convert this model: {_reason(err)}") from None
