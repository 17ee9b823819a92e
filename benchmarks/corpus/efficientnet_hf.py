"""EfficientNet (transformers.EfficientNetForImageClassification: MBConv with squeeze-excitation, SiLU,
depthwise convolutions, TF-style padding) from a shrunk config (width 0.25, depth 0.3) with random weights and
trained-like BatchNorm statistics, exported with torch's dynamo ONNX exporter at opset 18, dynamic batch."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 64, 48
CONFIG = dict(num_channels=3, image_size=SIZE, width_coefficient=0.25, depth_coefficient=0.3, hidden_dim=320,
              num_labels=10, dropout_rate=0.0, drop_connect_rate=0.0)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._export import trained_like_batchnorm
    from ._hf import ImageLogits, config, seeded

    model = ImageLogits(trained_like_batchnorm(seeded("EfficientNetForImageClassification",
                                                      config("EfficientNetConfig", **CONFIG), seed=8), seed=8))
    return onnx_from_torch(workdir, model, {"pixel_values": images(ROWS, SIZE, dataset="fashion", start=200)},
                           ["logits"], opset=18, dynamo=True, dynamic={"pixel_values": {0: "batch"}})


ENTRY = CorpusEntry(
    name="efficientnet_hf", family=Family.CNN, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.EfficientNetForImageClassification", config=str(CONFIG)),
    export=Export("torch.onnx dynamo (dynamo=True, optimize=True)", 18, "batch", "none (dynamo's names)"),
    data=f"{ROWS} Fashion-MNIST test images resized to {SIZE}x{SIZE}, tiled to 3 channels, ImageNet-normalised, "
         f"NCHW; no labels",
    build=build)
