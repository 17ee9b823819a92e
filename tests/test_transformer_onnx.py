"""A BERT-style encoder as torch's legacy exporter writes it at opset 14 (Unsqueeze-13 with its axes as an input, the
attention mask filled with torch.finfo(float32).min, exact GELU, LayerNorm, mean pooling, int64 ids), through onnx-tf:
the route real transformer encoders take when onnx2tf's layout heuristics break on them (corpus: bert_tiny_cls,
roberta_optimum, minilm_l6_mean_pool, vit_tiny). Every float and dynamic-range cell must pass in its own runtime;
before this route was mended onnx-tf gave no artifact ("Unsqueeze version 13 is not implemented"), TFLite needed
Select ops for Erf, TF.js refused onnx-tf's Assert ops and the fp16 mask was -inf (NaN outputs)."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.stack
torch = pytest.importorskip("torch", reason="the pipeline stack (torch, onnx, onnx-tf) is needed")

VOCAB, WIDTH, HEADS, LENGTH = 50, 16, 2, 12


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, WIDTH)
        self.qkv, self.out = torch.nn.Linear(WIDTH, 3 * WIDTH), torch.nn.Linear(WIDTH, WIDTH)
        self.norm1, self.norm2 = torch.nn.LayerNorm(WIDTH), torch.nn.LayerNorm(WIDTH)
        self.up, self.down = torch.nn.Linear(WIDTH, 4 * WIDTH), torch.nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, input_ids, attention_mask):
        n, t = input_ids.shape
        x = self.embed(input_ids)
        fill = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min  # as transformers
        q, k, v = (z.reshape(n, t, HEADS, WIDTH // HEADS).transpose(1, 2) for z in self.qkv(x).chunk(3, dim=-1))
        scores = q @ k.transpose(-1, -2) / (WIDTH // HEADS) ** 0.5 + fill
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, WIDTH)
        x = self.norm1(x + self.out(attended))
        x = self.norm2(x + self.down(torch.nn.functional.gelu(self.up(x))))  # exact GELU: Erf
        mask = attention_mask[..., None].float()
        return (x * mask).sum(1) / mask.sum(1)


def test_a_bert_style_encoder_goes_through_onnx_tf_and_every_float_cell_passes(tmp_path):
    from edgeproof import convert_user_model

    torch.manual_seed(0)
    model = Encoder().eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, size=(48, LENGTH)).astype(np.int64)
    mask = (np.arange(LENGTH)[None, :] < rng.integers(3, LENGTH + 1, size=(48, 1))).astype(np.int64)
    ids *= mask
    torch.onnx.export(model, (torch.from_numpy(ids[:2]), torch.from_numpy(mask[:2])), str(tmp_path / "enc.onnx"),
                      input_names=["input_ids", "attention_mask"], output_names=["pooled"], opset_version=14,
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}},
                      dynamo=False)
    np.savez(tmp_path / "enc.npz", input_ids=ids, attention_mask=mask)
    result = convert_user_model(tmp_path / "enc.onnx", sample_data=tmp_path / "enc.npz", artifacts=tmp_path / "art",
                                onnx_backend="onnx-tf", representative_samples=48, progress=False)
    verdicts = {v.key.split("/", 2)[2]: v for v in result.verdicts if v.browser is None}  # native rows
    for key in ("tflite/fp32", "tflite/fp16", "tflite/dynamic", "tfjs/fp32", "tfjs/fp16", "tfjs/uint8"):
        assert key in verdicts and verdicts[key].status == "pass", (key, verdicts.get(key))
    assert verdicts["tflite/int8"].status in ("pass", "fail")  # an int8 verdict, not an interpreter abort
    steps = {s["step"]: s["ok"] for s in result.info.onnx_backend["prepass"]}
    assert steps["sentinels"] is True and steps["gelu"] is True, steps
    from ai_edge_litert.interpreter import Interpreter

    ops = {op["op_name"] for op in Interpreter(model_path=str(result.root / "tflite" / "fp32.tflite"))
           ._get_ops_details()}
    assert "GELU" in ops and not any("FLEX" in op.upper() or "CUSTOM" in op.upper() for op in ops), ops
