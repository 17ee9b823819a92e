"""BERT (transformers.BertForSequenceClassification) from a shrunk config with random weights: three int64 inputs
(ids, attention mask, token types), exported with torch's legacy ONNX exporter at opset 14, dynamic batch and
sequence."""
from __future__ import annotations

from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SEQ, ROWS = 32, 48
CONFIG = dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
              max_position_embeddings=64, num_labels=2)


def build(workdir: Path) -> BuiltModel:
    from ._data import imdb_sentences, tokenize
    from ._hf import TextLogits, config, seeded

    model = TextLogits(seeded("BertForSequenceClassification", config("BertConfig", **CONFIG)), with_token_types=True)
    texts, _ = imdb_sentences(ROWS, start=100)
    tokens = tokenize(texts, SEQ)
    axes = {0: "batch", 1: "sequence"}
    return onnx_from_torch(workdir, model, tokens, ["logits"], opset=14, dynamo=False,
                           dynamic={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                    "logits": {0: "batch"}})


ENTRY = CorpusEntry(
    name="bert_tiny_cls", family=Family.TEXT_ENCODER, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.BertForSequenceClassification", config=str(CONFIG)),
    export=Export("torch.onnx legacy (dynamo=False)", 14, "batch, sequence", "none (torch's names)"),
    data=f"first sentences of {ROWS} IMDb test reviews, BERT WordPiece ids padded to {SEQ} (int64 ids, mask, token "
         f"types); no labels: random weights (numeric parity only)",
    build=build)
