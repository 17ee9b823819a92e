"""edgeproof.runtime: inference on devices with numpy and one TFLite interpreter, nothing else.

This package never imports TensorFlow (except as the last-resort interpreter), PyTorch, ONNX,
or anything from edgeproof.train / convert / verify: on a Raspberry Pi it is installed alone.
"""
from ._interpreter import INTERPRETER_ORDER, InterpreterNotFoundError, load_interpreter

__all__ = ["INTERPRETER_ORDER", "InterpreterNotFoundError", "load_interpreter"]
