"""The litert-torch route (convert/_litert_torch.py): a PyTorch source's fp32 TFLite made a second way, directly by
litert-torch in its own environment (.venv-litert), verified by the same gate as its own cell; its failures and
its absence named, never silent. The zoo's five PyTorch models take this route in the fast matrix too
(tests/fast_matrix.py SECOND_ROUTE)."""
from __future__ import annotations

import json
import os
import stat
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.stack

ROWS = 12


def two_head_cnn():
    """A small NCHW CNN returning a dict of two outputs (class scores and an embedding)."""
    import torch
    from torch import nn

    class TwoHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.PReLU(8),
                                      nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.scores, self.embed = nn.Linear(16, 5), nn.Linear(16, 4)

        def forward(self, image):
            h = self.body(image)
            return {"scores": torch.softmax(self.scores(h), -1), "embedding": self.embed(h)}

    torch.manual_seed(3)
    return TwoHead().eval()


def _sample(path):
    x = np.random.default_rng(4).normal(size=(ROWS, 3, 16, 16)).astype(np.float32)
    np.savez(path, image=x)
    return x


def test_a_torch_model_gets_a_second_route_proven_by_the_gate(tmp_path):
    import torch
    from ai_edge_litert.interpreter import Interpreter

    from edgeproof.convert._litert_torch import litert_python
    from edgeproof.pipeline import convert_user_model

    python, why = litert_python()
    assert python is not None, f"the litert-torch environment is part of the test setup: {why}"
    x = _sample(tmp_path / "s.npz")
    result = convert_user_model(two_head_cnn, sample_data=tmp_path / "s.npz", name="twohead",
                                artifacts=tmp_path / "art", targets=["tflite"], modes=["fp32"], progress=False)
    by_key = {r.key: r for r in result.records}
    assert list(by_key) == ["tflite/fp32", "tflite/fp32-litert-torch"]
    lite = by_key["tflite/fp32-litert-torch"]
    assert lite.status == "ok" and lite.route == "torch>litert-torch>tflite" and lite.recipe["route"] == "litert-torch"
    # the versions the worker converted with (requirements/litert.lock)
    assert lite.recipe["litert-torch"] == "0.10.0" and lite.recipe["torch"].startswith("2.13.0")
    assert [t.name.split(":")[0] for t in lite.outputs] == ["scores", "embedding"]
    verdicts = {v.cell: v for v in result.verdicts}
    assert verdicts["tflite/fp32-litert-torch"].status.value == "pass", verdicts["tflite/fp32-litert-torch"].summary()
    assert "tflite/fp32-litert-torch in litertjs-wasm" in verdicts  # proven in the browser like every .tflite
    # independently of the gate: the file computes the module's outputs, by name
    runner = Interpreter(model_path=str(result.root / lite.path)).get_signature_runner()
    want = two_head_cnn()(torch.from_numpy(x[:1]))
    got = runner(image=x[:1])
    for name in ("scores", "embedding"):
        np.testing.assert_allclose(got[name], want[name].detach().numpy(), atol=1e-5)
    assert "fp32-litert-torch" in result.report.read_text()


def test_without_its_environment_the_route_says_why(tmp_path, monkeypatch):
    from edgeproof.pipeline import convert_user_model

    monkeypatch.setenv("EDGEPROOF_LITERT_PYTHON", "off")
    _sample(tmp_path / "s.npz")
    result = convert_user_model(two_head_cnn, sample_data=tmp_path / "s.npz", name="twohead",
                                artifacts=tmp_path / "art", targets=["tflite"], modes=["fp32"], progress=False)
    assert [r.key for r in result.records] == ["tflite/fp32"]
    notes = json.loads((result.root / "conversion.json").read_text())["notes"]
    assert "litert-torch route not tried: EDGEPROOF_LITERT_PYTHON=off" in notes


def _program():
    from edgeproof._spec import Layout, TensorSpec
    from edgeproof.convert._litert_torch import TorchProgram

    image = TensorSpec("image", (None, 3, 16, 16), "float32", Layout.NCHW)
    return TorchProgram(two_head_cnn(), [image], [image], ["scores", "embedding"], "dict")


def test_a_litert_failure_is_its_reason_in_one_line(tmp_path):
    from edgeproof.convert._litert_torch import LitertRefused, convert_program

    x = {"image": np.zeros((1, 3, 16, 16), np.float32)}
    out = tmp_path / "m.tflite"
    # this environment's python has no litert_torch: the worker's own one-line reason comes back
    with pytest.raises(LitertRefused, match="ModuleNotFoundError: No module named 'litert_torch'"):
        convert_program(_program(), x, out, python=sys.executable)
    assert not out.exists() and os.listdir(tmp_path) == []  # nothing half-written, no temporary folder left


def test_a_hung_conversion_is_stopped_at_its_time_limit(tmp_path):
    from edgeproof.convert._litert_torch import LitertRefused, convert_program

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nsleep 60\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "out").mkdir()
    with pytest.raises(LitertRefused, match=r"did not finish in 2 s \(EDGEPROOF_LITERT_TIMEOUT\)"):
        convert_program(_program(), {"image": np.zeros((1, 3, 16, 16), np.float32)}, tmp_path / "out" / "m.tflite",
                        python=fake, timeout=2)
    assert os.listdir(tmp_path / "out") == []


def test_an_explicit_environment_that_does_not_exist_is_named(monkeypatch, tmp_path):
    from edgeproof.convert._litert_torch import litert_python

    monkeypatch.setenv("EDGEPROOF_LITERT_PYTHON", str(tmp_path / "nope" / "python"))
    python, why = litert_python()
    assert python is None and "is not a file" in why and "scripts/setup.sh litert" in why


def test_a_bad_time_limit_is_named(tmp_path, monkeypatch):
    from edgeproof.convert._litert_torch import LitertRefused, convert_program

    monkeypatch.setenv("EDGEPROOF_LITERT_TIMEOUT", "soon")
    with pytest.raises(LitertRefused, match="EDGEPROOF_LITERT_TIMEOUT='soon' is not a number of seconds > 0"):
        convert_program(_program(), {"image": np.zeros((1, 3, 16, 16), np.float32)}, tmp_path / "m.tflite",
                        python=tmp_path / "python")
    assert os.listdir(tmp_path) == []
