"""The classic U-Net (Ronneberger et al. 2015, as in milesial/Pytorch-UNet: DoubleConv = (Conv-BN-ReLU) x2,
MaxPool down, ConvTranspose x2 up, skip concatenation, 1x1 conv to a sigmoid mask), shrunk (base 8 channels, 3
levels), random weights with trained-like BatchNorm; exported with torch's dynamo ONNX exporter at opset 20,
dynamic batch."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 64, 32


def unet():
    import torch
    from torch import nn

    from ._export import torch_eval, trained_like_batchnorm

    def double(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class UNet(nn.Module):
        def __init__(self, base=8):
            super().__init__()
            c = [base, base * 2, base * 4, base * 8]
            self.inc = double(3, c[0])
            self.downs = nn.ModuleList([double(c[i], c[i + 1]) for i in range(3)])
            self.ups = nn.ModuleList([nn.ConvTranspose2d(c[i + 1], c[i], 2, 2) for i in range(3)])
            self.convs = nn.ModuleList([double(2 * c[i], c[i]) for i in range(3)])
            self.out = nn.Conv2d(c[0], 1, 1)

        def forward(self, x):
            skips = [self.inc(x)]
            for down in self.downs:
                skips.append(down(nn.functional.max_pool2d(skips[-1], 2)))
            h = skips.pop()
            for i in range(2, -1, -1):
                h = self.convs[i](torch.cat([skips.pop(), self.ups[i](h)], dim=1))
            return torch.sigmoid(self.out(h))

    torch.manual_seed(24)
    return torch_eval(trained_like_batchnorm(UNet(), seed=24))


def build(workdir: Path) -> BuiltModel:
    from ._data import images

    return onnx_from_torch(workdir, unet(), {"image": images(ROWS, SIZE, start=1400)}, ["mask"], opset=20,
                           dynamo=True, dynamic={"image": {0: "batch"}})


ENTRY = CorpusEntry(
    name="unet_dynamo", family=Family.DETECTION_SEGMENTATION, source=SourceKind.ONNX,
    origin=Origin("milesial/Pytorch-UNet's U-Net (architecture re-implemented in torch here)",
                  "U-Net: DoubleConv, MaxPool, ConvTranspose, skip concat, sigmoid mask",
                  config=f"base 8 channels, 3 levels, input 3x{SIZE}x{SIZE}"),
    export=Export("torch.onnx dynamo (dynamo=True, optimize=True)", 20, "batch", "none (dynamo's names)"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE}, 3 channels, ImageNet-normalised, NCHW; no labels",
    build=build, tags=frozenset({"fast"}))
