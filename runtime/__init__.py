"""edgeproof.runtime: inference on devices with numpy and one TFLite interpreter, nothing else.

This package never imports TensorFlow (except as the last-resort interpreter), PyTorch, ONNX,
or anything from edgeproof.train / convert / verify: on a Raspberry Pi it is installed alone.
Bundle signatures are checked with the optional `model-signing` package (edgeproof[signing]),
imported only when a public key is given.
"""
from ._bundle_signing import SignatureError, verify_bundle_signature
from ._interpreter import INTERPRETER_ORDER, InterpreterNotFoundError, load_interpreter
from ._manifest import BundleError, load_manifest, parse_manifest
from ._model import Model
from ._selftest import SelfTestError, SelfTestResult, self_test
from ._signature import InputError
from ._tflite_runner import ModelFileError, TFLiteRunner

__all__ = [
           "INTERPRETER_ORDER",
           "BundleError",
           "InputError",
           "InterpreterNotFoundError",
           "Model",
           "ModelFileError",
           "SelfTestError",
           "SelfTestResult",
           "SignatureError",
           "TFLiteRunner",
           "load_interpreter",
           "load_manifest",
           "parse_manifest",
           "self_test",
           "verify_bundle_signature",
]
