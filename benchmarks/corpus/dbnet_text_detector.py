"""A DBNet-style text detector (the architecture of PaddleOCR's DB detector, written after its DBHead / FPN: a small
ResNet-like backbone, an FPN that upsamples with nearest Resize and adds, a head of Conv-BN-ReLU then two
ConvTranspose x2 steps ending in sigmoid probability and threshold maps, and the differentiable binarisation
1/(1+exp(-k(P-T)))). Random weights with trained-like BatchNorm; exported with torch's legacy ONNX exporter at
opset 11 with dynamic N, H and W, then renamed like a Paddle2ONNX export (input `x`, nodes `Conv@0`,
`Sigmoid@1`, tensors `conv_3.tmp_0`, weights `param_7.w_0`)."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 64, 32


def detector():
    import torch
    from torch import nn

    from ._export import torch_eval, trained_like_batchnorm

    def cbr(cin, cout, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class DBNet(nn.Module):
        def __init__(self, c=(16, 24, 32, 48), inner=32):
            super().__init__()
            self.stem = cbr(3, c[0], 2)
            self.stages = nn.ModuleList([cbr(c[i - 1] if i else c[0], c[i], 2) for i in range(4)])
            self.lateral = nn.ModuleList([nn.Conv2d(ci, inner, 1, bias=False) for ci in c])
            self.smooth = nn.ModuleList([nn.Conv2d(inner, inner // 4, 3, padding=1, bias=False) for _ in c])

            def head():
                return nn.Sequential(nn.Conv2d(inner, inner // 4, 3, padding=1, bias=False),
                                     nn.BatchNorm2d(inner // 4), nn.ReLU(),
                                     nn.ConvTranspose2d(inner // 4, inner // 4, 2, 2), nn.BatchNorm2d(inner // 4),
                                     nn.ReLU(), nn.ConvTranspose2d(inner // 4, 1, 2, 2))

            self.binarize, self.thresh = head(), head()

        def forward(self, x):
            feats, h = [], self.stem(x)
            for stage in self.stages:
                h = stage(h)
                feats.append(h)
            lat = [l(f) for l, f in zip(self.lateral, feats)]
            for i in range(3, 0, -1):  # top-down: upsample and add
                lat[i - 1] = lat[i - 1] + nn.functional.interpolate(lat[i], scale_factor=2.0, mode="nearest")
            outs = [nn.functional.interpolate(s(l), scale_factor=float(2 ** i), mode="nearest")
                    for i, (s, l) in enumerate(zip(self.smooth, lat))]
            fuse = torch.cat(outs[::-1], dim=1)
            prob = torch.sigmoid(self.binarize(fuse))
            thresh = torch.sigmoid(self.thresh(fuse))
            binary = torch.reciprocal(1 + torch.exp(-50.0 * (prob - thresh)))
            return torch.cat([prob, thresh, binary], dim=1)

    torch.manual_seed(16)
    return torch_eval(trained_like_batchnorm(DBNet(), seed=16))


def build(workdir: Path) -> BuiltModel:
    from ._data import images

    return onnx_from_torch(workdir, detector(), {"x": images(ROWS, SIZE, start=1000)}, ["maps"], opset=11,
                           dynamo=False, dynamic={"x": {0: "N", 2: "H", 3: "W"}, "maps": {0: "N", 2: "H", 3: "W"}},
                           rename_style="paddle", rename_tensors={"maps": "save_infer_model/scale_0.tmp_0"})


ENTRY = CorpusEntry(
    name="dbnet_text_detector", family=Family.DETECTION_SEGMENTATION, source=SourceKind.ONNX,
    origin=Origin("PaddleOCR's DBNet (architecture re-implemented in torch here: backbone + FPN + DBHead)",
                  "DBNet (Liao et al. 2020): FPN, ConvTranspose head, sigmoid maps, differentiable binarisation",
                  config="channels 16/24/32/48, FPN inner 32, input 3xHxW"),
    export=Export("torch.onnx legacy (dynamo=False)", 11, "N, H, W",
                  "renamed after export with onnx.helper like Paddle2ONNX: nodes `Conv@0`, `Resize@2`, "
                  "`Sigmoid@1`; tensors `conv_0.tmp_0`; output `save_infer_model/scale_0.tmp_0`; weights "
                  "`param_N.w_0`"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE} (dark strokes as 'text'), 3 channels, "
         f"ImageNet-normalised, NCHW; no labels (three [N,1,H,W] maps concatenated)",
    build=build)
