"""RegNet (transformers.RegNetForImageClassification, X blocks: grouped 3x3 convolutions) from a shrunk config with
random weights and trained-like BatchNorm statistics, exported with torch's legacy ONNX exporter at opset 13 with
dynamic batch, then every node and tensor renamed under a non-ASCII scope (`/主干网络/stufe_ü.1/Conv_0`, input
`图像.1`) with onnx.helper, as exporters of other frameworks and locales write them."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 64, 48
CONFIG = dict(num_channels=3, embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
              groups_width=8, layer_type="x", num_labels=10)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._export import trained_like_batchnorm
    from ._hf import ImageLogits, config, seeded

    model = ImageLogits(trained_like_batchnorm(
        seeded("RegNetForImageClassification", config("RegNetConfig", **CONFIG), seed=10), seed=10))
    return onnx_from_torch(workdir, model, {"pixel_values": images(ROWS, SIZE, start=400)}, ["logits"], opset=13,
                           dynamo=False, dynamic={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                           rename_style="unicode", rename_tensors={"pixel_values": "图像.1", "logits": "类别/logits"})


ENTRY = CorpusEntry(
    name="regnet_hf", family=Family.CNN, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.RegNetForImageClassification", config=str(CONFIG)),
    export=Export("torch.onnx legacy (dynamo=False)", 13, "batch",
                  "renamed after export with onnx.helper: non-ASCII scopes and names with dots and slashes (input "
                  "`图像.1`, output `类别/logits`, nodes `/主干网络/stufe_ü.1/Conv_0`)"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE}, tiled to 3 channels, ImageNet-normalised, NCHW; "
         f"no labels",
    build=build)
