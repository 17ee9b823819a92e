"""T5's encoder (transformers.T5EncoderModel: relative position buckets, RMS-style T5LayerNorm, gated-GELU
feed-forward as in T5 v1.1) from a shrunk config with random weights, on real English Multi30k sentences, exported
with torch's legacy ONNX exporter at opset 12 (below LayerNormalization's opset 17), dynamic batch and sequence."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SEQ, ROWS = 24, 48
CONFIG = dict(vocab_size=30522, d_model=64, d_kv=32, d_ff=128, num_layers=2, num_heads=2,
              relative_attention_num_buckets=16, feed_forward_proj="gated-gelu", pad_token_id=0)


def build(workdir: Path) -> BuiltModel:
    from ._data import multi30k, tokenize
    from ._hf import TextHidden, config, seeded

    model = seeded("T5EncoderModel", config("T5Config", **CONFIG), seed=6)
    tokens = tokenize(multi30k(ROWS, "en"), SEQ)
    axes = {0: "batch", 1: "sequence"}
    return onnx_from_torch(workdir, TextHidden(model), {k: tokens[k] for k in ("input_ids", "attention_mask")},
                           ["last_hidden_state"], opset=12, dynamo=False,
                           dynamic={"input_ids": axes, "attention_mask": axes,
                                    "last_hidden_state": {0: "batch", 1: "sequence"}})


ENTRY = CorpusEntry(
    name="t5_encoder", family=Family.TEXT_ENCODER, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.T5EncoderModel", config=str(CONFIG)),
    export=Export("torch.onnx legacy (dynamo=False)", 12, "batch, sequence", "none (torch's names)"),
    data=f"{ROWS} English Multi30k validation sentences, WordPiece ids (BERT vocabulary; T5's SentencePiece model is "
         f"not offline) padded to {SEQ} with the mask; no labels",
    build=build)
