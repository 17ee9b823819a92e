"""Hostile image and array inputs to the edge runtime (issue 19 item 3): sizes are checked from the
header before any decompression or allocation; decompression stops at the declared size.

The defect: a 1.5 MB PNG declaring 20000x20000 RGBA took 36 s and 9.4 GB in `edgeproof run` (the old
reader inflated all IDAT data, then checked nothing). These tests build such files and require a
clear ImageError / InputError, fast and without the memory."""
from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from edgeproof.runtime._images import (
    ImageError,
    read_image,
    read_pgm,
    read_png,
    write_png,
)
from edgeproof.runtime._npy import load_npy, load_npz
from edgeproof.runtime._signature import InputError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SIG = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _zeros_stream(total: int, block: int = 2**20) -> bytes:
    """A valid zlib stream of `total` zero bytes, built without compressing them all: after a full
    flush deflate's state is reset, so every later block of zeros compresses to the same bytes."""
    c = zlib.compressobj(9)
    chunk = bytes(block)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(total // block):
        adler = zlib.adler32(chunk, adler)
    return first + again * (total // block - 1) + b"\x03\x00" + struct.pack(">I", adler)


def _png(width: int, height: int, colour: int, idat: bytes, depth: int = 8) -> bytes:
    return SIG + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)) \
        + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """The issue's file: 20000x20000 RGBA declared, 1.6 GB of pixel data deflated to ~1.6 MB."""
    raw = 20000 * (1 + 20000 * 4)
    path = tmp_path_factory.mktemp("img") / "bomb.png"
    path.write_bytes(_png(20000, 20000, 6, _zeros_stream(raw - raw % 2**20)))
    return path


def test_the_decompression_bomb_is_refused_from_its_header(bomb, monkeypatch):
    assert bomb.stat().st_size < 3 * 2**20  # what the attacker ships: small
    calls = []
    monkeypatch.setattr(zlib, "decompressobj", lambda *a: calls.append(a))
    monkeypatch.setattr(zlib, "decompress", lambda *a: calls.append(a))
    start = time.perf_counter()
    with pytest.raises(ImageError, match=r"declares 20000x20000 pixels, over the 4194304 pixel limit"):
        read_image(bomb)
    # The check is a header read: well under a second even on a loaded 2-core machine (the old
    # reader took 36 s here).
    assert time.perf_counter() - start < 1.0
    assert calls == []  # nothing was decompressed


def test_a_small_header_with_oversized_pixel_data_stops_at_the_declared_size(tmp_path):
    """28x28 declared, 64 MiB of zeros inside: decompression must stop after 28*(1+28) + 1 bytes."""
    path = tmp_path / "lies.png"
    path.write_bytes(_png(28, 28, 0, _zeros_stream(64 * 2**20)))
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match="larger than its header declares"):
            read_png(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Peak = the file itself (~64 KiB) read once plus its IDAT joined (another copy); the inflated
    # output is at most 813 bytes. 1 MiB is a wide margin; the old reader allocated the 64 MiB.
    assert peak < 2**20, peak


def test_the_expected_size_is_checked_before_decompressing(tmp_path):
    path = tmp_path / "big.png"
    write_png(path, np.zeros((32, 40), np.uint8))
    with pytest.raises(ImageError, match=r"is 40x32 pixels; the model takes 28x28 grey images"):
        read_image(path, expected=(28, 28))
    assert read_image(path).shape == (32, 40)


@pytest.mark.parametrize("data, message", [
    (SIG + _chunk(b"IDAT", b"x") + _chunk(b"IHDR", bytes(13)), "pixel data before the IHDR"),
    (SIG + _chunk(b"IHDR", bytes(12)), "corrupt PNG header"),
    (SIG + struct.pack(">I4s", 2**31, b"IHDR") + bytes(20), "runs past the end of the file"),
    (_png(28, 28, 0, zlib.compress(bytes(28 * 29))[:-30]), "truncated PNG|corrupt PNG data"),
    (_png(28, 28, 0, b"not zlib at all"), "corrupt PNG data"),
    (_png(0, 28, 0, b""), "corrupt image header"),
    (_png(28, 28, 0, b"", depth=16), "only 8-bit"),
    (SIG, "no IHDR"),
    (b"GIF89a", "not a PNG"),
])
def test_broken_pngs_are_clear_errors(tmp_path, data, message):
    path = tmp_path / "x.png"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=message):
        read_png(path)


@pytest.mark.parametrize("data, message", [
    (b"P5 100000 100000 255\n" + bytes(10), "over the 4194304 pixel limit"),
    (b"P5 28 28 255\n" + bytes(10), "truncated PGM"),
    (b"P5 28 x 255\n", "only binary 8-bit PGM"),
    (b"P5 28 28 65535\n" + bytes(28 * 28 * 2), "only binary 8-bit PGM"),
    (b"P5 28", "truncated PGM header"),
    (b"P5 # a comment with no end", "truncated PGM header"),
])
def test_broken_pgms_are_clear_errors(tmp_path, data, message):
    path = tmp_path / "x.pgm"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=message):
        read_pgm(path)


def test_a_valid_png_and_pgm_still_read(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    write_png(tmp_path / "d.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "d.png", expected=(28, 28)), img)
    (tmp_path / "d.pgm").write_bytes(b"P5\n# digit\n28 28\n255\n" + img.tobytes())
    np.testing.assert_array_equal(read_image(tmp_path / "d.pgm"), img)


def _npy_header(shape, descr="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_an_npy_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.npy"
    path.write_bytes(_npy_header((10**6, 10**6)) + bytes(64))
    with pytest.raises(InputError, match="over the 256 MiB input limit"):
        load_npy(path)
    path.write_bytes(_npy_header((1000, 28, 28)) + bytes(64))
    with pytest.raises(InputError, match="is truncated"):
        load_npy(path)


def test_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="Python objects .* never loads"):
        load_npy(path)


def test_an_npz_zip_bomb_is_refused_from_its_directory(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("image.npy", "w", force_zip64=True) as f:
            f.write(_npy_header((300, 2**20)))
            block = bytes(2**20)
            for _ in range(300 * 4):
                f.write(block)
    assert path.stat().st_size < 2 * 2**20
    start = time.perf_counter()
    with pytest.raises(InputError, match="unpacks to 1200 MiB, over the 256 MiB input limit"):
        load_npz(path)
    assert time.perf_counter() - start < 1.0  # nothing inflated: a directory read


def test_npz_inputs_still_load(tmp_path):
    path = tmp_path / "ok.npz"
    np.savez_compressed(path, image=np.ones((2, 28, 28), np.float32), ids=np.arange(5))
    arrays = load_npz(path)
    assert sorted(arrays) == ["ids", "image"] and arrays["image"].shape == (2, 28, 28)


@pytest.fixture(scope="module")
def valid_png_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("png") / "v.png"
    write_png(path, np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8))
    return path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_of_a_png_reads_or_fails_cleanly(tmp_path, valid_png_bytes, data):
    """Flip, cut or insert bytes anywhere (header, lengths, pixel data): an array or an ImageError."""
    blob = bytearray(valid_png_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            blob[pos] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del blob[pos:]
            if not blob:
                blob += b"\x89"
        else:
            blob[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    path = tmp_path / "m.png"
    path.write_bytes(bytes(blob))
    try:
        out = read_png(path)
    except ImageError:
        return
    assert out.dtype == np.uint8 and out.ndim == 2 and out.size <= 2048 * 2048


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_of_an_npy_loads_or_fails_cleanly(tmp_path, data):
    buf = io.BytesIO()
    np.save(buf, np.arange(28 * 28, dtype=np.uint8).reshape(28, 28))
    blob = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, 127))] = data.draw(st.integers(0, 255))  # the header: magic, dict, padding
    path = tmp_path / "m.npy"
    path.write_bytes(bytes(blob))
    try:
        load_npy(path)
    except InputError:
        pass
