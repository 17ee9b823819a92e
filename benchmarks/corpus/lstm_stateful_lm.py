"""A stateful LSTM language model (torch.nn.LSTM, 2 layers, with (h, c) state in and out, as a device runs it token
chunk by token chunk) over WordPiece ids of real English Multi30k sentences: Embedding -> LSTM -> Linear to next-
token logits at every step. Random weights; given to the pipeline as a torch factory + state dict."""
from __future__ import annotations

from pathlib import Path

from ._build import torch_factory
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SEQ, ROWS, HIDDEN, LAYERS, CLASSES = 16, 48, 48, 2, 64


def factory():
    """`benchmarks.corpus.lstm_stateful_lm:factory`."""
    import torch
    from torch import nn

    from ._export import torch_eval

    class StatefulLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(30522, 32)
            self.lstm = nn.LSTM(32, HIDDEN, num_layers=LAYERS, batch_first=True)
            self.head = nn.Linear(HIDDEN, CLASSES)

        def forward(self, input_ids, h, c):  # h, c: [N, layers, hidden]
            seq, (h1, c1) = self.lstm(self.embedding(input_ids),
                                      (h.transpose(0, 1).contiguous(), c.transpose(0, 1).contiguous()))
            return {"logits": self.head(seq), "h": h1.transpose(0, 1), "c": c1.transpose(0, 1)}

    torch.manual_seed(21)
    return torch_eval(StatefulLSTM())


def build(workdir: Path) -> BuiltModel:
    import numpy as np
    import torch

    from ._data import multi30k, tokenize

    m = factory()
    ids = tokenize(multi30k(2 * ROWS, "en"), SEQ)["input_ids"]
    previous, current = ids[:ROWS], ids[ROWS:]
    zeros = torch.zeros(ROWS, LAYERS, HIDDEN)
    with torch.no_grad():  # the state after the previous sentence
        out = m(torch.from_numpy(previous), zeros, zeros)
    arrays = {"input_ids": current, "h": np.ascontiguousarray(out["h"].numpy()),
              "c": np.ascontiguousarray(out["c"].numpy())}
    return torch_factory(workdir, f"{__name__}:factory", m, arrays)


ENTRY = CorpusEntry(
    name="lstm_stateful_lm", family=Family.RECURRENT, source=SourceKind.TORCH,
    origin=Origin("torch", "torch.nn.LSTM (2 layers) + Embedding + Linear, (h, c) in and out",
                  config=f"embedding 30522x32, hidden {HIDDEN}, {LAYERS} layers, {CLASSES} output classes"),
    export=Export("torch factory + state dict (the pipeline's own torch -> ONNX export)", None, "batch",
                  "forward(input_ids, h, c) -> {logits, h, c}"),
    data=f"{ROWS} English Multi30k sentences as WordPiece ids padded to {SEQ}, with the LSTM state after the previous "
         f"sentence (int64 ids + float h, c); no labels",
    build=build)
