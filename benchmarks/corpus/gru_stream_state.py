"""A streaming GRU text classifier with explicit state (how recurrent models are deployed on devices: one chunk per
call, the state carried between calls): Embedding -> 2-layer GRU whose initial state is an input and whose final
state is an output -> sigmoid score. Random weights; exported with torch's legacy ONNX exporter at opset 14 (ONNX
GRU op), dynamic batch, then renamed with slashes and dots like PyTorch's own scoped names (`/backbone/stage.1/...`)
and inputs `input_ids.1` / `state.1`."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

CHUNK, ROWS, HIDDEN, LAYERS = 32, 48, 48, 2


def model():
    import torch
    from torch import nn

    from ._export import torch_eval

    class StreamingGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(30522, 32)
            self.gru = nn.GRU(32, HIDDEN, num_layers=LAYERS, batch_first=True)
            self.head = nn.Linear(HIDDEN, 1)

        def forward(self, input_ids, state):  # state: [N, layers, hidden] (batch first, like every input)
            seq, last = self.gru(self.embedding(input_ids), state.transpose(0, 1).contiguous())
            return torch.sigmoid(self.head(seq[:, -1])), last.transpose(0, 1)

    torch.manual_seed(20)
    return torch_eval(StreamingGRU())


def build(workdir: Path) -> BuiltModel:
    import numpy as np
    import torch

    from ._data import imdb_reviews, tokenize

    m = model()
    texts, _ = imdb_reviews(ROWS, start=3000)
    ids = tokenize(texts, 2 * CHUNK)["input_ids"]
    first, second = ids[:, :CHUNK], ids[:, CHUNK:]
    with torch.no_grad():  # the state a device has after the review's first chunk
        _, state = m(torch.from_numpy(first), torch.zeros(ROWS, LAYERS, HIDDEN))
    arrays = {"input_ids": second, "state": np.ascontiguousarray(state.numpy())}
    return onnx_from_torch(workdir, m, arrays, ["score", "next_state"], opset=14, dynamo=False,
                           dynamic={"input_ids": {0: "batch"}, "state": {0: "batch"}, "score": {0: "batch"},
                                    "next_state": {0: "batch"}},
                           rename_style="slashes",
                           rename_tensors={"input_ids": "input_ids.1", "state": "state.1",
                                           "score": "head/score", "next_state": "gru/next_state.0"})


ENTRY = CorpusEntry(
    name="gru_stream_state", family=Family.RECURRENT, source=SourceKind.ONNX,
    origin=Origin("torch", "torch.nn.GRU (2 layers) + Embedding + Linear, state in and out",
                  config=f"embedding 30522x32, hidden {HIDDEN}, {LAYERS} layers, chunk {CHUNK} tokens"),
    export=Export("torch.onnx legacy (dynamo=False)", 14, "batch",
                  "renamed after export with onnx.helper: inputs `input_ids.1`, `state.1`, outputs `head/score`, "
                  "`gru/next_state.0`, nodes `/backbone/stage.1/GRU_0`"),
    data=f"{ROWS} IMDb test reviews as WordPiece ids: the second {CHUNK}-token chunk of each, with the GRU state "
         f"after its first chunk (int64 ids + float state); no labels (random weights)",
    build=build)
