"""The encoder of a Marian translation model (transformers.MarianMTModel.get_encoder(): sinusoidal positions,
scaled embeddings, post-LN transformer) from a shrunk config with random weights, on real German Multi30k
sentences, exported with torch's dynamo ONNX exporter at opset 18, dynamic batch and sequence."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SEQ, ROWS = 24, 48
CONFIG = dict(vocab_size=30522, d_model=64, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
              decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=64,
              pad_token_id=0, decoder_start_token_id=0)


def build(workdir: Path) -> BuiltModel:
    from ._data import multi30k, tokenize
    from ._hf import TextHidden, config, seeded

    model = seeded("MarianMTModel", config("MarianConfig", **CONFIG), seed=5)
    tokens = tokenize(multi30k(ROWS, "de"), SEQ)
    axes = {0: "batch", 1: "sequence"}
    return onnx_from_torch(workdir, TextHidden(model.get_encoder()),
                           {k: tokens[k] for k in ("input_ids", "attention_mask")}, ["encoder_hidden_states"],
                           opset=18, dynamo=True, dynamic={"input_ids": axes, "attention_mask": axes})


ENTRY = CorpusEntry(
    name="marian_encoder", family=Family.TEXT_ENCODER, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.MarianMTModel(...).get_encoder() (MarianEncoder)", config=str(CONFIG)),
    export=Export("torch.onnx dynamo (dynamo=True, optimize=True)", 18, "batch, sequence", "none (dynamo's names)"),
    data=f"{ROWS} German Multi30k validation sentences, WordPiece ids (the BERT vocabulary; Marian's SentencePiece "
         f"files are not offline) padded to {SEQ} with the mask; no labels",
    build=build)
