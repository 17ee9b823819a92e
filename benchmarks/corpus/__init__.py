"""A corpus of third-party model architectures (Hugging Face transformers, Keras applications, detection and
segmentation heads, recurrent and OCR models), each in one file that says where it comes from and how it is
exported, built with realistic sample data and run through `edgeproof.convert.convert_user_model` in all seven
cells. `python -m benchmarks.corpus --out DIR` writes benchmarks/CORPUS.md and corpus.json;
`pytest -m corpus` is its test tier (the entries tagged "fast" run in CI)."""
from ._entry import CELLS, BuiltModel, CorpusEntry, CorpusError, Export, Family, Origin, SourceKind
from ._registry import entries, entry_files, get, names

__all__ = ["CELLS", "BuiltModel", "CorpusEntry", "CorpusError", "Export", "Family", "Origin", "SourceKind",
           "entries", "entry_files", "get", "names"]
