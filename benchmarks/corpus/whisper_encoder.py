"""Whisper's audio encoder (transformers' WhisperEncoder: two Conv1d + GELU, sinusoidal positions, pre-LN
transformer) from a shrunk config with random weights, on Whisper's own log-mel features (WhisperFeatureExtractor,
1 s chunks), exported with torch's legacy ONNX exporter at opset 17, dynamic batch."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

ROWS = 32
CONFIG = dict(num_mel_bins=80, d_model=64, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128,
              max_source_positions=50, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64)


def encoder():
    import torch
    from torch import nn
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from ._export import torch_eval

    torch.manual_seed(0)
    cfg = WhisperConfig(**CONFIG)
    cfg._attn_implementation = "eager"
    inner = WhisperEncoder(cfg)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = inner

        def forward(self, input_features):
            return self.encoder(input_features).last_hidden_state

    return torch_eval(Encoder())


def build(workdir: Path) -> BuiltModel:
    from ._data import SAMPLE_RATE, log_mel, waveform

    features = log_mel(waveform(ROWS, SAMPLE_RATE, seed=1))
    return onnx_from_torch(workdir, encoder(), {"input_features": features}, ["last_hidden_state"], opset=17,
                           dynamo=False, dynamic={"input_features": {0: "batch"}, "last_hidden_state": {0: "batch"}})


ENTRY = CorpusEntry(
    name="whisper_encoder", family=Family.AUDIO_ENCODER, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.models.whisper.modeling_whisper.WhisperEncoder",
                  config=str(CONFIG)),
    export=Export("torch.onnx legacy (dynamo=False)", 17, "batch", "none (torch's names)"),
    data=f"{ROWS} deterministic synthetic speech-like waveforms (1 s, 16 kHz: gliding-pitch voiced tone with "
         f"harmonics, syllable envelope, low noise; no audio corpus is offline) -> Whisper's log-mel features "
         f"[80, 100]; no labels",
    build=build)
