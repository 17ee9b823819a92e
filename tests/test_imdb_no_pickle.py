"""imdb.npz is read without unpickling (issue 19, train/_data.py loaded it with allow_pickle=True).

Keras' imdb.npz stores x_train/x_test as object arrays of int lists, i.e. as pickles: the hand parser
(train/_object_npy.py) reads those streams as data. These tests prove it reads real and synthetic
files identically, never calls the pickle machinery, and refuses a pickle that would run code."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from edgeproof.train._data import DatasetCorruptError, _read_imdb_npz
from edgeproof.train._object_npy import ObjectArrayError, read_int_lists

IMDB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "imdb" / "imdb.npz"


def _npy(array: np.ndarray, protocol: int) -> bytes:
    """An object-array .npy as numpy writes it (header + pickle), with the given pickle protocol."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(array))
    pickle.dump(array, buf, protocol=protocol)
    return buf.getvalue()


def _objects(rows) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    for i, r in enumerate(rows):
        out[i] = r
    return out


def _read(blob: bytes) -> np.ndarray:
    return read_int_lists(io.BytesIO(blob), len(blob), "test.npy")


# np.save writes protocol 3, the Keras file is protocol 4; 5 is the newest. (Protocol 2 pickles the
# dtype's bytes through _codecs.encode, a callable the parser refuses: numpy never writes it.)
@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_int_lists_round_trip_for_every_pickle_protocol(protocol):
    rng = np.random.default_rng(0)
    # lengths 0, 1 and > 1000 (pickle batches APPENDS by 1000); ids across BININT1/BININT2/BININT/LONG1
    rows = [[], [5], list(range(1200)), [70000, 2**31 - 1, 2**40, -3]] + \
        [rng.integers(0, 90000, rng.integers(1, 300)).tolist() for _ in range(50)]
    got = _read(_npy(_objects(rows), protocol))
    assert got.dtype == object and [list(r) for r in got] == rows


def test_the_real_imdb_npz_reads_without_any_pickle_machinery(monkeypatch):
    if not IMDB.is_file():
        pytest.fail(f"{IMDB} is missing: the shared datasets sit beside the checkout (see DESIGN.md)")

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    data = _read_imdb_npz(IMDB)
    assert [len(data[k]) for k in ("x_train", "y_train", "x_test", "y_test")] == [25000] * 4
    lengths = np.array([len(r) for r in np.concatenate([data["x_train"], data["x_test"]])])
    # SOURCE.md: mean review length 234.75892 over train+test once load_data adds the start id (+1),
    # and the largest raw word rank 88584 (index 88587 after index_from=3)
    assert abs(lengths.mean() + 1 - 234.75892) < 1e-5
    assert max(max(r) for r in data["x_train"] if r) == 88584


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    blob = _npy(_objects([[1, 2], Evil()]), 4)
    with pytest.raises(ObjectArrayError, match="references posix.system"):
        _read(blob)
    assert not marker.exists()


@pytest.mark.parametrize("rows, message", [
    ([[1.5, 2.0]], "unsupported pickle opcode|not lists of integers"),
    ([[1, [2]]], "not lists of integers"),
    ([{"a": 1}], "unsupported pickle opcode"),
    ([(1, 2)], "not lists of integers"),
])
def test_anything_but_int_lists_is_refused(rows, message):
    with pytest.raises(ObjectArrayError, match=message):
        _read(_npy(_objects(rows), 4))


def test_a_truncated_stream_is_refused():
    blob = _npy(_objects([list(range(100))] * 10), 4)
    for cut in (len(blob) - 1, len(blob) // 2, 140):
        with pytest.raises(ObjectArrayError, match="truncated|malformed"):
            _read(blob[:cut])


def test_a_corrupt_imdb_npz_is_a_dataset_error(tmp_path):
    path = tmp_path / "imdb.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for k in ("x_train", "x_test"):
            zf.writestr(f"{k}.npy", _npy(_objects([[1, 2]]), 4)[:-5])
        for k in ("y_train", "y_test"):
            buf = io.BytesIO()
            np.save(buf, np.array([1]))
            zf.writestr(f"{k}.npy", buf.getvalue())
    with pytest.raises(DatasetCorruptError, match="not a valid Keras imdb.npz"):
        _read_imdb_npz(path)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_mutation_of_the_stream_is_parsed_or_refused(data):
    """Whatever the bytes, the parser returns int lists or raises ObjectArrayError (never runs code,
    never another exception)."""
    blob = bytearray(_npy(_objects([[1, 2, 300], [70000], []]), 4))
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    try:
        out = _read(bytes(blob))
    except ObjectArrayError:
        return
    assert all(type(v) is int for row in out for v in row)
