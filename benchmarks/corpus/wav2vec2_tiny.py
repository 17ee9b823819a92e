"""wav2vec2 (transformers.Wav2Vec2Model: a 1-D conv feature encoder with GroupNorm, a weight-normed positional
convolution, a post-LN transformer) from a shrunk config with random weights, on raw 16 kHz waveforms, exported
with torch's legacy ONNX exporter at opset 14, dynamic batch."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

ROWS, SAMPLES = 32, 8000
CONFIG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
              conv_dim=(32, 32, 32, 32, 32), conv_stride=(5, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 2),
              num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm="group",
              do_stable_layer_norm=False, vocab_size=32)


def build(workdir: Path) -> BuiltModel:
    from ._data import waveform
    from torch import nn

    from ._hf import config, seeded

    model = seeded("Wav2Vec2Model", config("Wav2Vec2Config", **CONFIG))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_values):
            return self.model(input_values).last_hidden_state

    wave = waveform(ROWS, SAMPLES, seed=2)
    wave = (wave - wave.mean(1, keepdims=True)) / (wave.std(1, keepdims=True) + 1e-7)  # the feature extractor's
    return onnx_from_torch(workdir, Encoder().eval(), {"input_values": wave.astype("float32")}, ["last_hidden_state"],
                           opset=14, dynamo=False,
                           dynamic={"input_values": {0: "batch"}, "last_hidden_state": {0: "batch"}})


ENTRY = CorpusEntry(
    name="wav2vec2_tiny", family=Family.AUDIO_ENCODER, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.Wav2Vec2Model", config=str(CONFIG)),
    export=Export("torch.onnx legacy (dynamo=False)", 14, "batch", "none (torch's names)"),
    data=f"{ROWS} deterministic synthetic speech-like waveforms ({SAMPLES} samples at 16 kHz; no audio corpus is "
         f"offline), zero-mean unit-variance as Wav2Vec2FeatureExtractor normalises; no labels",
    build=build)
