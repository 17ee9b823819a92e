"""Full-integer TFLite from ONNX graphs of real exporters: what made int8 break on third-party CNNs, fixed in the
pipeline and proven by the gate here (corpus: resnet_hf, whose int8 was cosine 0 or aborted the interpreter)."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.stack
torch = pytest.importorskip("torch", reason="the pipeline stack (torch, onnx, onnx2tf) is needed")

ROWS = 32


class Stem(torch.nn.Module):
    """A ResNet stem and head: conv, BatchNorm, ReLU, MaxPool2d(3, 2, padding=1), conv, global pooling, linear."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                        torch.nn.MaxPool2d(3, 2, 1), torch.nn.Conv2d(8, 16, 3, 1, 1), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.stem(x).mean(dim=(2, 3)))


def test_a_padded_max_pool_gives_a_full_integer_tflite_that_passes(tmp_path):
    """torch's legacy exporter writes MaxPool2d(padding=1) as a MaxPool with pads, which ONNX pads with -inf; onnx2tf
    wrote PadV2(-3.4e38) and calibration gave the padded tensor a scale of 1.3e36. The pre-pass's `maxpool_pads`
    step reflects instead; the int8 artifact passes its budgets and no tensor has an absurd scale."""
    from ai_edge_litert.interpreter import Interpreter

    from edgeproof import convert_user_model

    torch.manual_seed(0)
    x = np.random.default_rng(2).normal(size=(ROWS, 3, 32, 32)).astype(np.float32)
    torch.onnx.export(Stem().eval(), (torch.from_numpy(x[:2]),), str(tmp_path / "stem.onnx"), dynamo=False,
                      input_names=["x"], output_names=["logits"], opset_version=11,
                      dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}, "logits": {0: "N"}})
    np.savez(tmp_path / "stem.npz", x=x)
    result = convert_user_model(tmp_path / "stem.onnx", sample_data=tmp_path / "stem.npz", artifacts=tmp_path / "art",
                                onnx_backend="onnx2tf", targets=["tflite"], modes=["int8"],
                                representative_samples=ROWS, progress=False)
    assert {s["step"]: s["ok"] for s in result.info.onnx_backend["prepass"]}["maxpool_pads"] is True
    (verdict,) = [v for v in result.verdicts if v.browser is None]
    assert verdict.status == "pass", verdict.summary()
    interpreter = Interpreter(model_path=str(result.root / verdict.path))
    scales = [s for t in interpreter.get_tensor_details() for s in t["quantization_parameters"]["scales"]]
    assert scales and max(scales) < 1e3, max(scales)
