"""SegFormer (transformers.SegformerForSemanticSegmentation: overlapping patch embeddings, efficient self-attention
with spatial reduction, Mix-FFN with a depthwise conv, an all-MLP decoder that upsamples every stage with bilinear
Resize) from a shrunk two-stage config with random weights, exported with torch's legacy ONNX exporter at opset 13,
dynamic batch. Output: per-pixel class logits at 1/4 resolution."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 64, 32
CONFIG = dict(num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[4, 2], hidden_sizes=[16, 32],
              patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2],
              decoder_hidden_size=32, num_labels=3, drop_path_rate=0.0)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._export import trained_like_batchnorm
    from ._hf import ImageLogits, config, seeded

    model = ImageLogits(trained_like_batchnorm(seeded("SegformerForSemanticSegmentation",
                                                      config("SegformerConfig", **CONFIG), seed=11), seed=11))
    return onnx_from_torch(workdir, model, {"pixel_values": images(ROWS, SIZE, dataset="fashion", start=500)},
                           ["logits"], opset=13, dynamo=False,
                           dynamic={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})


ENTRY = CorpusEntry(
    name="segformer_tiny", family=Family.DETECTION_SEGMENTATION, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.SegformerForSemanticSegmentation", config=str(CONFIG)),
    export=Export("torch.onnx legacy (dynamo=False)", 13, "batch", "none (torch's names)"),
    data=f"{ROWS} Fashion-MNIST test images resized to {SIZE}x{SIZE}, 3 channels, ImageNet-normalised, NCHW; no labels",
    build=build)
