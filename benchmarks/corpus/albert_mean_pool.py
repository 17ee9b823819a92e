"""ALBERT (transformers.AlbertModel: factorised embeddings, one layer group shared across layers) from a shrunk
config with random weights, mean-pooled like a sentence encoder; given to the pipeline as a torch factory +
state dict (the pipeline exports it to ONNX itself)."""
from __future__ import annotations

from pathlib import Path

from ._build import torch_factory
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SEQ, ROWS = 32, 48
CONFIG = dict(vocab_size=30522, embedding_size=32, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
              intermediate_size=128, max_position_embeddings=64)


def factory():
    """The module convert_user_model builds: `benchmarks.corpus.albert_mean_pool:factory`."""
    from ._hf import MeanPooled, config, seeded

    return MeanPooled(seeded("AlbertModel", config("AlbertConfig", **CONFIG), seed=3), normalize=False)


def build(workdir: Path) -> BuiltModel:
    from ._data import imdb_sentences, tokenize

    texts, _ = imdb_sentences(ROWS, start=300)
    tokens = tokenize(texts, SEQ)
    return torch_factory(workdir, f"{__name__}:factory", factory(),
                         {k: tokens[k] for k in ("input_ids", "attention_mask")})


ENTRY = CorpusEntry(
    name="albert_mean_pool", family=Family.TEXT_ENCODER, source=SourceKind.TORCH,
    origin=Origin("transformers", "transformers.AlbertModel + mean pooling", config=str(CONFIG)),
    export=Export("torch factory + state dict (the pipeline's own torch -> ONNX export)", None, "batch",
                  "forward(input_ids, attention_mask) -> pooled embedding"),
    data=f"first sentences of {ROWS} IMDb test reviews, BERT WordPiece ids padded to {SEQ} (int64 ids + mask); no "
         f"labels: random weights",
    build=build)
