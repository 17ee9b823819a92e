"""DistilBERT (transformers.DistilBertForSequenceClassification) from a shrunk config with random weights,
exported with torch's dynamo ONNX exporter at opset 18, dynamic batch and sequence (torch.export Dims)."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SEQ, ROWS = 32, 48
CONFIG = dict(vocab_size=30522, dim=64, n_layers=2, n_heads=2, hidden_dim=128, max_position_embeddings=64,
              num_labels=2)


def build(workdir: Path) -> BuiltModel:
    from ._data import imdb_sentences, tokenize
    from ._hf import TextLogits, config, seeded

    model = TextLogits(seeded("DistilBertForSequenceClassification", config("DistilBertConfig", **CONFIG)))
    texts, _ = imdb_sentences(ROWS, start=200)
    tokens = tokenize(texts, SEQ)
    arrays = {k: tokens[k] for k in ("input_ids", "attention_mask")}
    axes = {0: "batch", 1: "sequence"}
    return onnx_from_torch(workdir, model, arrays, ["logits"], opset=18, dynamo=True,
                           dynamic={"input_ids": axes, "attention_mask": axes})


ENTRY = CorpusEntry(
    name="distilbert_cls", family=Family.TEXT_ENCODER, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.DistilBertForSequenceClassification", config=str(CONFIG)),
    export=Export("torch.onnx dynamo (dynamo=True, optimize=True)", 18, "batch, sequence",
                  "none (dynamo's names: parameters keep their dotted module paths)"),
    data=f"first sentences of {ROWS} IMDb test reviews, BERT WordPiece ids padded to {SEQ} (int64 ids + mask); no "
         f"labels: random weights",
    build=build)
