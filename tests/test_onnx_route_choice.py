"""The ONNX route prefers a backend whose graph is within the fp32 budget of the source: a graph 1e-4..1e-3 of an
output's scale away from onnxruntime (onnx2tf's ConvNeXt: 2.7e-4, against a source noise floor of 2.5e-7) can give
no passing fp32 artifact, so the next backend is tried; the closer graph wins, and when none is closer the first
stays. The backends are stand-ins here (each writes a SavedModel folder); the pre-pass is real."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the pipeline stack (onnx) is needed for the ONNX route")
from onnx import TensorProto, helper  # noqa: E402

from types import SimpleNamespace  # noqa: E402

from edgeproof._spec import Layout, TensorSpec  # noqa: E402
from edgeproof.convert import _onnx_route  # noqa: E402
from edgeproof.convert._onnx_model import OnnxModel  # noqa: E402
from edgeproof.convert._onnx_backends import OnnxBackend, TfExport  # noqa: E402
from edgeproof.convert._saved_model import BoundSavedModel  # noqa: E402


@pytest.fixture
def relu(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return OnnxModel(path)


def _route(model, tmp_path, monkeypatch, errors: dict[str, float]):
    """onnx_route with each backend's graph `errors[backend]` away from the source (absent: the backend fails)."""
    tried = []

    def attempt(backend, onnx_path, saved_model, *args, unroll=False):
        tried.append(backend.value)
        if backend.value not in errors:
            return None, f"{backend.value}: some op is not implemented"
        saved_model.mkdir()
        (saved_model / "made_by").write_text(backend.value)
        err = errors[backend.value]
        return (TfExport(saved_model, backend), BoundSavedModel(saved_model, [], [], err, {"y": err}, err <= 1e-4)), None

    monkeypatch.setattr(_onnx_route, "_attempt", attempt)
    x = TensorSpec("x", (None, 4), "float32", Layout.NF)
    contract = SimpleNamespace(name="relu", inputs=(x,), outputs=(TensorSpec("y", (None, 4), "float32", Layout.NF),))
    probes = {"x": np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)}
    root = tmp_path / "out"
    root.mkdir(parents=True)
    result = _onnx_route.onnx_route(model, None, contract, contract.inputs, root, probes, None,
                                    [OnnxBackend.ONNX2TF, OnnxBackend.ONNX_TF], lambda *a, **k: None)
    leftovers = sorted(p.name for p in root.iterdir() if p.name.startswith("."))
    return result, tried, (root / "saved_model" / "made_by").read_text(), leftovers


def test_a_closer_graph_from_the_next_backend_wins(relu, tmp_path, monkeypatch):
    result, tried, made_by, leftovers = _route(relu, tmp_path, monkeypatch, {"onnx2tf": 2.7e-4, "onnx-tf": 1e-7})
    assert tried == ["onnx2tf", "onnx-tf"] and result.backend is OnnxBackend.ONNX_TF and made_by == "onnx-tf"
    assert leftovers == [], leftovers  # the set-aside graph and SavedModel are gone


def test_when_no_backend_is_closer_the_first_graph_stays(relu, tmp_path, monkeypatch):
    result, tried, made_by, leftovers = _route(relu, tmp_path, monkeypatch, {"onnx2tf": 2.7e-4, "onnx-tf": 5e-4})
    assert tried == ["onnx2tf", "onnx-tf"] and result.backend is OnnxBackend.ONNX2TF and made_by == "onnx2tf"
    assert leftovers == [] and result.bound.path.name == "saved_model"
    result, tried, made_by, _ = _route(relu, tmp_path / "b", monkeypatch, {"onnx2tf": 2.7e-4})  # onnx-tf fails
    assert result.backend is OnnxBackend.ONNX2TF and made_by == "onnx2tf" and result.bound.path.name == "saved_model"


def test_a_precise_first_graph_is_taken_without_trying_another(relu, tmp_path, monkeypatch):
    result, tried, made_by, _ = _route(relu, tmp_path, monkeypatch, {"onnx2tf": 1e-7, "onnx-tf": 1e-8})
    assert tried == ["onnx2tf"] and made_by == "onnx2tf"
