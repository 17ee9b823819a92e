"""ConvNeXt (transformers.ConvNextForImageClassification: patchify stem, depthwise 7x7, channels-first LayerNorm,
GELU, layer scale) from a shrunk config with random weights; given to the pipeline as a torch factory + state
dict."""
from __future__ import annotations

from pathlib import Path

from ._build import torch_factory
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 64, 48
CONFIG = dict(num_channels=3, patch_size=4, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1], num_labels=10,
              drop_path_rate=0.0, layer_scale_init_value=0.1)


def factory():
    """`benchmarks.corpus.convnext_hf:factory`."""
    from ._hf import ImageLogits, config, seeded

    return ImageLogits(seeded("ConvNextForImageClassification", config("ConvNextConfig", **CONFIG), seed=9))


def build(workdir: Path) -> BuiltModel:
    from ._data import images

    return torch_factory(workdir, f"{__name__}:factory", factory(), {"pixel_values": images(ROWS, SIZE, start=300)})


ENTRY = CorpusEntry(
    name="convnext_hf", family=Family.CNN, source=SourceKind.TORCH,
    origin=Origin("transformers", "transformers.ConvNextForImageClassification", config=str(CONFIG)),
    export=Export("torch factory + state dict (the pipeline's own torch -> ONNX export)", None, "batch",
                  "forward(pixel_values) -> logits"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE}, tiled to 3 channels, ImageNet-normalised, NCHW; "
         f"no labels",
    build=build)
