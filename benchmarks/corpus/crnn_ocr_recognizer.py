"""A CRNN text-line recognizer (the architecture of PaddleOCR's CRNN / Shi et al. 2015: a VGG-style CNN collapsing
the height, a 2-layer bidirectional LSTM over the width, a linear layer to CTC classes, softmax), random weights
with trained-like BatchNorm; exported with torch's legacy ONNX exporter at opset 12 with dynamic N and W, then
renamed like a Paddle2ONNX export (input `x`, nodes `LSTM@0`, `Softmax@0`, output `softmax_0.tmp_0`)."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

HEIGHT, WIDTH, ROWS, CLASSES = 32, 128, 32, 37  # 10 digits + 26 letters + the CTC blank


def recognizer():
    import torch
    from torch import nn

    from ._export import torch_eval, trained_like_batchnorm

    def block(cin, cout, pool):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.MaxPool2d(pool, pool))

    class CRNN(nn.Module):
        def __init__(self, hidden=48):
            super().__init__()
            self.cnn = nn.Sequential(block(1, 16, (2, 2)), block(16, 32, (2, 2)), block(32, 48, (2, 1)),
                                     block(48, 64, (2, 1)), nn.Conv2d(64, 64, (2, 1)))  # height 32 -> 1
            self.rnn = nn.LSTM(64, hidden, num_layers=2, bidirectional=True, batch_first=True)
            self.fc = nn.Linear(2 * hidden, CLASSES)

        def forward(self, x):
            features = self.cnn(x).squeeze(2).permute(0, 2, 1)  # [N, W/4, C]
            seq, _ = self.rnn(features)
            return torch.softmax(self.fc(seq), dim=-1)  # CTC class probabilities per column

    torch.manual_seed(17)
    return torch_eval(trained_like_batchnorm(CRNN(), seed=17))


def build(workdir: Path) -> BuiltModel:
    from ._data import text_lines

    return onnx_from_torch(workdir, recognizer(), {"x": text_lines(ROWS, height=HEIGHT, width=WIDTH)}, ["probs"],
                           opset=12, dynamo=False, dynamic={"x": {0: "N", 3: "W"}, "probs": {0: "N", 1: "T"}},
                           rename_style="paddle", rename_tensors={"probs": "softmax_0.tmp_0"})


ENTRY = CorpusEntry(
    name="crnn_ocr_recognizer", family=Family.RECURRENT, source=SourceKind.ONNX,
    origin=Origin("PaddleOCR's CRNN recognizer (architecture re-implemented in torch here)",
                  "CRNN (Shi et al. 2015): CNN + 2-layer BiLSTM + CTC softmax",
                  config=f"input 1x{HEIGHT}xW, LSTM hidden 48, {CLASSES} CTC classes"),
    export=Export("torch.onnx legacy (dynamo=False)", 12, "N, W",
                  "renamed after export with onnx.helper like Paddle2ONNX: `LSTM@0`, `Softmax@0`, output "
                  "`softmax_0.tmp_0`"),
    data=f"{ROWS} text lines of 4 real MNIST test digits side by side, resized to {HEIGHT}x{WIDTH}, grey, in [-1, 1] "
         f"(PaddleOCR's recognizer normalisation), NCHW; no labels (random weights)",
    build=build)
