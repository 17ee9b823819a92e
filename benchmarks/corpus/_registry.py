"""Discovers the corpus: every module in this folder whose name does not start with '_' defines one
`ENTRY = CorpusEntry(...)` named after its file. Importing an entry module imports no framework (builders
import torch / TensorFlow / transformers lazily), so listing the corpus is cheap."""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path

from ._entry import CorpusEntry, CorpusError

HERE = Path(__file__).resolve().parent
PACKAGE = __name__.rsplit(".", 1)[0]  # benchmarks.corpus


def entry_files() -> list[str]:
    """The module names of the entry files in the folder (what the registry must register)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if not m.name.startswith("_"))


@lru_cache(maxsize=1)
def _load() -> dict[str, CorpusEntry]:
    entries: dict[str, CorpusEntry] = {}
    for module_name in entry_files():
        module = importlib.import_module(f"{PACKAGE}.{module_name}")
        entry = getattr(module, "ENTRY", None)
        if not isinstance(entry, CorpusEntry):
            raise CorpusError(f"{HERE / module_name}.py defines no ENTRY = CorpusEntry(...)")
        if entry.name != module_name:
            raise CorpusError(f"{module_name}.py registers {entry.name!r}: an entry is named after its file")
        entries[entry.name] = entry
    return entries


def entries() -> list[CorpusEntry]:
    """Every registered entry, in name order."""
    return list(_load().values())


def names(fast: bool = False) -> list[str]:
    return [e.name for e in entries() if e.fast or not fast]


def get(name: str) -> CorpusEntry:
    try:
        return _load()[name]
    except KeyError:
        raise CorpusError(f"no corpus model {name!r}; choose from {','.join(_load())}") from None


def module_file(name: str) -> Path:
    return HERE / f"{get(name).name}.py"
