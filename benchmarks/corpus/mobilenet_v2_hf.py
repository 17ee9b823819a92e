"""MobileNetV2 (transformers.MobileNetV2ForImageClassification, with TensorFlow-style "SAME" padding computed from
the input size, ReLU6, depthwise convolutions) at depth multiplier 0.35, random weights with trained-like BatchNorm
statistics; given to the pipeline as a torch factory + state dict."""
from __future__ import annotations

from pathlib import Path

from ._build import torch_factory
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 96, 48
CONFIG = dict(num_channels=3, image_size=SIZE, depth_multiplier=0.35, num_labels=10, tf_padding=True)


def factory():
    """`benchmarks.corpus.mobilenet_v2_hf:factory`."""
    from ._export import trained_like_batchnorm
    from ._hf import ImageLogits, config, seeded

    return ImageLogits(trained_like_batchnorm(seeded("MobileNetV2ForImageClassification",
                                                     config("MobileNetV2Config", **CONFIG), seed=7), seed=7))


def build(workdir: Path) -> BuiltModel:
    from ._data import images

    return torch_factory(workdir, f"{__name__}:factory", factory(), {"pixel_values": images(ROWS, SIZE, start=100)})


ENTRY = CorpusEntry(
    name="mobilenet_v2_hf", family=Family.CNN, source=SourceKind.TORCH,
    origin=Origin("transformers", "transformers.MobileNetV2ForImageClassification", config=str(CONFIG)),
    export=Export("torch factory + state dict (the pipeline's own torch -> ONNX export)", None, "batch",
                  "forward(pixel_values) -> logits"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE}, tiled to 3 channels, ImageNet-normalised, NCHW; "
         f"no labels",
    build=build)
