"""ResNet (transformers.ResNetForImageClassification, basic blocks; a torchvision-free implementation) from a shrunk
config with random weights and trained-like BatchNorm statistics, exported with torch's legacy ONNX exporter at
opset 11 with dynamic batch, height and width (as OCR/detection exporters do)."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 64, 64
CONFIG = dict(num_channels=3, embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
              layer_type="basic", hidden_act="relu", num_labels=10)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._export import trained_like_batchnorm
    from ._hf import ImageLogits, config, seeded

    model = ImageLogits(trained_like_batchnorm(
        seeded("ResNetForImageClassification", config("ResNetConfig", **CONFIG))))
    x = images(ROWS, SIZE)
    return onnx_from_torch(workdir, model, {"pixel_values": x}, ["logits"], opset=11, dynamo=False,
                           dynamic={"pixel_values": {0: "N", 2: "H", 3: "W"}, "logits": {0: "N"}})


ENTRY = CorpusEntry(
    name="resnet_hf", family=Family.CNN, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.ResNetForImageClassification", config=str(CONFIG)),
    export=Export("torch.onnx legacy (dynamo=False)", 11, "N, H, W", "none (torch's names)"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE}, tiled to 3 channels, ImageNet-normalised, NCHW; "
         f"no labels",
    build=build, tags=frozenset({"fast"}))
