"""edgeproof.runtime: inference on devices with numpy and one TFLite interpreter, nothing else.

This package never imports TensorFlow (except as the last-resort interpreter), PyTorch, ONNX,
or anything from edgeproof.train / convert / verify: on a Raspberry Pi it is installed alone.
"""
from ._interpreter import INTERPRETER_ORDER, InterpreterNotFoundError, load_interpreter
from ._manifest import BundleError, load_manifest, parse_manifest
from ._model import Model
from ._signature import InputError
from ._tflite_runner import ModelFileError, TFLiteRunner

__all__ = ["BundleError", "INTERPRETER_ORDER", "InputError", "InterpreterNotFoundError", "Model", "ModelFileError",
           "TFLiteRunner", "load_interpreter", "load_manifest", "parse_manifest"]
