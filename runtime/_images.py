"""Minimal image I/O with numpy + zlib: read 8-bit PNG / PGM / .npy, write grey PNG (no Pillow needed
on a Pi)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

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


def read_png(path: Path) -> np.ndarray:
    """8-bit, non-interlaced grey / grey+alpha / RGB / RGBA PNG -> grey uint8 (H, W)."""
    data = Path(path).read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise ImageError(f"{path} is not a PNG file")
    pos, idat, header = 8, b"", None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ImageError(f"{path}: corrupt PNG (no IHDR chunk)")
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ImageError(f"{path}: only 8-bit non-interlaced grey/RGB(A) PNGs are supported "
                         f"(bit depth {depth}, colour type {color}); save it as such or pass a .npy array")
    try:
        raw = zlib.decompress(idat)
    except zlib.error as err:
        raise ImageError(f"{path}: corrupt PNG data ({err})") from None
    pixels = _unfilter(raw, width, height, channels).reshape(height, width, channels)
    if channels >= 3:
        grey = pixels[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.round(grey).astype(np.uint8)
    return pixels[..., 0]


def read_pgm(path: Path) -> np.ndarray:
    data = Path(path).read_bytes()
    parts, pos = [], 0
    while len(parts) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        parts.append(data[pos:end])
        pos = end
    if parts[0] != b"P5" or int(parts[3]) > 255:
        raise ImageError(f"{path}: only binary 8-bit PGM (P5) is supported")
    width, height = int(parts[1]), int(parts[2])
    return np.frombuffer(data, dtype=np.uint8, count=width * height, offset=pos + 1).reshape(height, width)


def read_image(path: Path | str) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ImageError(f"{path} is not a valid .npy array ({err})") from None
    if suffix == ".png":
        return read_png(path)
    if suffix in (".pgm", ".pnm"):
        return read_pgm(path)
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
    path.write_bytes(png)
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
