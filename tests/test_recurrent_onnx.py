"""A stateful two-layer torch LSTM language model, exported by the pipeline's own torch -> ONNX export (dynamo):
dynamo reshapes every layer's output with a Shape -> Slice -> Mul -> Concat chain, which shape inference cannot see
through with an open batch. Before the pre-pass made those targets constants (step `reshapes`), onnx2tf failed on
the second layer, whose input size was unknown ("Can't convert Python sequence with mixed types to Tensor"): no
artifact (corpus: lstm_stateful_lm; onnx-tf's LSTM fails on it either way, "Matrix size-incompatible")."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.stack
torch = pytest.importorskip("torch", reason="the pipeline stack (torch, onnx, onnx2tf) is needed")

VOCAB, WIDTH, HIDDEN, LAYERS, SEQ, ROWS = 40, 8, 12, 2, 6, 16


class StatefulLSTM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, WIDTH)
        self.lstm = torch.nn.LSTM(WIDTH, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 5)

    def forward(self, input_ids, h, c):  # h, c: [N, layers, hidden]
        seq, (h1, c1) = self.lstm(self.embedding(input_ids), (h.transpose(0, 1).contiguous(),
                                                               c.transpose(0, 1).contiguous()))
        return {"logits": self.head(seq), "h_out": h1.transpose(0, 1), "c_out": c1.transpose(0, 1)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from edgeproof.convert._onnx_export import export_torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    sample = {"input_ids": rng.integers(0, VOCAB, (ROWS, SEQ)).astype(np.int64),
              "h": rng.normal(size=(ROWS, LAYERS, HIDDEN)).astype(np.float32) * 0.5,
              "c": rng.normal(size=(ROWS, LAYERS, HIDDEN)).astype(np.float32) * 0.5}
    path = tmp_path_factory.mktemp("lstm") / "lstm.onnx"
    module = StatefulLSTM().eval()
    export = export_torch(module, path, list(sample), ["logits", "h_out", "c_out"], sample, structure="dict")
    assert export.exporter == "dynamo", export.notes
    return module, path, sample


def test_the_pre_pass_makes_the_computed_reshapes_after_lstm_layers_constant(exported):
    import onnx

    from edgeproof.convert._onnx_prepass import prepass, run_graph

    _, path, sample = exported
    model = onnx.load(str(path))
    constants = {t.name for t in model.graph.initializer}
    assert any(n.input[1] not in constants for n in model.graph.node if n.op_type == "Reshape"), "dynamo changed"
    result = prepass(model, sample)
    assert {s["step"]: s["ok"] for s in result.steps}["reshapes"] is True, result.steps
    graph = result.model.graph
    constants = {t.name for t in graph.initializer}
    lstms = [n for n in graph.node if n.op_type == "LSTM"]
    assert len(lstms) == LAYERS and all(n.input[1] in constants for n in graph.node if n.op_type == "Reshape")
    assert "Shape" not in {n.op_type for n in graph.node}
    shapes = {v.name: [d.dim_value or None for d in v.type.tensor_type.shape.dim] for v in graph.value_info}
    assert shapes[lstms[1].input[0]][-1] == HIDDEN  # the second layer's input size is known
    for batch in (1, 3):  # the batch stays open: a -1 or 0 where it goes
        feed = {k: v[:batch] for k, v in sample.items()}
        for a, b in zip(run_graph(model, feed), run_graph(result.model, feed)):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_stateful_lstm_converts_through_onnx2tf_and_its_fp32_tflite_passes(exported, tmp_path):
    from edgeproof import convert_user_model

    _, path, sample = exported
    np.savez(tmp_path / "sample.npz", **sample)
    result = convert_user_model(path, sample_data=tmp_path / "sample.npz", artifacts=tmp_path / "art",
                                onnx_backend="onnx2tf", targets=["tflite"], modes=["fp32"], representative_samples=ROWS,
                                progress=False)
    verdicts = {v.key.split("/", 2)[2]: v for v in result.verdicts if v.browser is None}
    assert verdicts["tflite/fp32"].status == "pass", verdicts["tflite/fp32"]  # TF.js: the corpus tier


class TinyCRNN(torch.nn.Module):
    """A text-line recognizer's shape (corpus: crnn_ocr_recognizer): convs collapse the height to 1, Squeeze(2), the
    width becomes time for a bidirectional LSTM, a linear layer to classes."""

    def __init__(self):
        super().__init__()
        self.cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
                                       torch.nn.Conv2d(8, 16, (4, 1)))  # height 8 -> 4 -> 1
        self.rnn = torch.nn.LSTM(16, HIDDEN, bidirectional=True, batch_first=True)
        self.head = torch.nn.Linear(2 * HIDDEN, 7)

    def forward(self, x):
        features = self.cnn(x).squeeze(2).permute(0, 2, 1)  # [N, W/2, 16]
        return self.head(self.rnn(features)[0]).softmax(-1)


def test_an_opset_12_crnn_with_open_width_converts_through_onnx2tf(tmp_path):
    """torch's legacy exporter at opset 12, N and W open: the pre-pass's opset step writes Squeeze's axes as a Constant
    node, and onnx2tf left that axis in NCHW order on its NHWC tensor ("Can not squeeze dim[2], expected a dimension
    of 1, got 8") until the `constants` step made it an initializer."""
    from edgeproof import convert_user_model

    torch.manual_seed(0)
    x = np.random.default_rng(1).normal(size=(ROWS, 1, 8, 16)).astype(np.float32)
    torch.onnx.export(TinyCRNN().eval(), (torch.from_numpy(x[:2]),), str(tmp_path / "crnn.onnx"), dynamo=False,
                      input_names=["x"], output_names=["probs"], opset_version=12,
                      dynamic_axes={"x": {0: "N", 3: "W"}, "probs": {0: "N", 1: "T"}})
    np.savez(tmp_path / "crnn.npz", x=x)
    result = convert_user_model(tmp_path / "crnn.onnx", sample_data=tmp_path / "crnn.npz", artifacts=tmp_path / "art",
                                onnx_backend="onnx2tf", modes=["fp32"], representative_samples=ROWS, progress=False)
    steps = {s["step"]: s["ok"] for s in result.info.onnx_backend["prepass"]}
    assert steps["opset"] is True and steps["constants"] is True, steps
    verdicts = {v.key.split("/", 2)[2]: v for v in result.verdicts if v.browser is None}
    for key in ("tflite/fp32", "tfjs/fp32"):
        assert key in verdicts and verdicts[key].status == "pass", (key, verdicts.get(key))


class StreamingGRU(torch.nn.Module):
    """A 2-layer GRU with its state in and out (corpus: gru_stream_state), as torch's legacy exporter writes it."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, WIDTH)
        self.gru = torch.nn.GRU(WIDTH, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 3)

    def forward(self, input_ids, state):  # state: [N, layers, hidden]
        seq, next_state = self.gru(self.embedding(input_ids), state.transpose(0, 1).contiguous())
        return self.head(seq[:, -1]), next_state.transpose(0, 1)


def test_a_stateful_gru_gets_a_full_integer_tflite_from_its_unrolled_batch_1_graph(tmp_path):
    """onnx2tf writes the GRU as a WHILE loop over tensor lists, which full-integer quantization cannot lower
    ("Lowering tensor list ops is failed"); the batch-1 retry unrolls recurrent layers first, and the int8 TFLite
    passes the gate."""
    from edgeproof import convert_user_model

    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    ids = rng.integers(0, VOCAB, (ROWS, SEQ)).astype(np.int64)
    state = (rng.normal(size=(ROWS, LAYERS, HIDDEN)) * 0.5).astype(np.float32)
    torch.onnx.export(StreamingGRU().eval(), (torch.from_numpy(ids[:2]), torch.from_numpy(state[:2])),
                      str(tmp_path / "gru.onnx"), dynamo=False, opset_version=14, input_names=["ids", "state"],
                      output_names=["scores", "next_state"],
                      dynamic_axes={"ids": {0: "N"}, "state": {0: "N"}, "scores": {0: "N"}, "next_state": {0: "N"}})
    np.savez(tmp_path / "gru.npz", ids=ids, state=state)
    result = convert_user_model(tmp_path / "gru.onnx", sample_data=tmp_path / "gru.npz", artifacts=tmp_path / "art",
                                onnx_backend="onnx2tf", targets=["tflite"], modes=["int8"],
                                representative_samples=ROWS, progress=False)
    (verdict,) = [v for v in result.verdicts if v.browser is None and v.key.endswith("tflite/int8")]
    assert verdict.status == "pass", verdict
    record = next(r for r in result.records if r.key.endswith("tflite/int8"))
    assert any("batch-1 export" in n for n in record.notes), record.notes
