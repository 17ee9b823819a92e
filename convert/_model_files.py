"""What kind of file a user handed over, from its first bytes: so that an ONNX file given to --keras,
or a PyTorch checkpoint given to --onnx, is a clear error naming the right option, not a parser crash."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional

from edgeproof.errors import ModelFileNotFoundError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def require_exists(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise ModelFileNotFoundError(f"{what} {path} does not exist")
    return path


def sniff(path: Path) -> Optional[tuple[str, str]]:
    """(what the file is, the option that takes it), or None when the bytes say nothing."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "a TensorFlow SavedModel folder", "--keras"
        return "a folder", "a model file"
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(HDF5_MAGIC):
        return "an HDF5 file (a Keras .h5 model)", "--keras"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            return "a damaged zip archive", "a model file"
        if "config.json" in names and any(n.endswith(".weights.h5") or n.endswith(".h5") for n in names):
            return "a Keras .keras archive", "--keras"
        if any(n.endswith("data.pkl") for n in names):
            return "a PyTorch torch.save() file (weights)", "--torch module:factory --weights"
        if names and all(n.endswith(".npy") for n in names):
            return "a numpy .npz archive (data)", "--sample-data"
        return "a zip archive", "a model file"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON text file", "a model file"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file", "a model file"
    if head[:1] == b"\x08" and _parses_as_onnx(path):  # protobuf field 1 (ir_version), as ONNX files start
        return "an ONNX model", "--onnx"
    return None


def _parses_as_onnx(path: Path) -> bool:
    try:
        import onnx

        return bool(onnx.load(str(path), load_external_data=False).graph.node)
    except Exception:
        return False
