"""A MobileFaceNet-style face embedding CNN (Chen et al. 2018, as in InsightFace's model zoo: Conv-BN-PReLU, depthwise
bottlenecks with PReLU and residuals, a global depthwise conv (GDC) instead of pooling, a linear 128-d embedding
with BatchNorm1d), random weights with trained-like BatchNorm and PReLU slopes; given to the pipeline as a torch
factory + state dict: the issue's PReLU face CNN."""
from __future__ import annotations

from pathlib import Path

from ._build import torch_factory
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 64, 48


def factory():
    """`benchmarks.corpus.face_prelu_cnn:factory`."""
    import torch
    from torch import nn

    from ._export import torch_eval, trained_like_batchnorm

    def cbp(cin, cout, k=3, s=1, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*(layers + [nn.PReLU(cout)] if act else layers))

    class Bottleneck(nn.Module):
        def __init__(self, cin, cout, stride, expand=2):
            super().__init__()
            mid = cin * expand
            self.body = nn.Sequential(cbp(cin, mid, 1), cbp(mid, mid, 3, stride, groups=mid),
                                      cbp(mid, cout, 1, act=False))
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    class MobileFaceNet(nn.Module):
        def __init__(self, embedding=128):
            super().__init__()
            self.stem = nn.Sequential(cbp(3, 32, 3, 2), cbp(32, 32, 3, 1, groups=32))
            self.blocks = nn.Sequential(Bottleneck(32, 32, 2), Bottleneck(32, 32, 1), Bottleneck(32, 64, 2),
                                        Bottleneck(64, 64, 1), Bottleneck(64, 64, 2))
            self.conv = cbp(64, 128, 1)
            self.gdc = cbp(128, 128, SIZE // 16, 1, groups=128, act=False)  # global depthwise conv: 4x4 -> 1x1
            self.gdc[0].padding = (0, 0)
            self.linear = nn.Linear(128, embedding, bias=False)
            self.bn = nn.BatchNorm1d(embedding)

        def forward(self, image):
            h = self.gdc(self.conv(self.blocks(self.stem(image))))
            return self.bn(self.linear(h.flatten(1)))

    torch.manual_seed(19)
    model = trained_like_batchnorm(MobileFaceNet(), seed=19)
    with torch.no_grad():  # PReLU slopes as after training (init is 0.25 everywhere)
        gen = torch.Generator().manual_seed(19)
        for m in model.modules():
            if isinstance(m, nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.4 + 0.05)
    return torch_eval(model)


def build(workdir: Path) -> BuiltModel:
    from ._data import images

    return torch_factory(workdir, f"{__name__}:factory", factory(), {"image": images(ROWS, SIZE, start=1200)})


ENTRY = CorpusEntry(
    name="face_prelu_cnn", family=Family.CNN, source=SourceKind.TORCH,
    origin=Origin("InsightFace's MobileFaceNet (architecture re-implemented in torch here)",
                  "MobileFaceNet: Conv-BN-PReLU, depthwise bottlenecks, GDC, 128-d embedding",
                  config=f"input 3x{SIZE}x{SIZE}, embedding 128"),
    export=Export("torch factory + state dict (the pipeline's own torch -> ONNX export)", None, "batch",
                  "forward(image) -> embedding"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE}, 3 channels, ImageNet-normalised, NCHW; no labels",
    build=build, tags=frozenset({"fast"}))
