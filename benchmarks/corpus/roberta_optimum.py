"""RoBERTa (transformers.RobertaForSequenceClassification) from a shrunk config with random weights, saved with
save_pretrained() and exported by Hugging Face optimum's ONNX exporter (optimum-onnx main_export, task
text-classification, its own validation against PyTorch on), dynamic batch and sequence."""
from __future__ import annotations

from pathlib import Path

from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SEQ, ROWS, OPSET = 32, 48, 14
CONFIG = dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
              max_position_embeddings=72, num_labels=3, pad_token_id=0, bos_token_id=101, eos_token_id=102)


def build(workdir: Path) -> BuiltModel:
    from ._build import _sample
    from ._data import imdb_sentences, tokenize
    from ._export import onnx_opset, optimum_export, versions
    from ._hf import config, seeded

    model = seeded("RobertaForSequenceClassification", config("RobertaConfig", **CONFIG), seed=4)
    saved = workdir / "hf_model"
    model.save_pretrained(str(saved))
    path = optimum_export(saved, workdir / "optimum", "text-classification", OPSET)
    texts, _ = imdb_sentences(ROWS, start=400)
    tokens = tokenize(texts, SEQ)
    import onnx

    inputs = [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]
    arrays = {k: tokens[k] for k in inputs}
    meta = {"versions": versions("torch", "transformers", "optimum", "optimum-onnx", "onnx"),
            "opset": onnx_opset(path), "bytes": path.stat().st_size, "inputs": inputs}
    return BuiltModel(str(path), SourceKind.ONNX, _sample(workdir, arrays, None), meta=meta)


ENTRY = CorpusEntry(
    name="roberta_optimum", family=Family.TEXT_ENCODER, source=SourceKind.ONNX,
    origin=Origin("transformers", "transformers.RobertaForSequenceClassification", config=str(CONFIG)),
    export=Export("optimum (optimum.exporters.onnx.main_export)", OPSET, "batch, sequence",
                  "optimum's input/output names (input_ids, attention_mask -> logits)"),
    data=f"first sentences of {ROWS} IMDb test reviews, tokenized with the BERT WordPiece vocabulary (the config's "
         f"vocabulary is sized to it; RoBERTa's own BPE files are not offline), padded to {SEQ}; no labels",
    build=build)
