"""Minimal image I/O with numpy + zlib: read 8-bit PNG / PGM / .npy, write grey PNG (no Pillow needed
on a Pi)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from edgeproof._atomic import write_bytes_atomic
from edgeproof.errors import EdgeproofError


class ImageError(EdgeproofError, ValueError):
    pass


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> np.ndarray:
    stride = width * bpp
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    pos = 0
    for y in range(height):
        kind = raw[pos]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=pos + 1).astype(np.int32)
        pos += stride + 1
        cur = np.zeros(stride, dtype=np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 0xFF
        elif kind in (1, 3, 4):
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                if kind == 1:
                    pred = a
                elif kind == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + pred) & 0xFF
        else:
            raise ImageError(f"corrupt PNG: unknown filter type {kind}")
        out[y] = cur
        prev = cur
    return out


# Limits for hostile files (checked before anything is decompressed or allocated). The models take
# 28x28 digits; 4 megapixels (a 2048x2048 photo) is generous, and its largest decoded form (RGBA,
# plus one filter byte per row) is 16 MiB. A file over 32 MiB is no image this runtime needs.
MAX_IMAGE_PIXELS = 2048 * 2048
MAX_IMAGE_FILE_BYTES = 32 * 2**20


def _read_bounded(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_FILE_BYTES:
            raise ImageError(f"{path} is {size / 2**20:.0f} MiB, over the {MAX_IMAGE_FILE_BYTES / 2**20:.0f} MiB "
                             f"image limit; pass a 28x28 digit")
        return path.read_bytes()
    except OSError as err:
        raise ImageError(f"{path}: cannot read it ({err.strerror or err})") from None


def _check_dimensions(path: Path, width: int, height: int, expected: Optional[tuple[int, int]]) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"{path}: corrupt image header (size {width}x{height})")
    if expected is not None and (height, width) != tuple(expected):
        raise ImageError(f"{path} is {width}x{height} pixels; the model takes {expected[1]}x{expected[0]} grey "
                         f"images: resize it first")
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(f"{path} declares {width}x{height} pixels, over the {MAX_IMAGE_PIXELS} pixel limit "
                         f"(checked before decompressing); resize it first")


def _png_chunks(path: Path, data: bytes):
    """(kind, body) for each chunk; a chunk running past the end of the file is an error."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if pos + 12 + length > len(data):
            raise ImageError(f"{path}: truncated PNG (chunk {kind!r} runs past the end of the file)")
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def _inflate_bounded(path: Path, idat: bytes, expected: int) -> bytes:
    """zlib data -> exactly `expected` bytes; never more than expected + 1 are produced."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(idat, expected + 1)
    except zlib.error as err:
        raise ImageError(f"{path}: corrupt PNG data ({err})") from None
    if len(raw) > expected or inflater.unconsumed_tail:
        raise ImageError(f"{path}: corrupt PNG: its pixel data is larger than its header declares")
    if len(raw) < expected:
        raise ImageError(f"{path}: truncated PNG: {len(raw)} of {expected} bytes of pixel data")
    return raw


def read_png(path: Path, expected: Optional[tuple[int, int]] = None) -> np.ndarray:
    """8-bit, non-interlaced grey / grey+alpha / RGB / RGBA PNG -> grey uint8 (H, W). The header's size
    and format are checked (and `expected` (H, W), if given) before any pixel data is decompressed,
    and decompression stops at the size the header declares (no decompression bombs)."""
    path = Path(path)
    data = _read_bounded(path)
    if not data.startswith(_PNG_SIGNATURE):
        raise ImageError(f"{path} is not a PNG file")
    idat: list[bytes] = []
    header = None
    for kind, body in _png_chunks(path, data):
        if kind == b"IHDR":
            if header is not None or len(body) != 13:
                raise ImageError(f"{path}: corrupt PNG header (IHDR)")
            header = struct.unpack(">IIBBBBB", body)
            width, height, depth, color, _, _, interlace = header
            channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(color)
            if depth != 8 or channels is None or interlace:
                raise ImageError(f"{path}: only 8-bit non-interlaced grey/RGB(A) PNGs are supported "
                                 f"(bit depth {depth}, colour type {color}); save it as such or pass a .npy array")
            _check_dimensions(path, width, height, expected)
        elif kind == b"IDAT":
            if header is None:
                raise ImageError(f"{path}: corrupt PNG (pixel data before the IHDR header)")
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ImageError(f"{path}: corrupt PNG (no IHDR chunk)")
    raw = _inflate_bounded(path, b"".join(idat), height * (1 + width * channels))
    pixels = _unfilter(raw, width, height, channels).reshape(height, width, channels)
    if channels >= 3:
        grey = pixels[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.round(grey).astype(np.uint8)
    return pixels[..., 0]


def _pgm_header(path: Path, data: bytes) -> tuple[list[bytes], int]:
    """The 4 header tokens (magic, width, height, maxval) and the offset of the pixel data."""
    parts, pos = [], 0
    while len(parts) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if pos >= len(data):
            raise ImageError(f"{path}: truncated PGM header")
        if data[pos:pos + 1] == b"#":
            end = data.find(b"\n", pos)
            if end < 0:
                raise ImageError(f"{path}: truncated PGM header")
            pos = end + 1
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace() and end - pos < 16:
            end += 1
        parts.append(data[pos:end])
        pos = end
    return parts, pos + 1


def read_pgm(path: Path, expected: Optional[tuple[int, int]] = None) -> np.ndarray:
    path = Path(path)
    data = _read_bounded(path)
    parts, offset = _pgm_header(path, data)
    if parts[0] != b"P5" or not all(p.isdigit() for p in parts[1:]) or not 0 < int(parts[3]) <= 255:
        raise ImageError(f"{path}: only binary 8-bit PGM (P5) is supported")
    width, height = int(parts[1]), int(parts[2])
    _check_dimensions(path, width, height, expected)
    if len(data) - offset < width * height:
        raise ImageError(f"{path}: truncated PGM: {max(len(data) - offset, 0)} of {width * height} pixel bytes")
    return np.frombuffer(data, dtype=np.uint8, count=width * height, offset=offset).reshape(height, width)


def read_image(path: Path | str, expected: Optional[tuple[int, int]] = None) -> np.ndarray:
    """An image file as grey uint8 (H, W) (or the .npy array as saved). `expected` (H, W) refuses other
    sizes from the header alone."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        from ._npy import load_npy

        return load_npy(path)
    if suffix == ".png":
        return read_png(path, expected)
    if suffix in (".pgm", ".pnm"):
        return read_pgm(path, expected)
    raise ImageError(f"{path}: unsupported image format {suffix!r}; use .png, .pgm or .npy")


def write_png(path: Path | str, grey: np.ndarray) -> Path:
    """A grey uint8 (H, W) array as a PNG."""
    grey = np.ascontiguousarray(grey, dtype=np.uint8)
    height, width = grey.shape
    raw = b"".join(b"\0" + grey[y].tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = _PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path = Path(path)
    write_bytes_atomic(path, png)  # complete or absent, never half-written
    return path


def grid(images: np.ndarray, columns: int = 4, pad: int = 2) -> np.ndarray:
    """(N, H, W) uint8 -> one (rows*H, columns*W) image with `pad` pixels between tiles."""
    n, h, w = images.shape
    rows = -(-n // columns)
    out = np.zeros((rows * (h + pad) + pad, columns * (w + pad) + pad), dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return out
