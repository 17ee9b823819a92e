""".npy / .npz inputs read as hostile files: the header's shape and dtype are checked against the file
size and a byte budget before any array is allocated; object arrays (pickles) are refused."""
from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from ._signature import InputError

# A user's input arrays: MNIST batches, token ids, latent vectors. 256 MiB is ~85 000 28x28 float32
# images, far more than one call needs, and small enough to allocate on a 1 GiB Raspberry Pi.
MAX_ARRAY_BYTES = 256 * 2**20
MAX_NPZ_MEMBERS = 64


def _header(f: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as err:  # numpy's header parser raises ValueError, SyntaxError, tokenize errors...
        raise InputError(f"{where} is not a valid .npy array ({type(err).__name__}: {err})") from None
    if dtype.hasobject:
        raise InputError(f"{where} holds Python objects (a pickle), which edgeproof never loads; save numeric "
                         f"arrays (np.save with a numeric dtype)")
    return shape, dtype, fortran


def _check_size(shape: tuple[int, ...], dtype: np.dtype, available: int, where: str, budget: int) -> int:
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > budget:
        raise InputError(f"{where} declares a {list(shape)} {dtype} array ({nbytes / 2**20:.0f} MiB), over the "
                         f"{budget / 2**20:.0f} MiB input limit; pass a smaller batch")
    if nbytes > available:
        raise InputError(f"{where} is truncated: its header declares {nbytes} data bytes, the file holds {available}")
    return nbytes


def load_npy(path: Path | str, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """A numeric .npy array; the declared size is checked against the file before reading."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            shape, dtype, _ = _header(f, str(path))
            _check_size(shape, dtype, path.stat().st_size - f.tell(), str(path), max_bytes)
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    except OSError as err:
        raise InputError(f"{path}: cannot read it ({err.strerror or err})") from None
    except ValueError as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"{path} is not a valid .npy array ({err})") from None


def load_npz(path: Path | str, max_bytes: int = MAX_ARRAY_BYTES) -> dict[str, np.ndarray]:
    """Numeric arrays by name from a .npz; every member's declared and uncompressed size is bounded
    before it is decompressed (no zip bombs), and the total too."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_NPZ_MEMBERS:
                raise InputError(f"{path} has {len(infos)} members; an input .npz holds one array per model input")
            total = sum(i.file_size for i in infos)
            if total > max_bytes:
                raise InputError(f"{path} unpacks to {total / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} "
                                 f"MiB input limit")
            for info in infos:
                if not info.filename.endswith(".npy") or "/" in info.filename:
                    raise InputError(f"{path}: member {info.filename!r} is not an array (.npy)")
                where = f"{path}[{info.filename[:-4]}]"
                with zf.open(info) as f:
                    shape, dtype, _ = _header(f, where)
                    _check_size(shape, dtype, info.file_size - f.tell(), where, max_bytes)
                with zf.open(info) as f:
                    out[info.filename[:-4]] = np.lib.format.read_array(f, allow_pickle=False)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise InputError(f"{path} is not a valid .npz archive ({err})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read it ({err.strerror or err})") from None
    except ValueError as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"{path} is not a valid .npz archive ({err})") from None
    return out
