"""A text-direction classifier in the style of PaddleOCR's `cls` model (a MobileNetV3-small-like CNN: hard-swish,
squeeze-excitation with hard-sigmoid, depthwise convolutions, then pooling, a linear layer and softmax over
{0, 180} degrees), random weights with trained-like BatchNorm; exported with torch's legacy ONNX exporter at opset
11 with dynamic N, H and W, renamed like a Paddle2ONNX export (the issue's `'Softmax@0' is not a valid scope name`
case)."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

HEIGHT, WIDTH, ROWS = 48, 192, 32


def classifier():
    import torch
    from torch import nn

    from ._export import torch_eval, trained_like_batchnorm

    class SE(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)

        def forward(self, x):
            s = nn.functional.adaptive_avg_pool2d(x, 1)
            return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))

    def block(cin, cout, stride, se):
        layers = [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.Hardswish()]
        if se:
            layers.append(SE(cin))
        layers += [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers)

    class DirectionClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
            self.blocks = nn.Sequential(block(16, 16, 2, True), block(16, 24, 2, False), block(24, 40, 2, True),
                                        block(40, 48, 1, True))
            self.fc = nn.Linear(48, 2)

        def forward(self, x):
            h = nn.functional.hardswish(self.blocks(self.stem(x)))
            return torch.softmax(self.fc(h.mean((2, 3))), dim=-1)

    torch.manual_seed(18)
    return torch_eval(trained_like_batchnorm(DirectionClassifier(), seed=18))


def build(workdir: Path) -> BuiltModel:
    from ._data import images

    x = images(ROWS, (HEIGHT, WIDTH), norm="pm1", start=1100)
    return onnx_from_torch(workdir, classifier(), {"x": x}, ["probs"], opset=11, dynamo=False,
                           dynamic={"x": {0: "N", 2: "H", 3: "W"}, "probs": {0: "N"}},
                           rename_style="paddle", rename_tensors={"probs": "softmax_0.tmp_0"})


ENTRY = CorpusEntry(
    name="ocr_direction_cls", family=Family.CNN, source=SourceKind.ONNX,
    origin=Origin("PaddleOCR's text direction classifier (a MobileNetV3-small-style CNN re-implemented in torch here)",
                  "MobileNetV3-style blocks (hard-swish, SE, depthwise) + softmax over 2 directions",
                  config=f"input 3x{HEIGHT}x{WIDTH}"),
    export=Export("torch.onnx legacy (dynamo=False)", 11, "N, H, W",
                  "renamed after export with onnx.helper like Paddle2ONNX: `Softmax@0`, `HardSigmoid@0`, "
                  "`conv_0.tmp_0`, output `softmax_0.tmp_0`"),
    data=f"{ROWS} MNIST test digits stretched to {HEIGHT}x{WIDTH} text-line boxes, 3 channels, in [-1, 1], NCHW; "
         f"no labels",
    build=build)
