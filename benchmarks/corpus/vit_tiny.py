"""ViT (transformers.ViTForImageClassification) from a shrunk config with random weights, exported with torch's
dynamo ONNX exporter at opset 20, dynamic batch."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 32, 48
CONFIG = dict(image_size=SIZE, patch_size=4, num_channels=3, hidden_size=64, num_hidden_layers=2,
              num_attention_heads=2, intermediate_size=128, num_labels=10)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._hf import ImageLogits, config, seeded

    model = ImageLogits(seeded("ViTForImageClassification", config("ViTConfig", **CONFIG)))
    x = images(ROWS, SIZE, dataset="fashion")
    return onnx_from_torch(workdir, model, {"pixel_values": x}, ["logits"], opset=20, dynamo=True,
                           dynamic={"pixel_values": {0: "batch"}})


ENTRY = CorpusEntry(
    name="vit_tiny", family=Family.VISION_TRANSFORMER, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.ViTForImageClassification", config=str(CONFIG)),
    export=Export("torch.onnx dynamo (dynamo=True, optimize=True)", 20, "batch", "none (dynamo's names)"),
    data=f"{ROWS} Fashion-MNIST test images resized to {SIZE}x{SIZE}, tiled to 3 channels, ImageNet-normalised, "
         f"NCHW; no labels: random weights",
    build=build)
