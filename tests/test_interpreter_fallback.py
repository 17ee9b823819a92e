"""A .tflite whose node XNNPACK declines is still a valid model: the runtime loads it on the builtin kernels
(no default delegate) and says so, instead of calling the file invalid. The interpreter class is a stand-in
that behaves as ai-edge-litert does when XNNPACK refuses ("failed to create XNNPACK runtime" at
allocate_tensors); the real class is used for everything else in the suite."""
from __future__ import annotations

import pytest

from edgeproof.runtime import _interpreter


class _Declines:
    """Fails like ai-edge-litert when XNNPACK declines, unless asked for the builtin kernels only."""

    def __init__(self, model_path, num_threads=None, experimental_op_resolver_type=None):
        self.resolver = experimental_op_resolver_type

    def allocate_tensors(self):
        if self.resolver is None:
            raise RuntimeError("Failed to create XNNPACK runtime.\nNode number 7 (TfLiteXNNPackDelegate) failed")


class _Broken(_Declines):
    def allocate_tensors(self):
        raise ValueError("Model provided has model identifier 'abcd', should be 'TFL3'")


def test_a_model_xnnpack_declines_runs_without_the_default_delegate(monkeypatch):
    monkeypatch.setattr(_interpreter, "_import_interpreter_class", lambda name: _Declines)
    name, interp = _interpreter.load_interpreter("model.tflite", "ai_edge_litert")
    assert name == "ai_edge_litert"
    assert interp.resolver is not None and interp.resolver.name == "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
    assert interp.edgeproof_fallback.startswith("without XNNPACK (it declined: Failed to create XNNPACK runtime")


def test_a_broken_file_is_still_an_error(monkeypatch):
    monkeypatch.setattr(_interpreter, "_import_interpreter_class", lambda name: _Broken)
    with pytest.raises(ValueError, match="model identifier"):
        _interpreter.load_interpreter("model.tflite", "ai_edge_litert")
